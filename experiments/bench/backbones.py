"""Benchmark: training samples/s of each CSI backbone (batch 32, float32) and achieved FLOP/s
against this machine's measured matmul FLOP/s.

    python experiments/bench/backbones.py [--taps 64] [--steps 10] [--out runs/bench/backbones.json]

FLOPs per step come from XLA's cost analysis of the compiled train step (forward, backward, update).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.bench import machine_info, matmul_flops_per_s
from jaxfp.eval.results import format_table
from jaxfp.nets import BACKBONES
from jaxfp.train import create_train_state, make_train_step, regression_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--taps", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--out", default="runs/bench/backbones.json")
    args = parser.parse_args()
    peak = matmul_flops_per_s()
    x = jax.random.normal(jax.random.key(1), (args.batch, 4, 32, args.taps))
    batch = {"x": x, "y": jnp.zeros((args.batch, 2))}
    rows = {}
    for name in args.backbones.split(","):
        model = BACKBONES[name]()
        state = create_train_state(model, jax.random.key(0), x[:1], optax.adam(1e-3))
        step = make_train_step(regression_loss(model.apply))
        compiled = step.lower(state, batch, jax.random.key(2)).compile()
        cost = compiled.cost_analysis()
        flops = float((cost[0] if isinstance(cost, list | tuple) else cost)["flops"])
        state, metrics = compiled(state, batch, jax.random.key(2))
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for _ in range(args.steps):
            state, metrics = compiled(state, batch, jax.random.key(2))
        jax.block_until_ready(metrics)
        seconds = (time.perf_counter() - start) / args.steps
        rows[name] = {
            "samples_per_s": args.batch / seconds,
            "gflop_per_step": flops / 1e9,
            "achieved_gflop_s": flops / seconds / 1e9,
            "share_of_matmul_peak": flops / seconds / peak,
        }
    result = {
        "input": [args.batch, 4, 32, args.taps],
        "matmul_gflop_s": peak / 1e9,
        "machine": machine_info(),
        "results": rows,
    }
    write_json(args.out, result)
    print(
        f"batch {args.batch}, input (4, 32, {args.taps}); matmul {peak / 1e9:.0f} GFLOP/s",
        result["machine"],
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()

"""FPN throughput: training walks per second (batch 32 walks of 10 steps, 3 seeds vmapped and one
seed), streaming latency (one LSTM step with carried state, batch 1), and seconds to re-adapt to a
changed map (the fine-tune steps of `config.adapt`, compiled), for each LSTM gradient named in
`--lstm` (`model.lstm`: "fused", by hand; "flax", autodiff through Flax's cell). Synthetic shapes
of experiments/fpn/synthetic.py: 210 reference points, 40 APs. Prints a table, writes JSON with
the machine it ran on.

    python experiments/bench/fpn.py [--repeats 20] [--adapt-steps 300] [--lstm fused,flax]
        [--out bench_fpn.json]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.bench import machine_info, median_seconds
from jaxfp.eval.results import format_table
from jaxfp.methods.fpn.losses import LossSettings, make_loss
from jaxfp.methods.fpn.nets import Positioner
from jaxfp.train.members import member_step
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

POINTS, APS, BATCH, LENGTH = 210, 40, 32, 10


def bench_net(name: str, net: Positioner, batch: dict, args: argparse.Namespace) -> dict:
    signals, radio, key = batch["signals"], batch["map"], jax.random.key(3)
    tx = optax.adam(1e-4)

    def init(key: jax.Array) -> TrainState:
        params = net.init(key, signals[:1], radio)["params"]
        return TrainState.create(apply_fn=net.apply, params=params, tx=tx)

    step_fn = make_train_step(make_loss(LossSettings(net, 0.2)), jit=False)
    one, holder = jax.jit(step_fn, donate_argnums=0), {"one": jax.jit(init)(key)}

    def run_one() -> jax.Array:
        holder["one"], metrics = one(holder["one"], batch, key)
        return metrics["loss"]

    rows = {}
    seconds = median_seconds(run_one, args.repeats)
    rows[f"{name} train step, 1 seed"] = {"seconds": seconds, "walks_per_s": BATCH / seconds}
    n = args.seeds
    states = [jax.jit(init)(k) for k in jax.random.split(key, n)]
    holder["many"] = jax.tree.map(lambda *x: jnp.stack(x), *states)
    many = member_step(step_fn, n)
    stacked_batch = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), batch)

    def run_many() -> jax.Array:
        holder["many"], metrics = many(holder["many"], stacked_batch, key)
        return metrics["loss"]

    seconds = median_seconds(run_many, args.repeats)
    rows[f"{name} train step, {n} seeds vmapped"] = {
        "seconds": seconds,
        "walks_per_s": n * BATCH / seconds,
    }
    params = holder["one"].params
    streaming = jax.jit(lambda s, c: net.apply({"params": params}, s, radio, c))
    _, carry = streaming(signals[:1, :1], None)
    seconds = median_seconds(lambda: streaming(signals[:1, :1], carry)[0], args.repeats)
    rows[f"{name} streaming step, batch 1"] = {"seconds": seconds, "walks_per_s": None}
    if name.startswith("FPN"):
        clock = time.perf_counter()
        for _ in range(args.adapt_steps):
            loss = run_one()
        jax.block_until_ready(loss)
        seconds = time.perf_counter() - clock
        rows[f"{name} re-adaptation, {args.adapt_steps} fine-tune steps"] = {
            "seconds": seconds,
            "walks_per_s": args.adapt_steps * BATCH / seconds,
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--adapt-steps", type=int, default=300)
    parser.add_argument("--lstm", default="fused,flax", help="model.lstm settings, ','-separated")
    parser.add_argument("--out", default="bench_fpn.json")
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(0), 4)
    signals = jax.random.uniform(keys[0], (BATCH, LENGTH, APS))
    radio = jax.random.uniform(keys[1], (POINTS, APS))
    batch = {
        "signals": signals,
        "map": radio,
        "point": jax.random.randint(keys[2], (BATCH, LENGTH), 0, POINTS),
    }
    rows = {}
    for lstm in args.lstm.split(","):
        for name, net in (
            (f"FPN [lstm={lstm}]", Positioner(POINTS, lstm=lstm)),
            (f"plain LSTM [lstm={lstm}]", Positioner(POINTS, use_map=False, lstm=lstm)),
        ):
            rows.update(bench_net(name, net, batch, args))
    for row in rows.values():
        row["ms"] = 1000 * row["seconds"]
    result = {"machine": machine_info(), "rows": rows}
    write_json(args.out, result)
    print(result["machine"])
    print(format_table(rows, ["seconds", "ms", "walks_per_s"]))


if __name__ == "__main__":
    main()

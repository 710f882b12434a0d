"""iToLoc throughput: training samples per second of the full adversarial step (extractor, three
location heads, discriminator) and of the plain CNN (extractor + M1) at the paper's batch size,
seconds per co-training selection (test-mode pass + K dropout passes) over a pool, and, for
`--seeds` S > 1, S seeds' full steps through `member_step` — one vmapped program, or a jitted
step per seed in turn (`seed_execution`) — against plain jitted steps one after the other,
alternated so the ratios hold under load. Prints a table and writes JSON with the machine.

    python experiments/bench/itoloc.py [--aps 16] [--repeats 10] [--seeds 3] [--out bench_itoloc.json]
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.bench import machine_info, median_seconds
from jaxfp.eval.results import format_table
from jaxfp.methods.itoloc.losses import LossSettings, make_loss
from jaxfp.methods.itoloc.nets import ItoLocNet
from jaxfp.train.members import SEED_EXECUTION, member_step, stack_members
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

LOCATIONS, DOMAINS = 100, 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aps", type=int, default=16, help="image side N (APs)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--pool", type=int, default=960)
    parser.add_argument("--dropout-passes", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3, help="vmapped vs sequential; 1: skip")
    parser.add_argument("--out", default="bench_itoloc.json")
    args = parser.parse_args()
    images = jax.random.normal(jax.random.key(0), (args.batch, args.aps, args.aps))
    location = jnp.arange(args.batch) % LOCATIONS
    distances = jnp.abs(jnp.arange(float(LOCATIONS))[:, None] - jnp.arange(float(LOCATIONS))[None])
    rows = {}
    for name, heads, adversary in (
        ("iToLoc step (ME + M1-M3 + MD)", ("conv3", "conv5", "residual"), 0.1),
        ("plain CNN step (ME + M1)", ("conv3",), 0.0),
    ):
        net = ItoLocNet(LOCATIONS, DOMAINS, heads)
        variables = net.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, images)
        state = TrainState.create(
            apply_fn=net.apply,
            params=variables["params"],
            tx=optax.sgd(0.1, momentum=0.9),
            batch_stats=variables["batch_stats"],
        )
        step = make_train_step(
            make_loss(LossSettings(net, 0.1, adversary, 100), distances), donate=False
        )
        batch = {
            "image": images,
            "target": jnp.broadcast_to(
                jax.nn.one_hot(location, LOCATIONS), (len(heads), args.batch, LOCATIONS)
            ),
            "weight": jnp.ones((len(heads), args.batch)),
            "rp": jnp.broadcast_to(location, (len(heads), args.batch)),
            "domain": jnp.arange(args.batch) % DOMAINS,
        }
        seconds = median_seconds(
            lambda s=step, st=state, b=batch: s(st, b, jax.random.key(3))[1]["loss"], args.repeats
        )
        rows[f"{name}, batch {args.batch}, {args.aps}x{args.aps}"] = {
            "seconds": seconds,
            "samples_per_second": args.batch / seconds,
        }
        if len(heads) == 3 and args.seeds > 1:
            rows.update(
                seeds_vmapped_or_not(net, variables, batch, distances, args.seeds, args.repeats)
            )
        if len(heads) == 3:
            pool = jax.random.normal(jax.random.key(4), (args.pool, args.aps, args.aps))
            apply = jax.jit(
                lambda v, x, key, net=net: net.apply(
                    v,
                    x,
                    train=False,
                    dropout=key is not None,
                    rngs=None if key is None else {"dropout": key},
                )["locations"]
            )

            def selection(v=variables, pool=pool, apply=apply):
                outs = [apply(v, pool, None)]
                outs += [apply(v, pool, jax.random.key(k)) for k in range(args.dropout_passes)]
                return outs[-1]

            seconds = median_seconds(selection, max(2, args.repeats // 3))
            rows[f"co-training selection, pool {args.pool}, K={args.dropout_passes}"] = {
                "seconds": seconds,
                "samples_per_second": args.pool * (args.dropout_passes + 1) / seconds,
            }
    result = {"machine": machine_info(), "rows": rows}
    write_json(args.out, result)
    print(result["machine"])
    print(format_table(rows, ["seconds", "samples_per_second"]))


def seeds_vmapped_or_not(net, variables, batch, distances, seeds: int, repeats: int) -> dict:
    """Rows for `seeds` full steps: `member_step`'s two executions (one vmapped program; a jitted
    step per seed in turn) against plain jitted steps one after the other, from one state (the
    seeds share its parameters in cache) and each seed from its own state, carried and donated as
    a trainer does. They alternate (A B C D A B C D; medians over the rounds) so a shared
    machine's drift stays out of their ratios."""
    state = TrainState.create(
        apply_fn=net.apply,
        params=variables["params"],
        tx=optax.sgd(0.1, momentum=0.9),
        batch_stats=variables["batch_stats"],
    )
    step_fn = make_train_step(make_loss(LossSettings(net, 0.1, 0.1, 100), distances), jit=False)
    one = jax.jit(step_fn)
    own = jax.jit(step_fn, donate_argnums=0)
    keys = jax.random.split(jax.random.key(5), seeds)
    states = [jax.tree.map(jnp.copy, state) for _ in range(seeds)]

    def each_its_own() -> jax.Array:
        for m in range(seeds):
            states[m], metrics = own(states[m], batch, keys[m])
        return metrics["loss"]

    stacked_batch = stack_members([batch] * seeds)
    carried = {execution: stack_members([state] * seeds) for execution in SEED_EXECUTION}
    steps = {
        execution: member_step(step_fn, seeds, execution=execution) for execution in SEED_EXECUTION
    }

    def stepped(execution: str):
        carried[execution], metrics = steps[execution](carried[execution], stacked_batch, keys[0])
        return metrics["loss"]

    runs = {
        "one after the other": lambda: [one(state, batch, k)[1]["loss"] for k in keys],
        "one after the other, each its own state": each_its_own,
        **{f"member_step {e}": functools.partial(stepped, e) for e in SEED_EXECUTION},
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        jax.block_until_ready(fn())  # compilation
    for _ in range(max(repeats, 3)):
        for name, fn in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - start)
    seconds = {name: float(np.median(t)) for name, t in times.items()}
    base = seconds["one after the other"]
    trained = seconds["one after the other, each its own state"]
    samples = seeds * len(batch["domain"])
    return {
        f"{seeds} seeds' iToLoc steps, {name} (x{t / base:.2f}; x{t / trained:.2f} of own states)": {
            "seconds": t,
            "samples_per_second": samples / t,
        }
        for name, t in seconds.items()
    }


if __name__ == "__main__":
    main()

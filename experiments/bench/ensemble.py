"""Benchmark: an ensemble of 8 MLPs (520 -> 256 -> 256 -> 2, batch 64, 200 steps) trained
(a) one by one with a jitted step, (b) as one vmapped program (the whole run: `make_train`),
(b') as stacked members, one vmapped step per call with each step's batches drawn on the host (what
`SeedStages` runs), (c) vmapped and sharded over 4 fake CPU devices (and over 2, one per core here).
(b) against (b') is what the whole-run program pays where a method uses it. (d) splits one vmapped
step of the members into what each part adds (gradients alone, then Adam, then the logged norms,
then the trainer's finite guard) beside the time the step's matrix products would take at this
machine's measured 2048^2 matmul rate: the floor no ensemble step of these nets can go below here.

    python experiments/bench/ensemble.py [--members 8] [--steps 200] [--out runs/bench/ensemble.json]

Each mode runs in its own process (fake devices must be set before JAX starts); compile time is
reported apart from the training time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BATCH, WIDTH, STEPS_PER_EPOCH = 64, 520, 25


def step_parts(members: int, repeats: int = 50) -> dict[str, float]:
    """ms per vmapped step of `members` MLPs: the gradient alone, + Adam, + the logged norms, + the
    finite guard (the trainer's own step), and the matmul floor of the step's FLOPs."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxfp.nets import MLP
    from jaxfp.train import create_train_state, make_train_step, regression_loss
    from jaxfp.train.members import member_step

    model = MLP(hidden=(256, 256), out=2)
    loss = regression_loss(model.apply)
    keys = jax.random.split(jax.random.key(0), members)
    batch = {
        "x": jax.random.normal(keys[0], (members, BATCH, WIDTH)),
        "y": jnp.zeros((members, BATCH, 2)),
    }

    def init(key):
        return create_train_state(model, key, jnp.zeros((1, WIDTH)), optax.adam(1e-3))

    def states():
        return jax.vmap(init)(keys)

    def partial_step(parts: str):
        def one(state, batch, key):
            (value, _), grads = jax.value_and_grad(loss, has_aux=True)(
                state.params, state, batch, key
            )
            metrics = {"loss": value, "grad_norm": optax.tree.norm(grads)}
            if parts == "gradients":
                return state, metrics
            updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            if parts == "norms":
                metrics["param_norm"] = optax.tree.norm(params)
                metrics["update_norm"] = optax.tree.norm(updates)
            new = state.replace(params=params, opt_state=opt_state, step=state.step + 1)
            return new, metrics

        def step(state, batch, rng):
            return jax.vmap(one)(state, batch, jax.random.split(rng, members))

        return jax.jit(step, donate_argnums=(0,))

    def ms_per_step(step) -> float:
        state, rng = states(), jax.random.key(1)
        state, metrics = step(state, batch, rng)  # compile
        jax.block_until_ready(metrics)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                state, metrics = step(state, batch, rng)
            jax.block_until_ready((state, metrics))
            best = min(best, (time.perf_counter() - start) / repeats)
        return 1e3 * best

    rows = {
        "gradients": ms_per_step(partial_step("gradients")),
        "+ Adam": ms_per_step(partial_step("adam")),
        "+ norms": ms_per_step(partial_step("norms")),
        "+ finite guard (the trainer's step)": ms_per_step(
            member_step(make_train_step(loss, jit=False), members)
        ),
    }
    square = jnp.ones((2048, 2048), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(square))
    start = time.perf_counter()
    for _ in range(20):
        jax.block_until_ready(matmul(square))
    rate = 2 * 2048**3 / ((time.perf_counter() - start) / 20)
    # forward and both gradients of every dense layer
    flops = 3 * 2 * members * BATCH * (WIDTH * 256 + 256 * 256 + 256 * 2)
    rows["matmul floor"] = 1e3 * flops / rate
    return rows


def run_mode(mode: str, members: int, steps: int) -> dict[str, float]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from jaxfp.nets import MLP
    from jaxfp.train import (
        create_train_state,
        make_train,
        make_train_step,
        member_mesh,
        regression_loss,
    )

    rng = np.random.default_rng(0)
    n = BATCH * STEPS_PER_EPOCH
    data = {
        "x": jnp.asarray(rng.random((n, WIDTH), np.float32)),
        "y": jnp.asarray(rng.normal(size=(n, 2)).astype(np.float32)),
    }
    model = MLP(hidden=(256, 256), out=2)

    def init_fn(key):
        return create_train_state(model, key, jnp.zeros((1, WIDTH)), optax.adam(1e-3))

    loss = regression_loss(model.apply)
    keys = jax.random.split(jax.random.key(0), members)
    epochs = steps // STEPS_PER_EPOCH
    if mode == "one_by_one":
        step = make_train_step(loss)
        run = make_train(init_fn, make_train_step(loss, jit=False), data, BATCH, epochs)
        init = jax.jit(run.init)
        start = time.perf_counter()
        state, _, step_key = init(keys[0])
        jax.block_until_ready(step(state, jax.tree.map(lambda a: a[:BATCH], data), step_key))
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        for key in keys:
            state, data_key, step_key = init(key)
            for epoch in range(epochs):
                order = jax.random.permutation(jax.random.fold_in(data_key, epoch), n)
                for i in range(STEPS_PER_EPOCH):
                    index = order[i * BATCH : (i + 1) * BATCH]
                    state, metrics = step(
                        state, jax.tree.map(lambda a, ix=index: a[ix], data), step_key
                    )
            jax.block_until_ready(metrics)
        train_s = time.perf_counter() - start
    elif mode == "stacked_steps":
        from jaxfp.train.members import member_step, stack_members

        step = member_step(make_train_step(loss, jit=False), members)
        host = jax.tree.map(np.asarray, data)
        rngs = [np.random.default_rng(m) for m in range(members)]

        def batch() -> dict[str, np.ndarray]:  # each member's own rows, drawn on the host
            rows = [r.integers(0, n, BATCH) for r in rngs]
            return {k: np.stack([v[i] for i in rows]) for k, v in host.items()}

        start = time.perf_counter()
        states = stack_members([jax.jit(init_fn)(k) for k in keys])
        run_key = jax.random.key(1)
        states, metrics = step(states, batch(), run_key)
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - start
        states = stack_members([jax.jit(init_fn)(k) for k in keys])
        start = time.perf_counter()
        for _ in range(epochs * STEPS_PER_EPOCH):
            states, metrics = step(states, batch(), run_key)
        jax.block_until_ready(metrics)
        train_s = time.perf_counter() - start
    else:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        run = make_train(init_fn, make_train_step(loss, jit=False), data, BATCH, epochs)
        program = jax.jit(jax.vmap(run.train))
        if mode.startswith("sharded"):
            sharding = NamedSharding(member_mesh(members), P("members"))
            keys = jax.device_put(keys, sharding)
            program = jax.jit(jax.vmap(run.train), in_shardings=sharding, out_shardings=sharding)
        start = time.perf_counter()
        compiled = program.lower(keys).compile()
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        train_s = time.perf_counter() - start
    return {
        "compile_s": compile_s,
        "train_s": train_s,
        "members_per_s": members / train_s,
        "devices": jax.device_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="runs/bench/ensemble.json")
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode == "parts":
        print(json.dumps(step_parts(args.members)))
        return
    if args.mode:
        print(json.dumps(run_mode(args.mode, args.members, args.steps)))
        return

    from jaxfp.common.atomic_files import write_json
    from jaxfp.eval.bench import machine_info
    from jaxfp.eval.results import format_table

    modes = {
        "(a) one by one, jitted step": ("one_by_one", 1),
        "(b) vmapped program": ("vmapped", 1),
        "(b') stacked members, a vmapped step per call": ("stacked_steps", 1),
        "(c) vmapped, sharded over 4 fake devices": ("sharded4", 4),
        "(c') vmapped, sharded over 2 fake devices": ("sharded2", 2),
    }
    rows = {}
    for name, (mode, devices) in modes.items():
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--members",
                str(args.members),
                "--steps",
                str(args.steps),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows["(a) one by one, jitted step"]["train_s"]
    for row in rows.values():
        row["speedup_vs_a"] = base / row["train_s"]
    out = subprocess.run(
        [sys.executable, __file__, "--mode", "parts", "--members", str(args.members)],
        capture_output=True,
        text=True,
        check=True,
    )
    parts = {
        name: {"ms_per_step": ms} for name, ms in json.loads(out.stdout.splitlines()[-1]).items()
    }
    result = {
        "benchmark": f"{args.members} MLPs 520-256-256-2, batch {BATCH}, {args.steps} steps",
        "machine": machine_info(),
        "results": rows,
        "step_parts": parts,
    }
    write_json(args.out, result)
    print(result["benchmark"], json.dumps(result["machine"]))
    print(format_table(rows))
    print(f"(d) one vmapped step of the {args.members} members, part by part:")
    print(format_table(parts))


if __name__ == "__main__":
    main()

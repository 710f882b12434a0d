"""jaxfp against PyTorch: the same train steps, timed side by side in alternating processes.

    pip install -e ".[bench]"        # CPU PyTorch; jaxfp itself never needs it
    python experiments/bench/versus_pytorch.py [--cases resnet18,fpn] [--rounds 2] [--steps 10]
        [--jax-flags "default;--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"]

Each case is one training step (forward, backward, optimiser update) of a jaxfp network and of its
PyTorch twin (`torch_twins.py`: same layers, shapes, loss and optimiser) on the same input shapes,
batch and thread count. Every (side, allocator) runs in its own fresh process, in rounds A B A B,
so drift on the machine hits both sides alike; a process times `--steps` steps after two warm-up
steps (compilation) and reports their median. Allocators: glibc's default and jemalloc
(LD_PRELOAD, when `libjemalloc2` is installed) — PyTorch's speed depends on it. JAX sides: one per
`--jax-flags` setting ("default": jaxfp's own, `jaxfp.xla_flags`, after the user's XLA_FLAGS;
"none": XLA's defaults; anything else: that XLA_FLAGS on top of jaxfp's); their FLOPs per step come from XLA's cost analysis and are reported against this
machine's measured matmul rate. Prints a table, writes JSON with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BATCH, INPUT = 32, (4, 32, 64)  # the project's angle-delay input: 4 channels x 32 angles x 64 taps
MEMBERS = 8
FPN_POINTS, FPN_APS, FPN_LENGTH = 210, 40, 10
ITOLOC_SIDE, ITOLOC_LOCATIONS, ITOLOC_DOMAINS = 16, 100, 15
COMGAN_RUS, COMGAN_RP_DIMS, COMGAN_BATCH = 6, 2, 64
SAGE_NODES, SAGE_EDGES, SAGE_NODE_IN, SAGE_FEATURES = 10_400, 800_000, 16, 32
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
BACKBONE_CASES = ("resnet18", "resnet34", "resnet50", "mobilenet_v2", "shufflenet_v2")
CASES = {
    **{name: f"{name} train step, batch {BATCH}, input {INPUT}, Adam" for name in BACKBONE_CASES},
    "ensemble": f"{MEMBERS} MLPs 520-256-256-2, batch 64 each, Adam: jaxfp vmapped; PyTorch one by one and torch.func",
    "fpn": f"FPN positioner (map encoder + 2-layer LSTM 128), {BATCH} walks x {FPN_LENGTH}, {FPN_POINTS} points, {FPN_APS} APs, Adam",
    "plain_lstm": f"plain 2-layer LSTM 128, {BATCH} walks x {FPN_LENGTH}, {FPN_APS} APs -> {FPN_POINTS} points, Adam",
    "fpn_flax_lstm": "fpn with model.lstm='flax' (autodiff through Flax's cell)",
    "plain_lstm_flax_lstm": "plain_lstm with model.lstm='flax' (autodiff through Flax's cell)",
    "itoloc": f"iToLoc adversarial step (ME + M1-M3 + MD), batch {BATCH}, {ITOLOC_SIDE}x{ITOLOC_SIDE}, SGD momentum",
    "itoloc_plain_cnn": f"iToLoc plain CNN (ME + M1), batch {BATCH}, {ITOLOC_SIDE}x{ITOLOC_SIDE}, SGD momentum",
    "comgan": f"ComGAN WGAN-GP iteration (5 critic steps with the gradient penalty + 1 generator step), batch {COMGAN_BATCH}, {COMGAN_RUS} RUs, Adam",
    "graphsage": f"GUFU's EdgeSAGE, 2 layers x {SAGE_FEATURES} + 2-D node head, full graph of {SAGE_NODES:,} nodes / {SAGE_EDGES:,} edges, Adam",
}
FPN_CASES = ("fpn", "plain_lstm", "fpn_flax_lstm", "plain_lstm_flax_lstm")
TORCH_SIDES = {"ensemble": ("torch", "torch_func")}
USER_XLA_FLAGS = os.environ.get("XLA_FLAGS")  # before jaxfp's import adds its own


# ---------------------------------------------------------------- JAX steps (in a worker process)


def jax_case(case: str) -> tuple[Callable[[], object], int, float]:
    """(one blocking train step, samples per step, XLA's FLOPs per step)."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxfp.train import create_train_state, make_train_step, regression_loss
    from jaxfp.train.state import TrainState

    key = jax.random.key(0)
    if case in BACKBONE_CASES:
        from jaxfp.nets import BACKBONES

        model = BACKBONES[case]()
        x = jax.random.normal(key, (BATCH, *INPUT))
        state = create_train_state(model, key, x[:1], optax.adam(1e-3))
        step = make_train_step(regression_loss(model.apply))
        batch, samples = {"x": x, "y": jnp.zeros((BATCH, 2))}, BATCH
    elif case == "ensemble":
        from jaxfp.nets import MLP
        from jaxfp.train.members import member_step

        model = MLP(hidden=(256, 256), out=2)
        keys = jax.random.split(key, MEMBERS)
        state = jax.vmap(
            lambda k: create_train_state(model, k, jnp.zeros((1, 520)), optax.adam(1e-3))
        )(keys)
        step = member_step(make_train_step(regression_loss(model.apply), jit=False), MEMBERS)
        batch = {"x": jax.random.normal(key, (MEMBERS, 64, 520)), "y": jnp.zeros((MEMBERS, 64, 2))}
        samples = 64 * MEMBERS
    elif case in FPN_CASES:
        from jaxfp.methods.fpn.losses import LossSettings, make_loss
        from jaxfp.methods.fpn.nets import Positioner

        lstm = "flax" if case.endswith("_flax_lstm") else "fused"
        net = Positioner(FPN_POINTS, use_map=case.startswith("fpn"), lstm=lstm)
        signals = jax.random.uniform(key, (BATCH, FPN_LENGTH, FPN_APS))
        radio_map = jax.random.uniform(key, (FPN_POINTS, FPN_APS))
        params = net.init(key, signals[:1], radio_map)["params"]
        state = TrainState.create(apply_fn=net.apply, params=params, tx=optax.adam(1e-4))
        step = make_train_step(make_loss(LossSettings(net, 0.2)))
        point = jnp.arange(BATCH * FPN_LENGTH).reshape(BATCH, FPN_LENGTH) % FPN_POINTS
        batch, samples = {"signals": signals, "map": radio_map, "point": point}, BATCH
    elif case in ("itoloc", "itoloc_plain_cnn"):
        from jaxfp.methods.itoloc.losses import LossSettings, make_loss
        from jaxfp.methods.itoloc.nets import HEADS, ItoLocNet

        heads, adversary = (HEADS, 0.1) if case == "itoloc" else (HEADS[:1], 0.0)
        net = ItoLocNet(ITOLOC_LOCATIONS, ITOLOC_DOMAINS, heads)
        images = jax.random.normal(key, (BATCH, ITOLOC_SIDE, ITOLOC_SIDE))
        variables = net.init({"params": key, "dropout": key}, images)
        state = TrainState.create(
            apply_fn=net.apply,
            params=variables["params"],
            tx=optax.sgd(0.1, momentum=0.9),
            batch_stats=variables["batch_stats"],
        )
        grid = jnp.arange(float(ITOLOC_LOCATIONS))
        settings = LossSettings(net, 0.1, adversary, 100)
        step = make_train_step(make_loss(settings, jnp.abs(grid[:, None] - grid[None])))
        rp = jnp.arange(BATCH) % ITOLOC_LOCATIONS
        batch = {
            "image": images,
            "target": jnp.broadcast_to(
                jax.nn.one_hot(rp, ITOLOC_LOCATIONS), (len(heads), BATCH, ITOLOC_LOCATIONS)
            ),
            "weight": jnp.ones((len(heads), BATCH)),
            "rp": jnp.broadcast_to(rp, (len(heads), BATCH)),
            "domain": jnp.arange(BATCH) % ITOLOC_DOMAINS,
        }
        samples = BATCH
    elif case == "comgan":
        from jaxfp.methods.comgan import training
        from jaxfp.methods.comgan.nets import Critic, Generator, RpEstimator

        s = training.GanSettings(Generator(), Critic(), RpEstimator(), 5, 1, 10.0, 1.0, 100.0)
        state = training.init_state(s, key, COMGAN_RUS, COMGAN_RP_DIMS, 1e-4)
        step = jax.jit(training.make_iteration(s), donate_argnums=0)
        batch = {
            "rss": jax.random.normal(key, (s.n_critic + 1, COMGAN_BATCH, COMGAN_RUS)),
            "rp": jax.random.normal(key, (s.n_critic + 1, COMGAN_BATCH, COMGAN_RP_DIMS)),
        }
        samples = COMGAN_BATCH
    elif case == "graphsage":
        step, state, batch = graphsage_step(key)
        samples = SAGE_NODES
    else:
        raise ValueError(f"unknown case {case!r}; expected one of {sorted(CASES)}")
    flops = xla_flops(step, state, batch, key)
    holder = {"state": state}

    def run() -> object:
        holder["state"], metrics = step(holder["state"], batch, key)
        return jax.block_until_ready(metrics)

    return run, samples, flops


def graphsage_step(key: object) -> tuple[Callable, object, object]:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import jraph
    import optax

    from jaxfp.methods.gufu.sage import EdgeSAGE
    from jaxfp.train import make_train_step
    from jaxfp.train.state import TrainState

    class Regressor(nn.Module):
        @nn.compact
        def __call__(self, graph: jraph.GraphsTuple, edge_mask: jax.Array) -> jax.Array:
            nodes, _ = EdgeSAGE(SAGE_FEATURES, 2)(graph, edge_mask)
            return nn.Dense(2)(nodes)

    ends = jax.random.randint(key, (2, SAGE_EDGES), 0, SAGE_NODES)
    graph = jraph.GraphsTuple(
        nodes=jax.random.normal(key, (SAGE_NODES, SAGE_NODE_IN)),
        edges={},  # edge features start from the end nodes' (unweighted: no readings needed)
        senders=ends[0],
        receivers=ends[1],
        n_node=jnp.array([SAGE_NODES]),
        n_edge=jnp.array([SAGE_EDGES]),
        globals=None,
    )
    batch = {"graph": graph, "mask": jnp.ones(SAGE_EDGES, bool), "y": jnp.zeros((SAGE_NODES, 2))}
    model = Regressor()
    params = model.init(key, batch["graph"], batch["mask"])["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=optax.adam(1e-3))

    def loss_fn(params, state, batch, key):
        out = model.apply({"params": params}, batch["graph"], batch["mask"])
        return jnp.mean(jnp.sum((out - batch["y"]) ** 2, -1)), ({}, None)

    return make_train_step(loss_fn), state, batch


def xla_flops(step: Callable, state: object, batch: object, key: object) -> float:
    try:
        cost = step.lower(state, batch, key).compile().cost_analysis()
    except AttributeError:  # a wrapper around the jitted step (the ensemble's placement)
        return float("nan")
    return float((cost[0] if isinstance(cost, list | tuple) else cost)["flops"])


# ------------------------------------------------------------ PyTorch steps (in a worker process)


def torch_case(case: str, side: str, threads: int) -> tuple[Callable[[], object], int]:
    import torch
    import torch_twins as twins

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if case in BACKBONE_CASES:
        return twins.backbone_case(case, BATCH, INPUT)
    if case == "ensemble":
        build = twins.ensemble_torch_func if side == "torch_func" else twins.ensemble_one_by_one
        return build(MEMBERS)
    if case in FPN_CASES:
        return twins.fpn_case(case.startswith("fpn"), FPN_POINTS, FPN_APS, BATCH, FPN_LENGTH)
    if case in ("itoloc", "itoloc_plain_cnn"):
        heads = ("conv3", "conv5", "residual") if case == "itoloc" else ("conv3",)
        adversary = 0.1 if case == "itoloc" else 0.0
        return twins.itoloc_case(
            heads, adversary, BATCH, ITOLOC_SIDE, ITOLOC_LOCATIONS, ITOLOC_DOMAINS
        )
    if case == "comgan":
        return twins.comgan_case(COMGAN_RUS, COMGAN_RP_DIMS, COMGAN_BATCH)
    if case == "graphsage":
        return twins.graphsage_case(SAGE_NODES, SAGE_EDGES, SAGE_NODE_IN, SAGE_FEATURES)
    raise ValueError(f"unknown case {case!r}; expected one of {sorted(CASES)}")


def worker(case: str, side: str, steps: int, threads: int) -> dict:
    if side.startswith("jax"):
        import jaxfp  # noqa: F401  (the entry point's XLA flags, before JAX starts)

        if case == "matmul":
            from jaxfp.eval.bench import matmul_flops_per_s

            return {"flops_per_s": matmul_flops_per_s()}
        step, samples, flops = jax_case(case)
    else:
        step, samples = torch_case(case, side, threads)
        flops = float("nan")
    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "samples": samples, "flops": flops}


# ------------------------------------------------------------------------------------- driver


def sharded_sides(case: str, threads: int) -> dict[str, str]:
    """The ensemble also as jaxfp runs it on a CPU: members sharded over one device per core."""
    if case != "ensemble" or threads < 2:
        return {}
    return {
        f"jax[members on {threads} devices]": f"--xla_force_host_platform_device_count={threads}"
    }


def run_worker(case: str, side: str, flags: str, allocator: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("XLA_FLAGS", None)
    if USER_XLA_FLAGS is not None:
        env["XLA_FLAGS"] = USER_XLA_FLAGS
    if allocator == "jemalloc":
        env["LD_PRELOAD"] = JEMALLOC
    if flags == "none":
        env["JAXFP_XLA_DEFAULTS"] = "0"
    elif flags != "default":
        env["XLA_FLAGS"] = f"{USER_XLA_FLAGS or ''} {flags}".strip()
    command = [sys.executable, __file__, "--worker", side, "--case", case]
    command += ["--steps", str(args.steps), "--threads", str(args.threads)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{case} / {side} / {allocator} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--jax-flags", default="default", help="';'-separated XLA_FLAGS settings")
    parser.add_argument("--allocators", default="glibc,jemalloc")
    parser.add_argument("--out", default="runs/bench/versus_pytorch.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.case, args.worker, args.steps, args.threads)))
        return

    from jaxfp.common.atomic_files import write_json
    from jaxfp.eval.bench import machine_info
    from jaxfp.eval.results import format_table

    cases = args.cases.split(",")
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {sorted(CASES)}")
    allocators = args.allocators.split(",")
    if "jemalloc" in allocators and not Path(JEMALLOC).exists():
        print(f"{JEMALLOC} not found (apt-get install libjemalloc2): glibc only")
        allocators = [a for a in allocators if a != "jemalloc"]
    jax_sides = {f"jax[{f}]": f for f in args.jax_flags.split(";")}
    # per case: its JAX sides (side -> XLA flags) and all its sides in run order
    jax_of = {case: {**jax_sides, **sharded_sides(case, args.threads)} for case in cases}
    sides_of = {case: [*jax_of[case], *TORCH_SIDES.get(case, ("torch",))] for case in cases}
    samples: dict[tuple[str, str, str], list[float]] = {}
    info: dict[tuple[str, str], dict] = {}
    for _ in range(args.rounds):
        peak = run_worker("matmul", "jax", "default", "glibc", args)["flops_per_s"]
        samples.setdefault(("matmul", "jax", "glibc"), []).append(peak)
        for case in cases:
            case_jax = jax_of[case]
            for side in sides_of[case]:
                for allocator in allocators:
                    flags = case_jax.get(side, "default")
                    kind = "jax" if side in case_jax else side
                    result = run_worker(case, kind, flags, allocator, args)
                    samples.setdefault((case, side, allocator), []).append(result["seconds"])
                    info[(case, side)] = result
                    print(
                        f"{case:18s} {side:28s} {allocator:9s} {result['seconds'] * 1e3:9.1f} ms",
                        flush=True,
                    )
    peak = statistics.median(samples.pop(("matmul", "jax", "glibc")))
    rows: dict[str, dict] = {}
    for case in cases:
        case_jax = jax_of[case]
        medians = {
            (side, a): statistics.median(samples[(case, side, a)])
            for side in sides_of[case]
            for a in allocators
        }
        torch_best = min(v for (side, _), v in medians.items() if side not in case_jax)
        for (side, allocator), seconds in medians.items():
            row = {
                "ms_per_step": seconds * 1e3,
                "samples_per_s": info[(case, side)]["samples"] / seconds,
                "time_vs_best_torch": seconds / torch_best,
            }
            if side in case_jax:
                flops = info[(case, side)]["flops"]
                row["share_of_matmul"] = flops / seconds / peak
            rows[f"{case} | {side} | {allocator}"] = row
    result = {
        "cases": {c: CASES[c] for c in cases},
        "threads": args.threads,
        "rounds": args.rounds,
        "steps": args.steps,
        "matmul_gflop_s": peak / 1e9,
        "machine": machine_info(),
        "rows": rows,
    }
    write_json(args.out, result)
    print(
        json.dumps(result["machine"]), f"matmul {peak / 1e9:.0f} GFLOP/s", f"{args.threads} threads"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()

"""What the train step's finite guard costs: `apply_gradients` with its guard as a `lax.cond`
around the update and as `where(finite, new, old)` over the state's trees (jaxfp takes one or the
other by the parameter count, `jaxfp.train.steps.COND_GUARD_MIN_PARAMS`), against no guard, and
against no guard and no norms, on `versus_pytorch.py`'s jaxfp steps.

    python experiments/bench/finite_guard.py [--cases resnet18,resnet34,fpn] [--rounds 4]
        [--steps 5] [--out runs/bench/finite_guard.json]

The steps of a case are built in one process and timed in rounds A B C D E A B C D E (`--steps`
steps each, after two warm-up steps), so the machine's drift hits them alike; the table gives each
one's median ms/step over rounds and its ratio to jaxfp's. With the state donated, the `where`
makes XLA:CPU copy every parameter and optimiser moment before the update to keep the old values
for the select; the `cond` runs the update only on a finite step. The unguarded step updates on a
non-finite step too; it is only a floor. The bare step also drops the gradient, parameter and
update norms that every jaxfp step logs: it is the step the PyTorch twins take.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from functools import partial
from pathlib import Path

import jax.numpy as jnp
import optax

from jaxfp.config import config_module
from jaxfp.eval.bench import machine_info
from jaxfp.train import steps

versus_pytorch = config_module(str(Path(__file__).with_name("versus_pytorch.py")))
# Cases whose step is `make_train_step`'s, so that its `apply_gradients` is the one swapped.
CASES = (
    *versus_pytorch.BACKBONE_CASES,
    *versus_pytorch.FPN_CASES,
    "itoloc",
    "itoloc_plain_cnn",
    "ensemble",
)


def _updated(state, grads, batch_stats):
    """The optimiser's update applied whatever the loss, and the updates."""
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    new = state.replace(
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        step=state.step + 1,
    )
    if batch_stats is not None:
        new = new.replace(batch_stats=batch_stats)
    return new, updates


def unguarded(state, grads, loss, batch_stats=None):
    """No guard: the update whatever the loss (a floor for the guard's cost)."""
    grad_norm = optax.tree.norm(grads)
    new, updates = _updated(state, grads, batch_stats)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    return new, {
        "grad_norm": grad_norm,
        "param_norm": optax.tree.norm(new.params),
        "update_norm": optax.tree.norm(updates),
        "finite": finite.astype(jnp.float32),
    }


def bare(state, grads, loss, batch_stats=None):
    """No guard and no norms: the update alone, as the PyTorch twins step."""
    return _updated(state, grads, batch_stats)[0], {
        "finite": jnp.isfinite(loss).astype(jnp.float32)
    }


GUARDS = {
    "jaxfp": steps.apply_gradients,  # "cond" or "where" by the parameter count
    "cond": partial(steps.apply_gradients, guard="cond"),
    "where": partial(steps.apply_gradients, guard="where"),
    "none": unguarded,
    "bare": bare,
}


def build(case: str, guard: str):
    """(one blocking step, the losses of its first two steps) with `guard`'s apply_gradients
    traced in: the second loss shows the first update."""
    if case not in CASES:
        raise ValueError(f"finite_guard: unknown case {case!r}; expected one of {CASES}")
    original = steps.apply_gradients
    steps.apply_gradients = GUARDS[guard]
    try:
        run, _, _ = versus_pytorch.jax_case(case)  # traces and compiles the step
    finally:
        steps.apply_gradients = original
    return run, [float(jnp.mean(run()["loss"])) for _ in range(2)]


def measure(cases: list[str], rounds: int, steps_per_round: int) -> list[dict]:
    rows = []
    for case in cases:
        built = {guard: build(case, guard) for guard in GUARDS}
        times: dict[str, list[float]] = {guard: [] for guard in GUARDS}
        for _ in range(rounds):
            for guard, (run, _) in built.items():
                start = time.perf_counter()
                for _ in range(steps_per_round):
                    run()
                times[guard].append((time.perf_counter() - start) / steps_per_round * 1e3)
        base = statistics.median(times["jaxfp"])
        for guard in GUARDS:
            ms = statistics.median(times[guard])
            rows.append(
                {
                    "case": case,
                    "guard": guard,
                    "ms_per_step": ms,
                    "ratio_to_jaxfp": ms / base,
                    "rounds_ms": times[guard],
                    "first_losses": built[guard][1],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="resnet18,resnet34,resnet50,fpn")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--out", default="runs/bench/finite_guard.json")
    args = parser.parse_args()
    rows = measure(args.cases.split(","), args.rounds, args.steps)
    print(f"{'case':<18}{'guard':<8}{'ms/step':>10}{'÷ jaxfp':>10}")
    for r in rows:
        print(
            f"{r['case']:<18}{r['guard']:<8}{r['ms_per_step']:>10.1f}{r['ratio_to_jaxfp']:>10.3f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": machine_info(), "rounds": args.rounds, "steps": args.steps, "rows": rows}
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

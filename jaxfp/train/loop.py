"""The training loop: resume, steps, logs, periodic evaluation and checkpoints, non-finite stop.

`LoopOptions` holds num_steps, log_every, eval_every, checkpoint_every, batch_size (for throughput),
max_to_keep and the seed of the run key. A run restarted in the same workdir with the same `shaping`
config restores the last checkpoint (state, run key, step) and continues; batches come from
`batch_at(step)` and per-step keys from folding the step into the run key, so a resumed run repeats
an unbroken one. A different `shaping` config clears the workdir's checkpoints and logs first.

With no workdir, `fit` runs in memory (no checkpoints, no resume, no progress bar; metrics go only
to `record`): a method's inner fits (GUFU's) go through this same loop.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxfp.train.checkpoint import Checkpointer
from jaxfp.train.logging import MetricWriter
from jaxfp.train.options import LoopOptions
from jaxfp.train.steps import Metrics, Step
from jaxfp.train.workdir import prepare_workdir


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN/inf; the message names the step and the last good checkpoint."""


def fit(
    options: LoopOptions,
    workdir: str | None,
    state: Any,
    train_step: Step,
    batch_at: Callable[[int], Any],
    eval_fn: Callable[[Any], Metrics] | None = None,
    block_each_step: bool = False,
    desc: str = "train",
    shaping: Any = None,
    after_eval: Callable[[Any, Metrics], Any] | None = None,
    stop_when: Callable[[Any], bool] | None = None,
    record: Callable[[int, Metrics], Any] | None = None,
) -> tuple[Any, list[dict[str, float]]]:
    """Train `state` to options.num_steps; returns (state, evaluation history).

    `shaping`: the config (or part of it) this run's result depends on (default: the options).
    `eval_fn(state)` may return per-member arrays (their mean is logged); `after_eval(state,
    scores)` returns the state to go on with (e.g. keeping the best parameters); `stop_when(state)`
    ends the run early after an evaluation, checkpointed, so a resumed run stops there too.
    `record(step, metrics)` also gets every logged step's metrics as the step returned them (on the
    host) and the evaluation scores; `workdir` None: in memory, where `record` is the only log."""
    t = options
    rng = jax.random.key(t.seed)
    start = 0
    checkpoints, writer = None, None
    if workdir is not None:
        prepare_workdir(workdir, dataclasses.asdict(t) if shaping is None else shaping)
        checkpoints = Checkpointer(os.path.join(workdir, "checkpoints"), t.max_to_keep)
        writer = MetricWriter(workdir)
        restored = checkpoints.restore_latest(state)
        if restored is not None:
            state, rng, start = restored
        writer.truncate_after(start)
    evaluations: list[dict[str, float]] = []
    pending: list[tuple[int, Metrics]] = []
    bar = tqdm(
        total=t.num_steps,
        initial=start,
        desc=desc,
        unit="step",
        dynamic_ncols=True,
        disable=workdir is None,
    )
    clock, clock_steps = time.perf_counter(), 0

    def log(step: int, means: Metrics, metrics: Metrics) -> None:
        if writer is not None:
            writer.write_scalars(step, means)
        if record is not None:
            record(step, metrics)

    def last_good() -> str:
        if checkpoints is None:
            return f"{desc} ran in memory: no checkpoint"
        last = checkpoints.latest_step()
        where = f"step {last}" if last is not None else "none"
        return f"last good checkpoint: {where} in {checkpoints.directory}"

    def flush() -> None:
        nonlocal clock, clock_steps
        if not pending:
            return
        # Stacked members report one value each: log the mean, and `finite` only when all are.
        raw = jax.device_get([m for _, m in pending])
        host = [{k: np.min(v) if k == "finite" else np.mean(v) for k, v in m.items()} for m in raw]
        for (step, _), metrics, per_member in zip(pending, host, raw, strict=True):
            if "finite" in metrics and not metrics["finite"]:
                bad = np.flatnonzero(np.atleast_1d(np.asarray(per_member["finite"])) == 0)
                which = (
                    f"member {', '.join(map(str, bad))} of the stacked seeds: "
                    if (np.ndim(per_member["finite"]) > 0)
                    else ""
                )
                log(step, metrics, per_member)
                bar.close()
                raise NonFiniteError(
                    f"{which}step {step}: non-finite training signal (loss={metrics.get('loss')}, "
                    f"grad_norm={metrics.get('grad_norm')}); training stopped, the state was not "
                    f"updated; {last_good()}"
                )
            log(step, metrics, per_member)
        if writer is not None:
            writer.flush()
        elapsed = time.perf_counter() - clock
        rate = clock_steps * t.batch_size / elapsed if elapsed > 0 else float("nan")
        bar.set_postfix(loss=f"{float(host[-1]['loss']):.4g}", samples_per_s=f"{rate:.0f}")
        bar.update(len(pending))
        pending.clear()
        clock, clock_steps = time.perf_counter(), 0

    try:
        stopped = stop_when is not None and start > 0 and stop_when(state)
        for step in range(start, t.num_steps if not stopped else start):
            state, metrics = train_step(state, batch_at(step), rng)
            if block_each_step:
                jax.block_until_ready(metrics)
            done = step + 1
            pending.append((done, metrics))
            clock_steps += 1
            last_step = done == t.num_steps
            save = last_step or (t.checkpoint_every > 0 and done % t.checkpoint_every == 0)
            if done % max(t.log_every, 1) == 0 or save:
                flush()
            evaluate = last_step or (t.eval_every > 0 and done % t.eval_every == 0)
            if eval_fn is not None and evaluate:
                raw = eval_fn(state)
                if after_eval is not None:
                    state = after_eval(state, raw)
                scores = {k: float(np.mean(np.asarray(v))) for k, v in raw.items()}
                named = {f"eval/{k}": v for k, v in scores.items()}
                log(done, named, named)
                evaluations.append({"step": done, **scores})
                stopped = stop_when is not None and stop_when(state)
                save = save or stopped
            if save and checkpoints is not None:
                checkpoints.save(done, state, rng)
            if stopped:
                flush()
                break
        flush()
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        if checkpoints is not None:
            checkpoints.close()
    return state, evaluations

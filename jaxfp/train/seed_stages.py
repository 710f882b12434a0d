"""Stages of a study trained for every seed at once: stacked states, one vmapped step, `fit`.

A stage is a named subfolder of the study's workdir with its own checkpoints and metrics; its
`shaping` (the settings its result depends on) decides whether a rerun resumes it or recomputes
it. Each seed draws its own batches from a generator seeded by (seed, stage name, step), so a
resumed stage sees the batches an unbroken one would have seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.loop import fit
from jaxfp.train.members import member_step, stack_members
from jaxfp.train.options import LoopOptions
from jaxfp.train.steps import Step
from jaxfp.train.whole_run import member_mesh

BatchOf = Callable[[np.random.Generator, int], Any]


class SeedStages:
    """Train stages of stacked seeds under `workdir`; stages sharing a step function share its
    compilation. `shared` is added to every stage's shaping (the data and seeds they all use)."""

    def __init__(
        self,
        workdir: str,
        seeds: Sequence[int],
        shared: dict[str, Any],
        execution: str = "vmap",
    ) -> None:
        self.workdir, self.seeds, self.shared = workdir, tuple(seeds), dict(shared)
        self.execution = execution  # member_step's: one vmapped program, or a step per seed
        self.mesh = member_mesh(len(self.seeds))
        self._steps: dict[Callable, Step] = {}

    def init(self, name: str, init: Callable[[jax.Array], Any]) -> Any:
        """`init(key)` for every seed (key named by seed and stage), stacked."""
        # One seed at a time, then stacked: XLA:CPU (jaxlib 0.10) deadlocks running a vmapped
        # init of two stacked 128-wide LSTM layers (their orthogonal initialisers' QRs).
        one = jax.jit(init)
        states = [one(named_key(seed, name, "init")) for seed in self.seeds]
        stacked = stack_members(states)
        return jax.device_put(stacked, NamedSharding(self.mesh, P("members")))

    def stage(
        self,
        name: str,
        init: Callable[[jax.Array], Any] | Any,
        step_fn: Callable,
        batch_of: BatchOf,
        options: LoopOptions,
        shaping: dict[str, Any],
        eval_fn: Callable[[Any], dict[str, jax.Array]] | None = None,
        after_eval: Callable[[Any, dict[str, jax.Array]], Any] | None = None,
        stop_when: Callable[[Any], bool] | None = None,
    ) -> Any:
        """Stacked states of every seed trained by `step_fn` (un-jitted, one seed's step) under
        workdir/name; `batch_of(rng, m)` draws seed m's batch. `init` is a per-seed init function
        or already stacked states (a fine-tune); `after_eval`/`stop_when` as in `fit` (e.g.
        `jaxfp.train.early_stopping`)."""
        states = self.init(name, init) if callable(init) else init

        def batch_at(step: int) -> Any:
            batches = [
                batch_of(np.random.default_rng(named_seed(seed, name, step)), m)
                for m, seed in enumerate(self.seeds)
            ]
            return jax.tree.map(lambda *b: np.stack(b), *batches)

        if step_fn not in self._steps:
            ids = [named_int(seed, "member") for seed in self.seeds]
            self._steps[step_fn] = member_step(
                step_fn, len(self.seeds), self.mesh, self.execution, member_ids=ids
            )
        workdir = os.path.join(self.workdir, name)
        shaping = {**self.shared, **shaping, "stage": name}
        states, _ = fit(
            options,
            workdir,
            states,
            self._steps[step_fn],
            batch_at,
            eval_fn,
            desc=name,
            shaping=shaping,
            after_eval=after_eval,
            stop_when=stop_when,
        )
        return states


def with_fresh_optimizer(states: Any, tx: optax.GradientTransformation) -> Any:
    """A copy of stacked states with a fresh optimizer `tx` (new moments, step 0) for a fine-tune;
    the caller's states stay valid (a stage's steps donate what they are given)."""
    params = jax.tree.map(jnp.copy, states.params)
    opt_state = jax.jit(jax.vmap(tx.init))(params)
    return states.replace(
        params=params, step=jnp.zeros_like(states.step), tx=tx, opt_state=opt_state
    )

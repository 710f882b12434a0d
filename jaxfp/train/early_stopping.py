"""Early stopping on a validation loss, with the best parameters kept inside the trained state.

`Tracked` wraps a training state (one run or stacked members) with the best parameters so far,
their validation loss and how many evaluations ago they were found. It is what `fit` trains and
checkpoints, so a resumed run still holds its best parameters and knows whether it had stopped.
Stacked members each keep their own best; a run stops once every member has gone `patience`
evaluations without improving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxfp.train.steps import Step


class Tracked(struct.PyTreeNode):
    state: Any
    best_params: Any
    best_loss: jax.Array  # () or (members,)
    stale_evals: jax.Array  # evaluations since the best, same shape


def track(state: Any, members: int | None = None) -> Tracked:
    """`state` (stacked over `members` when given) with no best yet."""
    shape = () if members is None else (members,)
    best_loss, stale = jnp.full(shape, jnp.inf, jnp.float32), jnp.zeros(shape, jnp.int32)
    if members is not None:  # placed like the members' parameters (a restore keeps placement)
        sharding = jax.tree.leaves(state.params)[0].sharding
        best_loss, stale = jax.device_put((best_loss, stale), sharding)
    return Tracked(
        state=state,
        best_params=jax.tree.map(jnp.copy, state.params),  # the state's own buffers are donated
        best_loss=best_loss,
        stale_evals=stale,
    )


def tracking_step(step_fn: Step) -> Callable[[Tracked, Any, jax.Array], tuple[Tracked, Any]]:
    """`step_fn` applied to the wrapped state (un-jitted, so it can be vmapped over members)."""

    def step(tracked: Tracked, batch: Any, rng: jax.Array) -> tuple[Tracked, Any]:
        state, metrics = step_fn(tracked.state, batch, rng)
        return tracked.replace(state=state), metrics

    return step


@jax.jit
def _record(tracked: Tracked, loss: jax.Array) -> Tracked:
    improved = loss < tracked.best_loss

    def pick(new: jax.Array, old: jax.Array) -> jax.Array:
        mask = improved.reshape(improved.shape + (1,) * (new.ndim - improved.ndim))
        return jnp.where(mask, new, old)

    return tracked.replace(
        best_params=jax.tree.map(pick, tracked.state.params, tracked.best_params),
        best_loss=jnp.where(improved, loss, tracked.best_loss),
        stale_evals=jnp.where(improved, 0, tracked.stale_evals + 1),
    )


def record(key: str) -> Callable[[Tracked, dict[str, Any]], Tracked]:
    """An `after_eval` for `fit`: keep the parameters whose evaluation `key` is lowest."""

    def after_eval(tracked: Tracked, scores: dict[str, Any]) -> Tracked:
        return _record(tracked, jnp.asarray(scores[key], jnp.float32))

    return after_eval


def patience_exhausted(patience: int) -> Callable[[Tracked], bool]:
    """A `stop_when` for `fit`: every member has gone `patience` evaluations without improving."""

    def stop(tracked: Tracked) -> bool:
        return patience > 0 and bool(np.all(np.asarray(tracked.stale_evals) >= patience))

    return stop


def best_state(tracked: Tracked) -> Any:
    """The wrapped state carrying its best parameters."""
    return tracked.state.replace(params=tracked.best_params)

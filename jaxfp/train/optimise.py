"""Short in-memory optimisations (a method's inner fits: an autoencoder, a GNN, an update module).

`optimise(loss_fn, static, params, data, key, ...)` runs Adam on `loss_fn(static, params, data, key)`
in jitted chunks of `CHUNK` steps (a scan). `loss_fn` is a module-level function and `static` a
hashable value holding everything else it needs (Flax modules are hashable), so JAX's own
compilation cache decides when a chunk can be reused: a later call with equal `static` and equal
shapes reuses it, anything else compiles anew — no hand-built cache keys. `data` is an argument, not a constant baked into the
step (XLA would otherwise constant-fold a graph's scatters for seconds per compile).
Losses go to the run's `MetricWriter` as `<name>/loss` every `log_every` steps; a non-finite loss
stops the run with a `NonFiniteError` naming the fit and the step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.train.logging import MetricWriter
from jaxfp.train.loop import NonFiniteError

LossFn = Callable[[Hashable, Any, Any, jax.Array], jax.Array]


class StepLog:
    """Where inner fits report: one writer, one running step count across fits."""

    def __init__(self, writer: MetricWriter | None = None, log_every: int = 50) -> None:
        self.writer, self.log_every, self.step = writer, log_every, 0

    def record(self, name: str, losses: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            raise NonFiniteError(
                f"{name}: non-finite loss {losses[bad[0]]} at step {bad[0] + 1} of {len(losses)}; "
                "stopped"
            )
        if self.writer is not None:
            logged = list(range(self.log_every - 1, len(losses), self.log_every))
            if not logged or logged[-1] != len(losses) - 1:  # the fit's last loss, always
                logged.append(len(losses) - 1)
            for i in logged:
                self.writer.write_scalars(self.step + i + 1, {f"{name}/loss": losses[i]})
            self.writer.flush()
        self.step += len(losses)


CHUNK = 50  # steps per compiled call: two compilations (whole and partial chunks) serve any count


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _adam_steps(
    loss_fn: LossFn,
    static: Hashable,
    learning_rate: float,
    partial: bool,
    params,
    opt_state,
    data,
    keys,
    active,
):
    """One Adam step per key in one call (a scan: no dispatch between steps, and XLA reuses its
    buffers from step to step). `partial`: steps past `active` leave the parameters as they are
    (a `cond`, ~0.2 ms a step, so only a fit's last, partial chunk compiles it)."""

    def step(carry, inputs):
        index, key = inputs

        def adam(carry):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn, argnums=1)(static, params, data, key)
            updates, opt_state = optax.adam(learning_rate).update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        if not partial:
            return adam(carry)
        return jax.lax.cond(index < active, adam, lambda carry: (carry, jnp.float32(0)), carry)

    (params, opt_state), losses = jax.lax.scan(
        step, (params, opt_state), (jnp.arange(keys.shape[0]), keys)
    )
    return params, opt_state, losses


def optimise(
    loss_fn: LossFn,
    static: Hashable,
    params: Any,
    data: Any,
    key: jax.Array,
    steps: int,
    learning_rate: float,
    name: str,
    log: StepLog | None = None,
) -> tuple[Any, float]:
    """`steps` Adam steps from `params`; returns (params, final loss). Every step's loss is checked."""
    if steps <= 0:
        return params, float("nan")
    opt_state, data = optax.adam(learning_rate).init(params), jax.device_put(data)
    keys = jax.random.split(key, steps)
    spare = -steps % CHUNK  # the last chunk's unused steps get copies of the last key
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], spare, axis=0)])
    losses = []
    for start in range(0, steps, CHUNK):
        params, opt_state, chunk = _adam_steps(
            loss_fn,
            static,
            learning_rate,
            steps - start < CHUNK,
            params,
            opt_state,
            data,
            keys[start : start + CHUNK],
            jnp.int32(steps - start),
        )
        losses.append(chunk)
    host = np.concatenate(jax.device_get(losses)).astype(np.float64)[:steps]
    (log or StepLog()).record(name, host)
    return params, float(host[-1])

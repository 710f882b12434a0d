"""Short in-memory optimisations (a method's inner fits: an autoencoder, a GNN, an update module).

`optimise(loss_fn, static, params, data, key, ...)` runs an optimiser by name (`train/optimisers`;
Adam by default) on `loss_fn(static, params, data, key)`
in jitted chunks of `CHUNK` steps (a scan), each chunk one step of an in-memory `train.loop.fit`
(the one training loop; no checkpoints). `loss_fn` is a module-level function and `static` a
hashable value holding everything else it needs (Flax modules are hashable), so JAX's own
compilation cache decides when a chunk can be reused: a later call with equal `static` and equal
shapes reuses it, anything else compiles anew — no hand-built cache keys. `data` is an argument, not a constant baked into the
step (XLA would otherwise constant-fold a graph's scatters for seconds per compile).
Losses go to the run's `MetricWriter` as `<name>/loss` every `log_every` steps; a non-finite loss
stops the run with a `NonFiniteError` naming the fit and the step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.train.logging import MetricWriter
from jaxfp.train.loop import NonFiniteError, fit
from jaxfp.train.optimisers import optimizer_from_config
from jaxfp.train.options import LoopOptions

LossFn = Callable[[Hashable, Any, Any, jax.Array], jax.Array]
# (name, learning_rate, ((field, value), ...)): an optimiser section in a hashable form, so that
# equal settings share a compiled chunk
OptimizerSpec = tuple[str, float, tuple[tuple[str, Any], ...]]


def optimizer_spec(optimizer: float | Mapping[str, Any]) -> OptimizerSpec:
    """A learning rate (Adam at that rate) or an optimiser section as an `OptimizerSpec`."""
    if not isinstance(optimizer, Mapping):
        return ("adam", float(optimizer), ())
    section = dict(optimizer)
    name, rate = section.pop("name", "adam"), float(section.pop("learning_rate"))
    if section.get("plateau_patience", 0):
        raise ValueError("optimise: reduce_on_plateau needs the loss in every update; not here")
    optimizer_from_config({"name": name, "learning_rate": rate, **section})  # checks the fields
    return (str(name), rate, tuple(sorted(section.items())))


def _transform(spec: OptimizerSpec) -> optax.GradientTransformation:
    name, rate, settings = spec
    return optimizer_from_config({"name": name, "learning_rate": rate, **dict(settings)})


class StepLog:
    """Where inner fits report: one writer, one running step count across fits."""

    def __init__(self, writer: MetricWriter | None = None, log_every: int = 50) -> None:
        self.writer, self.log_every, self.step = writer, log_every, 0
        self.curves: dict[str, np.ndarray] = {}  # each fit name's latest loss per step

    def record(self, name: str, losses: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            raise NonFiniteError(
                f"{name}: non-finite loss {losses[bad[0]]} at step {bad[0] + 1} of {len(losses)}; "
                "stopped"
            )
        self.curves[name] = losses
        if self.writer is not None:
            logged = list(range(self.log_every - 1, len(losses), self.log_every))
            if not logged or logged[-1] != len(losses) - 1:  # the fit's last loss, always
                logged.append(len(losses) - 1)
            for i in logged:
                self.writer.write_scalars(self.step + i + 1, {f"{name}/loss": losses[i]})
            self.writer.flush()
        self.step += len(losses)


def settled_step(losses: np.ndarray, window: int = 50, tolerance: float = 0.01) -> int:
    """The step by which a loss curve has flattened: the first step t whose last `window` losses'
    mean, and every such mean after it, lies within `tolerance` (relative) of the final one. A
    stopping rule that watched the running mean would have stopped there; a curve still moving
    at its end gives (close to) its length, one shorter than `window` gives its length."""
    losses = np.asarray(losses, np.float64)
    if len(losses) < window:
        return len(losses)
    means = np.convolve(losses, np.ones(window) / window, mode="valid")  # means[i]: steps i..i+w-1
    off = np.flatnonzero(np.abs(means - means[-1]) > tolerance * max(abs(means[-1]), 1e-12))
    first = 0 if off.size == 0 else int(off[-1]) + 1
    return first + window


CHUNK = 50  # steps per compiled call: two compilations (whole and partial chunks) serve any count


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _steps(
    loss_fn: LossFn,
    static: Hashable,
    spec: OptimizerSpec,
    partial: bool,
    params,
    opt_state,
    data,
    keys,
    active,
):
    """One optimiser step per key in one call (a scan: no dispatch between steps, and XLA reuses its
    buffers from step to step). `partial`: steps past `active` leave the parameters as they are
    (a `cond`, ~0.2 ms a step, so only a fit's last, partial chunk compiles it)."""

    def step(carry, inputs):
        index, key = inputs

        def update(carry):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn, argnums=1)(static, params, data, key)
            updates, opt_state = _transform(spec).update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        if not partial:
            return update(carry)
        return jax.lax.cond(index < active, update, lambda carry: (carry, jnp.float32(0)), carry)

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
    optimizer: float | Mapping[str, Any],
    name: str,
    log: StepLog | None = None,
) -> tuple[Any, float]:
    """`steps` optimiser steps from `params`; returns (params, final loss). `optimizer` is a
    learning rate (Adam) or an optimiser section (`train/optimisers`). Every step's loss is checked.

    An in-memory `fit` whose step is one compiled chunk of `CHUNK` optimiser steps on the state
    (params, optimiser state); it logs once, at its end, so the chunks run without a host sync."""
    if steps <= 0:
        return params, float("nan")
    spec = optimizer_spec(optimizer)
    opt_state, data = _transform(spec).init(params), jax.device_put(data)
    keys = jax.random.split(key, steps)
    spare = -steps % CHUNK  # the last chunk's unused steps get copies of the last key
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], spare, axis=0)])
    chunks = len(keys) // CHUNK
    chunk_keys = jnp.split(keys, chunks)  # one op, not a slice per chunk

    def batch_at(chunk: int) -> tuple[jax.Array, int]:  # the chunk's keys, steps left from it
        return chunk_keys[chunk], steps - chunk * CHUNK

    def chunk_step(state, batch, rng):
        (params, opt_state), (step_keys, left) = state, batch
        params, opt_state, losses = _steps(
            loss_fn,
            static,
            spec,
            left < CHUNK,
            params,
            opt_state,
            data,
            step_keys,
            jnp.int32(left),
        )
        return (params, opt_state), {"loss": losses}

    losses: list[np.ndarray] = []
    (params, _), _ = fit(
        LoopOptions(num_steps=chunks, batch_size=CHUNK, log_every=chunks),
        None,
        (params, opt_state),
        chunk_step,
        batch_at,
        desc=name,
        record=lambda chunk, metrics: losses.append(metrics["loss"]),
    )
    host = np.concatenate(losses).astype(np.float64)[:steps]
    (log or StepLog()).record(name, host)  # checks every step's loss, then logs
    return params, float(host[-1])

"""Pure train/eval steps: `state, metrics = step(state, batch, rng)`, the step folded into the key.

A loss function has the signature `loss_fn(params, state, batch, key) -> (loss, (metrics, batch_stats))`
(batch_stats None when the net has none); it receives the per-step key for dropout and noise.
A step whose loss or gradient is not finite leaves the state unchanged and reports `finite = 0`, so
the loop can stop with the last good parameters intact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxfp.train.state import TrainState

Metrics = dict[str, jax.Array]
LossFn = Callable[[Any, TrainState, Any, jax.Array], tuple[jax.Array, tuple[Metrics, Any]]]
Step = Callable[[TrainState, Any, jax.Array], tuple[TrainState, Metrics]]


# Parameter count from which the finite guard is a `cond` rather than a `where` (below).
# `experiments/bench/finite_guard.py` on XLA:CPU: the `where` is 11-15% slower on the ResNets
# (11-24 M parameters) and 5-7% on MobileNetV2 and ShuffleNetV2 (2.2 and 1.3 M); on iToLoc's
# adversarial net (0.45 M) the `cond` is 5% slower, on FPN (2.5 M) 1-6%.
COND_GUARD_MIN_PARAMS = 1_000_000
GUARDS = ("cond", "where")


def apply_gradients(
    state: TrainState,
    grads: Any,
    loss: jax.Array,
    batch_stats: Any = None,
    guard: str | None = None,
) -> tuple[TrainState, Metrics]:
    """Update `state` unless loss or gradients are non-finite; return norms for the logs.

    `guard` is how a bad step keeps the old state: "cond" runs the update inside a `lax.cond` on
    the finite test; "where" computes it and selects `where(finite, new, old)` leaf by leaf, which
    makes XLA:CPU copy every parameter and moment of a donated state to keep the old values; None
    takes "cond" from `COND_GUARD_MIN_PARAMS` parameters on, else "where". Vmapped over members
    with a batched test, the `cond` becomes the same `where`. Both do the same arithmetic; after the
    first step their values can differ in the last bits, as XLA fuses the two differently.
    """
    if guard is None:
        size = sum(leaf.size for leaf in jax.tree.leaves(state.params))
        guard = "cond" if size >= COND_GUARD_MIN_PARAMS else "where"
    if guard not in GUARDS:
        raise ValueError(f"apply_gradients: guard {guard!r}; expected one of {GUARDS} or None")
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    # Transforms that read the loss (e.g. optax.contrib.reduce_on_plateau) get it as `value`.
    extra = {"value": loss} if isinstance(state.tx, optax.GradientTransformationExtraArgs) else {}

    def update(state: TrainState) -> tuple[TrainState, jax.Array]:
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params, **extra)
        new = state.replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state)
        if batch_stats is not None:
            new = new.replace(batch_stats=batch_stats)
        return new, optax.tree.norm(updates).astype(grad_norm.dtype)

    # A bad step keeps the old state; only the step counter moves on.
    if guard == "cond":
        kept, update_norm = jax.lax.cond(
            finite, update, lambda state: (state, jnp.zeros_like(grad_norm)), state
        )
    else:
        updated, update_norm = update(state)
        kept = jax.tree.map(lambda new, old: jnp.where(finite, new, old), updated, state)
        update_norm = jnp.where(finite, update_norm, 0.0)
    kept = kept.replace(step=state.step + 1)
    norms = {
        "grad_norm": grad_norm,
        "param_norm": optax.tree.norm(kept.params),
        "update_norm": update_norm,
        "finite": finite.astype(jnp.float32),
    }
    return kept, norms


def make_train_step(loss_fn: LossFn, jit: bool = True, donate: bool = True) -> Step:
    """A supervised step around `loss_fn`; jitted with the state donated by default."""

    def train_step(state: TrainState, batch: Any, rng: jax.Array) -> tuple[TrainState, Metrics]:
        key = jax.random.fold_in(rng, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (metrics, batch_stats)), grads = grad_fn(state.params, state, batch, key)
        state, norms = apply_gradients(state, grads, loss, batch_stats)
        return state, {"loss": loss, **metrics, **norms}

    if not jit:
        return train_step
    return jax.jit(train_step, donate_argnums=(0,) if donate else ())


def regression_loss(predict: Callable[..., jax.Array], l2: float = 0.0) -> LossFn:
    """Mean squared error of `predict(variables, x, train=True, rngs=..., mutable=...)` on batch['y'].

    Works for nets with and without batch norm; an optional L2 penalty on the parameters.
    """

    def loss_fn(params: Any, state: TrainState, batch: Any, key: jax.Array):
        variables = {"params": params}
        if state.batch_stats is not None:
            variables["batch_stats"] = state.batch_stats
            out, updates = predict(
                variables, batch["x"], train=True, rngs={"dropout": key}, mutable=["batch_stats"]
            )
            batch_stats = updates["batch_stats"]
        else:
            out, batch_stats = (
                predict(variables, batch["x"], train=True, rngs={"dropout": key}),
                None,
            )
        mse = jnp.mean(jnp.sum((out - batch["y"]) ** 2, axis=-1))
        loss = mse + l2 * sum(jnp.sum(p**2) for p in jax.tree.leaves(params))
        return loss, ({"mse": mse}, batch_stats)

    return loss_fn

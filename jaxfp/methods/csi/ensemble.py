"""Combining the position estimates of ensemble members (CSI positioning paper, Fig. 3 block A).

`weighted_average` weighs members (e.g. by inverse validation error); `consensus` keeps, per sample,
the members that agree: those within `radius_m` of the members' coordinate-wise median, averaged
with their weights (all members when none is that close). The paper names weighted averaging and
"consensus regions" without a formula; the median-radius rule is our choice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def weighted_average(predictions: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """(members, n, 2) -> (n, 2); `weights` (members,) are normalised to sum to one."""
    members = predictions.shape[0]
    weights = jnp.ones(members) if weights is None else jnp.asarray(weights, predictions.dtype)
    weights = weights / jnp.sum(weights)
    return jnp.einsum("m,mnc->nc", weights, predictions)


def inverse_error_weights(validation_errors: jax.Array) -> jax.Array:
    """Member weights proportional to 1 / mean validation error."""
    return 1.0 / jnp.maximum(jnp.asarray(validation_errors), 1e-9)


def consensus(
    predictions: jax.Array, radius_m: float, weights: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """(estimates (n, 2), number of agreeing members (n,)) by the median-radius rule."""
    members = predictions.shape[0]
    weights = jnp.ones(members) if weights is None else jnp.asarray(weights, predictions.dtype)
    median = jnp.median(predictions, axis=0)
    near = jnp.linalg.norm(predictions - median[None], axis=-1) <= radius_m  # (members, n)
    near = jnp.where(near.any(axis=0, keepdims=True), near, True)
    w = near * weights[:, None]
    estimate = jnp.einsum("mn,mnc->nc", w, predictions) / jnp.sum(w, axis=0)[:, None]
    return estimate, near.sum(axis=0)

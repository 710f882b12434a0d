"""Predictions of stacked seeds, each seed on its own data: seed s's parameters read seed s's
walks and radio map (a seed is a replicate with its own world or walks)."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.common.chunks import map_chunks
from jaxfp.methods.fpn.losses import cross_entropy
from jaxfp.methods.fpn.nets import Positioner


@functools.partial(jax.jit, static_argnums=0)
def stacked_logits(net: Positioner, params: Any, signals: jax.Array, maps: jax.Array) -> jax.Array:
    """(S, B, T, R) logits of seed s's parameters on its walks signals[s] (S, B, T, L) with its
    map maps[s] (S, R, L)."""
    return jax.vmap(lambda p, x, m: net.apply({"params": p}, x, m)[0])(params, signals, maps)


@functools.partial(jax.jit, static_argnums=0)
def stacked_cross_entropy(
    net: Positioner, params: Any, signals: jax.Array, maps: jax.Array, point: jax.Array
) -> jax.Array:
    """(S,) each seed's cross-entropy on its own walks (points (S, B, T))."""
    logits = stacked_logits(net, params, signals, maps)
    return jax.vmap(cross_entropy)(logits, point)


def predict_points(
    net: Positioner, params: Any, signals: np.ndarray, maps: np.ndarray, chunk: int
) -> np.ndarray:
    """(S, W, T) most probable reference point at each step of each seed's walks (S, W, T, L),
    `chunk` walks at a time."""
    maps = jnp.asarray(maps)

    def run(block: np.ndarray, _: int) -> jax.Array:  # block: (chunk, S, T, L)
        logits = stacked_logits(net, params, jnp.asarray(np.swapaxes(block, 0, 1)), maps)
        return jnp.argmax(logits, -1)

    return map_chunks(run, np.swapaxes(signals, 0, 1), chunk, axis=1)

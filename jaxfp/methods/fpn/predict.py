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


def _over_walks(
    net: Positioner,
    params: Any,
    signals: np.ndarray,
    maps: np.ndarray,
    chunk: int,
    reduce: Any,
) -> Any:
    """`reduce(logits)` of each seed's walks (S, W, T, L), `chunk` walks at a time."""
    maps = jnp.asarray(maps)

    def run(block: np.ndarray, _: int) -> Any:  # block: (chunk, S, T, L)
        return reduce(stacked_logits(net, params, jnp.asarray(np.swapaxes(block, 0, 1)), maps))

    return map_chunks(run, np.swapaxes(signals, 0, 1), chunk, axis=1)


def predict_points(
    net: Positioner, params: Any, signals: np.ndarray, maps: np.ndarray, chunk: int
) -> np.ndarray:
    """(S, W, T) most probable reference point at each step of each seed's walks (S, W, T, L),
    `chunk` walks at a time."""
    return _over_walks(net, params, signals, maps, chunk, lambda logits: jnp.argmax(logits, -1))


def predict_top(
    net: Positioner, params: Any, signals: np.ndarray, maps: np.ndarray, chunk: int, k: int
) -> dict[str, np.ndarray]:
    """{"point", "prob"}: (S, W, T, k) the k most probable reference points at each step, most
    probable first, and their softmax probabilities. Ranked on the logits, ties to the lower
    index as argmax breaks them, so the first point is `predict_points`' (softmax can round
    distinct logits into ties)."""

    def reduce(logits: jax.Array) -> dict[str, jax.Array]:
        _, point = jax.lax.top_k(logits, k)
        prob = jnp.take_along_axis(jax.nn.softmax(logits, -1), point, -1)
        return {"point": point, "prob": prob}

    return _over_walks(net, params, signals, maps, chunk, reduce)


def expected_position(
    top: dict[str, np.ndarray], xy: np.ndarray, floor: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (..., 2) and floors (...) read off `predict_top`'s output: the probability-weighted
    mean of the k most probable reference points lying on the most probable one's floor, and that
    floor (k = 1: the most probable point, the paper's readout). Points elsewhere would pull the
    position through a floor, so they are left out."""
    if k < 1 or k > top["point"].shape[-1]:
        raise ValueError(f"readout k: expected 1..{top['point'].shape[-1]}, got {k}")
    if k == 1:  # exactly the point's place (a weighted mean of one rounds)
        return xy[top["point"][..., 0]], floor[top["point"][..., 0]]
    point, prob = top["point"][..., :k], top["prob"][..., :k]
    on_floor = floor[point] == floor[point[..., :1]]
    weight = prob * on_floor  # the most probable point always counts
    position = (weight[..., None] * xy[point]).sum(-2) / weight.sum(-1, keepdims=True)
    return position, floor[point[..., 0]]

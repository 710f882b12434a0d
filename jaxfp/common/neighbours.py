"""Nearest neighbours over plain arrays: pairwise distances and inverse-distance-weighted (IDW)
interpolation, jitted and chunked over queries so memory stays at O(chunk x references)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.common.chunks import map_chunks

METRICS = ("euclidean", "manhattan", "cosine")


def pairwise_distance(
    queries: jax.Array, refs: jax.Array, metric: str, ref_block: int = 1024
) -> jax.Array:
    """(q, R) distances; manhattan scans reference blocks to bound memory at q x block x d."""
    if metric == "euclidean":
        sq = (
            jnp.sum(queries**2, -1, keepdims=True)
            - 2.0 * queries @ refs.T
            + jnp.sum(refs**2, -1)[None, :]
        )
        return jnp.sqrt(jnp.maximum(sq, 0.0))
    if metric == "cosine":
        qn = queries / jnp.maximum(jnp.linalg.norm(queries, axis=-1, keepdims=True), 1e-12)
        rn = refs / jnp.maximum(jnp.linalg.norm(refs, axis=-1, keepdims=True), 1e-12)
        return 1.0 - qn @ rn.T
    if metric == "manhattan":
        n_refs = refs.shape[0]
        blocks = -(-n_refs // ref_block)
        padded = jnp.pad(refs, ((0, blocks * ref_block - n_refs), (0, 0)))
        per_block = jax.lax.map(
            lambda block: jnp.sum(jnp.abs(queries[:, None, :] - block[None]), -1),
            padded.reshape(blocks, ref_block, -1),
        )
        return jnp.moveaxis(per_block, 0, 1).reshape(queries.shape[0], -1)[:, :n_refs]
    raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")


def inverse_distance_weights(distances: jax.Array) -> jax.Array:
    """1 / (d + 1e-6), unnormalised (an exact match dominates without dividing by zero)."""
    return 1.0 / (distances + 1e-6)


def idw_average(
    queries: np.ndarray,
    refs: np.ndarray,
    values: np.ndarray,
    k: int,
    metric: str = "euclidean",
    chunk: int = 1024,
) -> np.ndarray:
    """Per query, the inverse-distance-weighted mean of `values` at its k nearest `refs`
    (WkNN over plain arrays)."""
    if len(queries) == 0:
        return np.zeros((0, *np.shape(values)[1:]), np.float32)
    k = min(k, len(refs))
    refs_j, values_j = jnp.asarray(refs, jnp.float32), jnp.asarray(values, jnp.float32)
    return map_chunks(
        lambda block, _: _idw_chunk(jnp.asarray(block, jnp.float32), refs_j, values_j, k, metric),
        np.asarray(queries),
        chunk,
    )


@functools.partial(jax.jit, static_argnames=("k", "metric"))
def _idw_chunk(queries, refs, values, k, metric):
    neg_dist, nearest = jax.lax.top_k(-pairwise_distance(queries, refs, metric), k)
    weights = inverse_distance_weights(-neg_dist)
    return jnp.einsum("qk,qk...->q...", weights, values[nearest]) / weights.sum(1)[:, None]

"""kNN and WkNN fingerprint positioning, jitted and chunked over queries.

Distances come from one matmul per query chunk (euclidean, cosine) or a scan over reference blocks
(manhattan), so memory stays at O(chunk x references). Coordinates are centred on the reference set's
mean in float64 before they reach float32 (UJIIndoorLoc's EPSG:3857 northings are ~4.9e6 m, where
float32 would round to 0.5 m). Floor and building are weighted votes of the k neighbours.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.common.chunks import map_chunks
from jaxfp.common.neighbours import METRICS, inverse_distance_weights, pairwise_distance
from jaxfp.data.representations import fit_min_rss, represent
from jaxfp.data.types import FingerprintSet


class KnnIndex(NamedTuple):
    refs: jax.Array  # (R, d) float32, in the chosen representation
    xy: jax.Array  # (R, 2) float32, centred
    floor: jax.Array  # (R,) int32 class index
    building: jax.Array  # (R,) int32 class index
    origin: np.ndarray  # (2,) float64
    floor_values: np.ndarray
    building_values: np.ndarray
    min_rss: float
    representation: str


def build_index(
    reference: FingerprintSet, representation: str, min_rss: float | None = None
) -> KnnIndex:
    """Reference fingerprints in `representation`, ready for queries."""
    min_rss = fit_min_rss(reference.rss, reference.detected) if min_rss is None else float(min_rss)
    origin = reference.xy.mean(axis=0)
    floor = reference.floor if reference.floor is not None else np.zeros(reference.n, np.int64)
    building = (
        reference.building if reference.building is not None else np.zeros(reference.n, np.int64)
    )
    floor_values, floor_idx = np.unique(floor, return_inverse=True)
    building_values, building_idx = np.unique(building, return_inverse=True)
    return KnnIndex(
        refs=jnp.asarray(represent(reference.rss, reference.detected, representation, min_rss)),
        xy=jnp.asarray((reference.xy - origin).astype(np.float32)),
        floor=jnp.asarray(floor_idx.astype(np.int32)),
        building=jnp.asarray(building_idx.astype(np.int32)),
        origin=origin,
        floor_values=floor_values,
        building_values=building_values,
        min_rss=min_rss,
        representation=representation,
    )


@functools.partial(jax.jit, static_argnames=("k", "weighted", "metric", "n_floors", "n_buildings"))
def query_chunk(
    index_arrays: tuple[jax.Array, jax.Array, jax.Array, jax.Array],
    queries: jax.Array,
    k: int,
    weighted: bool,
    metric: str,
    n_floors: int,
    n_buildings: int,
) -> dict[str, jax.Array]:
    """Estimates for one chunk of queries: centred xy, floor and building class indices."""
    refs, ref_xy, ref_floor, ref_building = index_arrays
    dist = pairwise_distance(queries, refs, metric)
    neg_dist, nbr = jax.lax.top_k(-dist, k)
    weights = inverse_distance_weights(-neg_dist) if weighted else jnp.ones_like(neg_dist)
    weights = weights / jnp.sum(weights, -1, keepdims=True)
    xy = jnp.einsum("qk,qkc->qc", weights, ref_xy[nbr])

    def vote(labels: jax.Array, n_classes: int) -> jax.Array:
        ballots = jax.nn.one_hot(labels[nbr], n_classes) * weights[..., None]
        return jnp.argmax(ballots.sum(1), -1)

    return {
        "xy": xy,
        "floor": vote(ref_floor, n_floors),
        "building": vote(ref_building, n_buildings),
        "neighbours": nbr,
        "distances": -neg_dist,
    }


def predict(
    index: KnnIndex,
    queries: FingerprintSet,
    k: int,
    weighted: bool = True,
    metric: str = "euclidean",
    chunk: int = 128,
) -> dict[str, np.ndarray]:
    """xy (float64, original frame), floor, building, neighbours for every query.

    Queries go through in fixed-size chunks (the last one padded) so the step compiles once.
    """
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {METRICS}, got {metric!r}")
    if not 1 <= k <= index.refs.shape[0]:
        raise ValueError(f"k: expected 1..{index.refs.shape[0]} (the reference count), got {k}")
    if queries.n_aps != index.refs.shape[1]:
        raise ValueError(
            f"{queries.source}: expected {index.refs.shape[1]} AP columns like the reference set, "
            f"got {queries.n_aps}"
        )
    q = represent(queries.rss, queries.detected, index.representation, index.min_rss)
    arrays = (index.refs, index.xy, index.floor, index.building)

    def run(block: np.ndarray, _: int) -> dict[str, jax.Array]:
        return query_chunk(
            arrays,
            jnp.asarray(block),
            k=k,
            weighted=weighted,
            metric=metric,
            n_floors=len(index.floor_values),
            n_buildings=len(index.building_values),
        )

    merged = map_chunks(run, q, chunk)
    merged["xy"] = merged["xy"].astype(np.float64) + index.origin
    merged["floor"] = index.floor_values[merged["floor"]]
    merged["building"] = index.building_values[merged["building"]]
    return merged

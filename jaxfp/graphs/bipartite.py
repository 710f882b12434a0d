"""GUFU's site graph (§4.2): sample nodes and AP nodes, edges where an AP is detected, virtual edges
between similar samples, and its padded `jraph.GraphsTuple` form.

Choices where the paper's symbols were lost, one line each:
- edge weight = RSS (dBm) + 120, so every detected AP gives a positive weight.
- an AP node's feature = the edge-weighted mean of its sample neighbours' features.
- virtual edges join sample pairs whose feature cosine similarity exceeds `threshold` (both
  directions in the GraphsTuple); `max_per_node` optionally keeps each sample's most similar ones.
- node order in the GraphsTuple: samples, then APs, then padding; every sample-AP edge appears in
  both directions; edge features start as the mean of their end nodes' features, which the
  model computes from the nodes (`edge_start_features`), so the padded graph stores none (stored on the
  10,000-node bench, they would take 267 MB a graph, written and copied for every graph built).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import jraph
import numpy as np
import scipy.sparse

from jaxfp.common.rss_scale import OFFSET_DB


class SiteGraph(NamedTuple):
    """A host-side site graph: `num_samples` sample nodes, then one AP node per entry of ap_ids."""

    sample_features: np.ndarray  # (S, F) float32
    ap_ids: np.ndarray  # (A,)
    edge_sample: np.ndarray  # (E,) int64, sample node of each edge
    edge_ap: np.ndarray  # (E,) int64, AP index (0..A-1) of each edge
    edge_weight: np.ndarray  # (E,) float32, RSS + 120
    virtual: np.ndarray  # (V, 2) int64 sample pairs, i < j

    @property
    def num_samples(self) -> int:
        return int(self.sample_features.shape[0])

    @property
    def num_aps(self) -> int:
        return int(len(self.ap_ids))

    def ap_features(self) -> np.ndarray:
        """(A, F): the edge-weighted mean of each AP's sample neighbours (zeros if it has none)."""
        # A sparse (APs x samples) product: np.add.at over ~700k edges took 2.5 s a graph.
        weights = scipy.sparse.csr_matrix(
            (self.edge_weight.astype(np.float64), (self.edge_ap, self.edge_sample)),
            shape=(self.num_aps, self.num_samples),
        )
        out = weights @ self.sample_features.astype(np.float64)
        total = np.asarray(weights.sum(1)).ravel()
        return (out / np.maximum(total, 1e-12)[:, None]).astype(np.float32)

    def rss(self) -> np.ndarray:
        """(S, A) RSS in dBm, NaN where a sample has no edge to the AP."""
        out = np.full((self.num_samples, self.num_aps), np.nan, np.float32)
        out[self.edge_sample, self.edge_ap] = self.edge_weight - OFFSET_DB
        return out


def build_site_graph(rss_dbm: np.ndarray, ap_ids: np.ndarray, features: np.ndarray) -> SiteGraph:
    """Edges where rss_dbm (samples, APs; NaN = not detected) is finite; no virtual edges yet."""
    rss_dbm = np.asarray(rss_dbm, np.float32)
    if rss_dbm.ndim != 2 or rss_dbm.shape[1] != len(ap_ids):
        raise ValueError(
            f"rss_dbm: expected (samples, {len(ap_ids)} APs), got shape {rss_dbm.shape}"
        )
    if len(features) != len(rss_dbm):
        raise ValueError(
            f"features: expected {len(rss_dbm)} rows (one per sample), got {len(features)}"
        )
    detected = np.isfinite(rss_dbm)
    too_weak = detected & (rss_dbm <= -OFFSET_DB)
    if too_weak.any():
        s, a = np.argwhere(too_weak)[0]
        raise ValueError(
            f"rss_dbm[{s}, {a}] = {rss_dbm[s, a]} dBm: detected values must exceed {-OFFSET_DB} dBm "
            "(not detected is NaN)"
        )
    # Row by row, as np.nonzero gives them, from one flat index (4x faster on 10,000 x 450)
    flat = np.flatnonzero(detected)
    edge_sample = flat // max(detected.shape[1], 1)
    edge_ap = flat - edge_sample * detected.shape[1]
    return SiteGraph(
        np.asarray(features, np.float32),
        np.asarray(ap_ids),
        edge_sample.astype(np.int64),
        edge_ap.astype(np.int64),
        (rss_dbm[edge_sample, edge_ap] + OFFSET_DB).astype(np.float32),
        np.zeros((0, 2), np.int64),
    )


def _in_blocks(pairs_of_block, count: int, block: int) -> np.ndarray:
    """(P, 2) pairs from `pairs_of_block(start)` for start = 0, block, 2 block, ... < count,
    blocks on a thread per core (numpy's products, comparisons and sorts release the GIL;
    `similar_pairs` over the 10,000-record bench's codes takes ~0.22 s on one thread or two:
    the block products are themselves threaded), concatenated in block order."""
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        pairs = list(pool.map(pairs_of_block, range(0, count, block)))
    found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return found.astype(np.int64).reshape(-1, 2)


def similar_pairs(
    features: np.ndarray, threshold: float, max_per_node: int | None = None, block: int = 2048
) -> np.ndarray:
    """(V, 2) sample pairs i < j with cosine similarity > threshold, computed block by block;
    with `max_per_node` = k a node keeps its pairs at or above its k-th largest similarity."""
    unit = _unit_rows(features)

    def pairs_of_block(start: int) -> np.ndarray:
        sim = unit[start : start + block] @ unit.T
        width = sim.shape[1]
        sim[np.arange(len(sim)), np.arange(start, start + len(sim))] = -np.inf  # no self loops
        # One flat index per pair, row by row (4x faster than a 2-D nonzero)
        flat = np.flatnonzero(sim > threshold)
        i = flat // width
        j = flat - i * width
        if max_per_node is not None and len(i):
            # The k-th largest is looked up among the pairs above the threshold only, and only in
            # rows with more than k of them (partitioning whole rows takes ~70 % of the function
            # on the 10,000-node bench, where every row has ~300 such pairs)
            values = sim.ravel()[flat]
            counts = np.bincount(i, minlength=len(sim))
            crowded = counts > max_per_node
            if crowded.any():
                cut = np.full(len(sim), -np.inf, values.dtype)
                cut[crowded] = _kth_largest_per_row(i, values, counts, crowded, max_per_node)
                keep = values >= cut[i]
                i, j = i[keep], j[keep]
        return np.column_stack([start + i, j])

    found = np.sort(_in_blocks(pairs_of_block, len(unit), block), axis=1)
    # unique pairs through one int64 key each (np.unique over rows is 3x slower)
    key = np.unique(found[:, 0] * len(unit) + found[:, 1])
    return np.column_stack([key // len(unit), key % len(unit)]).astype(np.int64).reshape(-1, 2)


def with_virtual_edges(
    graph: SiteGraph, threshold: float, max_per_node: int | None = None
) -> SiteGraph:
    """The graph with virtual edges between its similar sample nodes."""
    return graph._replace(virtual=similar_pairs(graph.sample_features, threshold, max_per_node))


def _kth_largest_per_row(
    rows: np.ndarray, values: np.ndarray, counts: np.ndarray, crowded: np.ndarray, k: int
) -> np.ndarray:
    """The k-th largest of `values` in each `crowded` row (`rows` ascending, `counts` per row)."""
    first = (np.cumsum(counts) - counts)[crowded] + k - 1
    if values.dtype == np.float32:
        # One int64 key per pair, row ascending then value descending (the float's bits made
        # order-preserving): a stable integer sort, 1.7x faster than the argsort below
        order = np.sort((rows.astype(np.int64) << 32) | _descending_bits(values), kind="stable")
        return _from_descending_bits(order[first] & 0xFFFFFFFF)
    # rows ascending, each row's values descending (exact in float64: the row times 4
    # dominates a similarity in [-1, 1])
    order = np.argsort(4.0 * rows - values.astype(np.float64), kind="stable")
    return values[order[first]]


def _descending_bits(values: np.ndarray) -> np.ndarray:
    """float32 values as int64 in [0, 2**32), larger values giving smaller integers."""
    bits = values.astype(np.float32).view(np.int32)
    ordered = bits ^ ((bits >> 31) & np.int32(0x7FFFFFFF))  # signed-int order = float order
    return np.int64(2**31 - 1) - ordered.astype(np.int64)


def _from_descending_bits(key: np.ndarray) -> np.ndarray:
    """The inverse of `_descending_bits`."""
    ordered = (np.int64(2**31 - 1) - key).astype(np.int32)
    return (ordered ^ ((ordered >> 31) & np.int32(0x7FFFFFFF))).view(np.float32)


def _unit_rows(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def old_new_pairs(
    features: np.ndarray,
    num_old: int,
    threshold: float,
    per_new: int,
    point_of_old: np.ndarray | None = None,
    block: int = 1024,
) -> np.ndarray:
    """(P, 2) pairs (old sample, new sample) joining each new sample (rows `num_old` on) to its
    `per_new` most similar old samples with cosine similarity > threshold.

    `point_of_old` (an id per old sample) allows one old sample per point: the most similar one,
    so a database that repeats a point ~100 times cannot fill a new sample's list with that point.
    """
    unit = _unit_rows(features)
    old, new = unit[:num_old], unit[num_old:]
    if num_old == 0 or len(new) == 0 or per_new <= 0:
        return np.zeros((0, 2), np.int64)
    if point_of_old is None:
        point_of_old = np.arange(num_old)
    order = np.argsort(point_of_old, kind="stable")
    sorted_points = point_of_old[order]
    starts = np.flatnonzero(np.r_[True, sorted_points[1:] != sorted_points[:-1]])
    old_sorted = old[order]

    def pairs_of_block(start: int) -> np.ndarray:
        sim = new[start : start + block] @ old_sorted.T
        best = np.maximum.reduceat(sim, starts, axis=1)  # (rows, points)
        # the first old sample reaching its point's best similarity
        at_best = sim >= np.repeat(best, np.diff(np.r_[starts, num_old]), axis=1)
        first = np.minimum.reduceat(np.where(at_best, np.arange(num_old), num_old), starts, axis=1)
        if per_new < best.shape[1]:  # exactly k (ties broken by position), then the threshold
            top = np.argpartition(-best, per_new - 1, axis=1)[:, :per_new]
            kept = np.full(best.shape, -np.inf)
            np.put_along_axis(kept, top, np.take_along_axis(best, top, axis=1), axis=1)
            best = kept
        rows, points = np.nonzero(best > threshold)
        return np.column_stack([order[first[rows, points]], num_old + start + rows])

    return _in_blocks(pairs_of_block, len(new), block)


class Padded(NamedTuple):
    """A padded GraphsTuple and its masks; edges = {'weight', 'virtual'}."""

    graph: jraph.GraphsTuple
    node_mask: np.ndarray
    edge_mask: np.ndarray


def to_graphs_tuple(
    graph: SiteGraph, node_budget: int, edge_budget: int, ap_features: np.ndarray | None = None
) -> Padded:
    """One GraphsTuple padded to `node_budget` nodes and `edge_budget` edges (plus one padding graph).

    The budgets include the padding graph's node (at least one node is needed for it).
    `ap_features`: the AP nodes' starting features (default: `graph.ap_features()`).
    """
    s, a = graph.num_samples, graph.num_aps
    n_nodes = s + a
    if ap_features is None:
        ap_features = graph.ap_features()
    elif ap_features.shape != (a, graph.sample_features.shape[1]):
        raise ValueError(
            f"ap_features: expected ({a} APs, {graph.sample_features.shape[1]}), "
            f"got shape {ap_features.shape}"
        )
    nodes = np.concatenate([graph.sample_features, np.asarray(ap_features, np.float32)])
    ap_node = s + graph.edge_ap
    senders = np.concatenate([graph.edge_sample, ap_node, graph.virtual[:, 0], graph.virtual[:, 1]])
    receivers = np.concatenate(
        [ap_node, graph.edge_sample, graph.virtual[:, 1], graph.virtual[:, 0]]
    )
    n_virtual = len(graph.virtual)
    weight = np.concatenate(
        [graph.edge_weight, graph.edge_weight, np.zeros(2 * n_virtual, np.float32)]
    )
    virtual = np.concatenate(
        [np.zeros(2 * len(graph.edge_weight), bool), np.ones(2 * n_virtual, bool)]
    )
    n_edges = len(senders)
    if n_nodes + 1 > node_budget or n_edges > edge_budget:
        raise ValueError(
            f"graph of {n_nodes} nodes and {n_edges} directed edges exceeds the budgets "
            f"({node_budget} nodes incl. 1 of padding, {edge_budget} edges)"
        )
    # Padded in place as `jraph.pad_with_graphs(..., n_graph=2)` pads (tested equal): one padding
    # graph holds the spare nodes, and the spare edges join its first node; its concatenations
    # of ~3M-row edge arrays took most of a second per graph.
    padded_nodes = np.zeros((node_budget, nodes.shape[1]), np.float32)
    padded_nodes[:n_nodes] = nodes
    ends = np.full((2, edge_budget), n_nodes, np.int32)
    ends[0, :n_edges], ends[1, :n_edges] = senders, receivers
    padded_weight = np.zeros(edge_budget, np.float32)
    padded_weight[:n_edges] = weight
    padded_virtual = np.zeros(edge_budget, bool)
    padded_virtual[:n_edges] = virtual
    padded = jraph.GraphsTuple(
        nodes=padded_nodes,
        edges={"weight": padded_weight, "virtual": padded_virtual},
        senders=ends[0],
        receivers=ends[1],
        n_node=np.array([n_nodes, node_budget - n_nodes], np.int32),
        n_edge=np.array([n_edges, edge_budget - n_edges], np.int32),
        globals=None,
    )
    return Padded(padded, np.arange(node_budget) < n_nodes, np.arange(edge_budget) < n_edges)

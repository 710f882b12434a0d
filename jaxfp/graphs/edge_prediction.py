"""GUFU's edge prediction with goodness and fairness (§6, eq. 11-12, Algorithm 2) and forgetting.

Choices where the paper's symbols were lost, one line each:
- weights are normalised by the graph's largest weight: w~ = w / max(w) (Line 1).
- the graph is undirected: every node has a goodness and a fairness over all its neighbours.
- goodness, per feature dimension d: g_v[d] = mean over neighbours u of f_u[d] * w~_uv (eq. 11).
- fairness: f_u[d] = 1 - mean over neighbours v of |w~_uv - g_v[d]| / 2 (eq. 12).
- both start from the node features (Line 2) and iterate until the largest change < `tol`.
- predicted weight of (sample s, AP a) = mean over d of f_s[d] * g_a[d] (Kumar et al.: the rater's
  fairness times the ratee's goodness), a normalised weight.
- candidates: (s, a) not joined, where s has a virtual edge to a sample joined to a (Fig. 6);
  GUFU lets only the batch's new APs gain edges (§6.1 predicts edges for new APs).
- one threshold on the normalised weight adds candidates above it and removes edges below it; the
  paper's value was lost, so it is a parameter (GUFU uses the weight of a -100 dBm reading).
- an AP node left without edges is deleted (forgetting, §6.2).
- `update_edges_from_readings` (ours) decides from the readings of the new samples linked to a
  record instead (how many hear the AP, at what level): goodness/fairness iterate to the same
  value in every dimension, and fairness hardly varies between samples, so a predicted map is
  flat (measured on 1,500 records of
  the UJI library's month 1: dimensions equal to 1e-7; an AP's predicted weights vary 12x less
  across samples than its readings, correlation -0.19; no existing edge falls below the threshold).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse

from jaxfp.common.rss_scale import OFFSET_DB
from jaxfp.common.sizes import rounded
from jaxfp.graphs.bipartite import SiteGraph


class GoodnessFairness(NamedTuple):
    goodness: np.ndarray  # (S + A, F): samples first, then APs
    fairness: np.ndarray
    iterations: int


def goodness_fairness(
    graph: SiteGraph,
    ap_features: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iterations: int = 200,
) -> GoodnessFairness:
    """Iterate eq. 11-12 on the sample-AP edges (virtual edges carry no weight) to convergence."""
    s, a = graph.num_samples, graph.num_aps
    aps = graph.ap_features() if ap_features is None else ap_features
    w = graph.edge_weight / max(float(graph.edge_weight.max(initial=0.0)), 1e-12)
    # Sample, AP and edge counts padded to a few sizes, so an update whose graph gained or lost a
    # few edges or APs reuses the compiled iteration (0.4 s a compile on the 10,000-record bench).
    # Padding edges end past the last sample and AP, which segment sums drop; padding nodes have
    # no edges and are left out of the change. APs are few and gain a few each update: their
    # count is padded to a power of two.
    padded_s, padded_a, pad = _bucket(s), _ap_bucket(a), _bucket(len(w)) - len(w)
    samples = np.zeros((padded_s, graph.sample_features.shape[1]), np.float32)
    samples[:s] = graph.sample_features
    ap_nodes = np.zeros((padded_a, samples.shape[1]), np.float32)
    ap_nodes[:a] = aps
    g_s, g_a, f_s, f_a, n = _iterate(
        jnp.asarray(samples),
        jnp.asarray(ap_nodes),
        jnp.asarray(np.r_[graph.edge_sample, np.full(pad, padded_s)], jnp.int32),
        jnp.asarray(np.r_[graph.edge_ap, np.full(pad, padded_a)], jnp.int32),
        jnp.asarray(np.r_[w, np.zeros(pad)], jnp.float32),
        jnp.int32(s),
        jnp.int32(a),
        tol,
        max_iterations,
    )
    goodness = np.concatenate([np.asarray(g_s)[:s], np.asarray(g_a)[:a]])
    fairness = np.concatenate([np.asarray(f_s)[:s], np.asarray(f_a)[:a]])
    return GoodnessFairness(goodness, fairness, int(n))


def _bucket(count: int) -> int:
    """`count` rounded up to one of 8 sizes per power of two (at most 1/8 of padding), 64 at least."""
    return max(rounded(count, 8), 64)


def _ap_bucket(count: int) -> int:
    """`count` rounded up to a power of two, 64 at least."""
    return max(1 << max(count - 1, 0).bit_length(), 64)


@functools.partial(jax.jit, static_argnames=("max_iterations",))
def _iterate(samples, aps, edge_sample, edge_ap, weight, num_samples, num_aps, tol, max_iterations):
    """Eq. 11-12 with the samples' sums and the APs' sums as separate scatters, which XLA:CPU runs
    side by side (0.85 -> 0.6 s on the 10,000-record bench); each receiver still adds its edges
    in edge order."""
    s, a = samples.shape[0], aps.shape[0]
    real_s = (jnp.arange(s) < num_samples)[:, None]
    real_a = (jnp.arange(a) < num_aps)[:, None]
    ones = jnp.ones_like(weight)
    degree_s = jnp.maximum(jax.ops.segment_sum(ones, edge_sample, s), 1.0)[:, None]
    degree_a = jnp.maximum(jax.ops.segment_sum(ones, edge_ap, a), 1.0)[:, None]
    w = weight[:, None]

    def at_samples(per_edge):
        return jax.ops.segment_sum(per_edge, edge_sample, s)

    def at_aps(per_edge):
        return jax.ops.segment_sum(per_edge, edge_ap, a)

    def largest_change(new, old, real):
        return jnp.max(jnp.where(real, jnp.abs(new - old), 0.0))

    def update(carry):
        g_s, g_a, f_s, f_a, _, i = carry
        new_g_s = at_samples(f_a[edge_ap] * w) / degree_s
        new_g_a = at_aps(f_s[edge_sample] * w) / degree_a
        new_f_s = 1.0 - at_samples(jnp.abs(w - new_g_a[edge_ap])) / (2.0 * degree_s)
        new_f_a = 1.0 - at_aps(jnp.abs(w - new_g_s[edge_sample])) / (2.0 * degree_a)
        change = jnp.max(
            jnp.stack(
                [
                    largest_change(new_g_s, g_s, real_s),
                    largest_change(new_g_a, g_a, real_a),
                    largest_change(new_f_s, f_s, real_s),
                    largest_change(new_f_a, f_a, real_a),
                ]
            )
        )
        return new_g_s, new_g_a, new_f_s, new_f_a, change, i + 1

    def running(carry):
        return (carry[4] >= tol) & (carry[5] < max_iterations)

    start = (samples, aps, samples, aps, jnp.float32(jnp.inf), jnp.int32(0))
    g_s, g_a, f_s, f_a, _, i = jax.lax.while_loop(running, update, start)
    return g_s, g_a, f_s, f_a, i


def candidate_pairs(graph: SiteGraph) -> np.ndarray:
    """(C, 2) (sample, AP) pairs not joined, where a virtually linked sample is joined to the AP."""
    s, a = graph.num_samples, graph.num_aps
    joined = scipy.sparse.csr_matrix(
        (np.ones(len(graph.edge_sample)), (graph.edge_sample, graph.edge_ap)), shape=(s, a)
    )
    joined.data[:] = 1.0  # an edge listed twice is still one edge
    v = graph.virtual
    linked = scipy.sparse.csr_matrix(
        (np.ones(2 * len(v)), (np.r_[v[:, 0], v[:, 1]], np.r_[v[:, 1], v[:, 0]])), shape=(s, s)
    )
    reach = linked @ joined
    reach.data[:] = 1.0
    # One entry per reachable pair; dropping the joined ones and sorting the columns within rows
    # gives the pairs in (sample, AP) order without sorting ~10^6 pairs as rows (3.5 -> 0.4 s).
    open_pairs = (reach - reach.multiply(joined)).tocsr()
    open_pairs.eliminate_zeros()
    open_pairs.sort_indices()
    found = open_pairs.tocoo()
    return np.column_stack([found.row, found.col]).astype(np.int64).reshape(-1, 2)


def predicted_weights(scores: GoodnessFairness, s: int, pairs: np.ndarray) -> np.ndarray:
    """Normalised weights of (sample, AP) pairs: mean over dimensions of fairness x goodness."""
    fairness, goodness = scores.fairness[:s], scores.goodness[s:]
    dims = fairness.shape[1]
    if len(pairs) * dims > fairness.shape[0] * goodness.shape[0]:
        # More pair-dimension products than (sample, AP) entries: one matrix product for every
        # pair (0.84 -> 0.08 s for 900,000 pairs of the 10,000-record bench)
        return (fairness @ goodness.T)[pairs[:, 0], pairs[:, 1]] / dims
    return np.mean(fairness[pairs[:, 0]] * goodness[pairs[:, 1]], axis=1)


class EdgeUpdate(NamedTuple):
    graph: SiteGraph
    added: int
    removed: int
    deleted_aps: np.ndarray  # ids of the AP nodes left without edges
    added_per_ap: np.ndarray  # (A,) edges each AP of the input graph gained
    removed_per_ap: np.ndarray  # (A,) edges each AP of the input graph lost


def default_threshold(graph: SiteGraph, floor_dbm: float = -100.0) -> float:
    """The normalised weight of a `floor_dbm` reading in this graph."""
    return (floor_dbm + OFFSET_DB) / max(float(graph.edge_weight.max(initial=0.0)), 1e-12)


def update_edges(
    graph: SiteGraph,
    threshold: float,
    scores: GoodnessFairness | None = None,
    addable_aps: np.ndarray | None = None,
) -> EdgeUpdate:
    """Algorithm 2: add candidates predicted above `threshold`, remove edges predicted below it,
    delete AP nodes left without edges. New edges get weight = prediction x max weight.

    `addable_aps` (AP indices) limits additions to those APs, e.g. the batch's new APs (§6.1);
    None lets any AP gain edges.
    """
    scores = goodness_fairness(graph) if scores is None else scores
    s = graph.num_samples
    existing = np.column_stack([graph.edge_sample, graph.edge_ap])
    kept = predicted_weights(scores, s, existing) >= threshold
    candidates = candidate_pairs(graph)
    if addable_aps is not None:
        candidates = candidates[np.isin(candidates[:, 1], addable_aps)]
    predicted = predicted_weights(scores, s, candidates)
    above = predicted > threshold
    w_max = float(graph.edge_weight.max(initial=0.0))
    return _apply(graph, kept, candidates[above], predicted[above] * w_max)


def update_edges_from_readings(
    graph: SiteGraph,
    links: np.ndarray,
    num_old: int,
    addable_aps: np.ndarray | None = None,
    add_share: float = 0.5,
    keep_share: float = 0.0,
    blend: float = 0.0,
    forget_min_links: int = 0,
) -> EdgeUpdate:
    """Algorithm 2 with location-dependent weights (ours), from the readings of the new samples
    linked to each old sample (`links`: (old, new) pairs, e.g. the batch's virtual pairs).

    For an old sample and an AP: share = how many of its linked samples hear the AP, over how many
    it has; reading = their mean weight. Only old samples with a link are judged: an edge goes
    when share <= `keep_share` (no linked sample hears it, by default); a candidate (an AP in
    `addable_aps`, or any) comes when share >= `add_share`, weighing the reading; a kept edge with
    share >= `add_share` moves towards the reading by `blend` (0: Algorithm 2 leaves weights).
    With `forget_min_links` = k > 0, an AP that no new sample hears although at least k of them
    are linked to old samples that hear it loses every edge, linked or not, and so is forgotten:
    the batch covered its area and it was gone (judging records one by one leaves it on every
    record no new sample links to).
    """
    heard = scipy.sparse.csr_matrix(
        (np.ones(len(graph.edge_weight)), (graph.edge_sample, graph.edge_ap)),
        shape=(graph.num_samples, graph.num_aps),
    )
    weights = scipy.sparse.csr_matrix(
        (graph.edge_weight, (graph.edge_sample, graph.edge_ap)), shape=heard.shape
    )
    linked = scipy.sparse.csr_matrix(
        (np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(num_old, graph.num_samples)
    )
    count = np.asarray(linked.sum(1)).ravel()
    hearing = np.asarray((linked @ heard).todense())
    share = hearing / np.maximum(count, 1)[:, None]
    reading = np.asarray((linked @ weights).todense()) / np.maximum(hearing, 1)
    judged = count > 0
    old_edge = graph.edge_sample < num_old
    sample, ap = np.minimum(graph.edge_sample, num_old - 1), graph.edge_ap
    on_judged = old_edge & judged[sample]
    kept = ~on_judged | (share[sample, ap] > keep_share)
    if forget_min_links:
        kept &= ~(old_edge & unheard_aps(heard, linked, num_old, forget_min_links)[ap])
    confirmed = on_judged & (share[sample, ap] >= add_share)
    weight = graph.edge_weight.copy()
    weight[confirmed] += blend * (reading[sample, ap][confirmed] - weight[confirmed])
    joined = np.zeros(share.shape, bool)
    joined[graph.edge_sample[old_edge], ap[old_edge]] = True
    addable = np.ones(graph.num_aps, bool)
    if addable_aps is not None:
        addable = np.isin(np.arange(graph.num_aps), addable_aps)
    rows, aps = np.nonzero(judged[:, None] & ~joined & addable[None] & (share >= add_share))
    new = np.column_stack([rows, aps])
    return _apply(graph._replace(edge_weight=weight), kept, new, reading[rows, aps])


def unheard_aps(
    heard: scipy.sparse.csr_matrix, linked: scipy.sparse.csr_matrix, num_old: int, min_links: int
) -> np.ndarray:
    """(A,) APs that no new sample hears (rows `num_old` on of `heard`, samples x APs) although
    at least `min_links` new samples are linked (`linked`: old x samples) to old ones hearing them."""
    heard_by_batch = np.asarray(heard[num_old:].sum(0)).ravel() > 0
    near_hearers = (linked.T @ heard[:num_old]) > 0  # (samples, APs): linked to a hearer
    covered = np.asarray(near_hearers.sum(0)).ravel()
    return (covered >= min_links) & ~heard_by_batch


def _apply(
    graph: SiteGraph, kept: np.ndarray, new: np.ndarray, new_weight: np.ndarray
) -> EdgeUpdate:
    """The graph with the `kept` edges and the `new` (sample, AP) edges of weight `new_weight`, the
    AP nodes left without edges deleted."""
    edge_sample = np.concatenate([graph.edge_sample[kept], new[:, 0]])
    edge_ap = np.concatenate([graph.edge_ap[kept], new[:, 1]])
    weight = np.concatenate([graph.edge_weight[kept], new_weight.astype(np.float32)])
    alive = np.bincount(edge_ap, minlength=graph.num_aps) > 0
    remap = np.cumsum(alive) - 1
    updated = graph._replace(
        ap_ids=graph.ap_ids[alive],
        edge_sample=edge_sample.astype(np.int64),
        edge_ap=remap[edge_ap].astype(np.int64),
        edge_weight=weight.astype(np.float32),
    )
    return EdgeUpdate(
        updated,
        int(len(new)),
        int((~kept).sum()),
        graph.ap_ids[~alive],
        np.bincount(new[:, 1].astype(np.int64), minlength=graph.num_aps),
        np.bincount(graph.edge_ap[~kept], minlength=graph.num_aps),
    )

"""GUFU's site graph, padding, goodness/fairness and edge updates on hand-made cases."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from jaxfp.graphs import bipartite, edge_prediction, sampling

NAN = np.nan
RSS = np.array(
    [
        [-50.0, NAN, -70.0],
        [NAN, -60.0, -80.0],
        [-55.0, NAN, NAN],
    ],
    np.float32,
)
FEATURES = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]], np.float32)


def hand_graph():
    return bipartite.build_site_graph(RSS, np.array(["a", "b", "c"]), FEATURES)


def test_edges_weights_ap_features_and_virtual_edges():
    g = hand_graph()
    np.testing.assert_array_equal(g.edge_sample, [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(g.edge_ap, [0, 2, 1, 2, 0])
    np.testing.assert_allclose(g.edge_weight, [70, 50, 60, 40, 65])
    # AP a: samples 0 (w 70) and 2 (w 65); AP c: samples 0 (w 50) and 1 (w 40).
    expected_a = (70 * FEATURES[0] + 65 * FEATURES[2]) / 135
    expected_c = (50 * FEATURES[0] + 40 * FEATURES[1]) / 90
    np.testing.assert_allclose(g.ap_features(), [expected_a, FEATURES[1], expected_c], rtol=1e-6)
    np.testing.assert_array_equal(np.isnan(g.rss()), np.isnan(RSS))
    # cos(0, 2) = 0.994, cos(1, 2) = 0.110, cos(0, 1) = 0.
    np.testing.assert_array_equal(bipartite.with_virtual_edges(g, 0.5).virtual, [[0, 2]])
    np.testing.assert_array_equal(bipartite.with_virtual_edges(g, 0.05).virtual, [[0, 2], [1, 2]])
    np.testing.assert_array_equal(
        bipartite.with_virtual_edges(g, -1.0, max_per_node=1).virtual, [[0, 2], [1, 2]]
    )


def brute_force_similar_pairs(features, threshold, cap):
    """The definition, row by row: pairs above the threshold, a crowded row keeping those at or
    above its k-th largest similarity; a pair stays if either end keeps it."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    pairs = set()
    for row, values in enumerate(sim):
        above = values > threshold
        if cap is not None and above.sum() > cap:
            above &= values >= np.sort(values)[-cap]
        pairs |= {(min(row, col), max(row, col)) for col in np.flatnonzero(above)}
    return np.array(sorted(pairs), np.int64).reshape(-1, 2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cap", [None, 1, 3, 10])
def test_similar_pairs_follow_the_definition_on_crowded_rows_with_ties(cap, dtype):
    rng = np.random.default_rng(0)
    # 40 places x 5 copies: every row crowded and its similarities tied in fives
    features = np.repeat(np.abs(rng.normal(size=(40, 4))), 5, axis=0) + 0.2
    features[::7] += 0.05 * rng.normal(size=features[::7].shape)  # some rows off their place
    features = features.astype(dtype)
    expected = brute_force_similar_pairs(features, 0.9, cap)
    assert len(expected) > 100
    for block in (16, 2048):  # several blocks and one
        found = bipartite.similar_pairs(features, 0.9, cap, block=block)
        np.testing.assert_array_equal(found, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_similar_pairs_rank_negative_similarities(dtype):
    # Features of both signs: a row's k-th largest is often negative, ties at -1 and 0 included
    rng = np.random.default_rng(1)
    features = rng.normal(size=(60, 3)).astype(dtype)
    features[10:20] = -features[:10]  # similarity exactly -1 with rows 0-9
    features[20:25, :] = np.array([1.0, 0.0, 0.0], dtype)
    features[25:30, :] = np.array([0.0, 1.0, 0.0], dtype)  # orthogonal: similarity 0
    for threshold, cap in [(-0.5, 4), (-1.5, 7), (0.0, 2)]:
        expected = brute_force_similar_pairs(features, threshold, cap)
        found = bipartite.similar_pairs(features, threshold, cap, block=16)
        np.testing.assert_array_equal(found, expected)


def test_bad_rss_is_named():
    with pytest.raises(ValueError, match=r"rss_dbm\[1, 0\] = -130"):
        bipartite.build_site_graph(
            np.array([[-50.0], [-130.0]], np.float32), np.array(["a"]), np.ones((2, 2))
        )
    with pytest.raises(ValueError, match="features: expected 3 rows"):
        bipartite.build_site_graph(RSS, np.array(["a", "b", "c"]), np.ones((2, 2)))


def test_padding_masks_and_budgets():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    small = bipartite.to_graphs_tuple(g, 8, 16)
    large = bipartite.to_graphs_tuple(g, 16, 40)
    # 3 samples + 3 APs; 5 sample-AP edges both ways + 1 virtual edge both ways.
    assert small.node_mask.sum() == 6 and small.edge_mask.sum() == 12
    assert small.graph.edges["virtual"][small.edge_mask].sum() == 2
    with pytest.raises(ValueError, match="exceeds the budgets"):
        bipartite.to_graphs_tuple(g, 6, 16)
    # AP nodes' starting features given (GUFU's Table 8) replace the weighted average
    ones = bipartite.to_graphs_tuple(g, 8, 16, np.ones((3, g.sample_features.shape[1])))
    np.testing.assert_array_equal(ones.graph.nodes[3:6], 1.0)
    np.testing.assert_array_equal(ones.graph.nodes[:3], small.graph.nodes[:3])
    with pytest.raises(ValueError, match=r"ap_features: expected \(3 APs"):
        bipartite.to_graphs_tuple(g, 8, 16, np.ones((2, 2)))
    assert large.node_mask.sum() == 6 and large.edge_mask.sum() == 12
    np.testing.assert_array_equal(
        large.graph.senders[large.edge_mask], small.graph.senders[small.edge_mask]
    )


def test_padding_in_place_equals_jraphs_padding():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 10, 20)
    real_nodes, real_edges = int(padded.node_mask.sum()), int(padded.edge_mask.sum())
    unpadded = jax.tree.map(
        lambda x: x[:real_edges] if len(x) == 20 else x,
        padded.graph._replace(
            nodes=padded.graph.nodes[:real_nodes],
            n_node=padded.graph.n_node[:1],
            n_edge=padded.graph.n_edge[:1],
        ),
    )
    reference = jraph.pad_with_graphs(unpadded, 10, 20, n_graph=2)
    for ours, theirs in zip(jax.tree.leaves(padded.graph), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(ours, np.asarray(theirs))
    np.testing.assert_array_equal(padded.node_mask, jraph.get_node_padding_mask(reference))
    np.testing.assert_array_equal(padded.edge_mask, jraph.get_edge_padding_mask(reference))


@pytest.mark.parametrize("num_nodes", [50, 70_000])
def test_neighbour_table_groups_real_edges_by_receiver_in_edge_order(num_nodes):
    # 16-bit receivers are sorted by radix, wider ones by merge sort: the same stable order
    rng = np.random.default_rng(0)
    receivers = rng.integers(0, num_nodes, 5000)
    edge_mask = rng.random(5000) < 0.8
    table = sampling.neighbour_table(receivers, edge_mask, num_nodes)
    real = np.flatnonzero(edge_mask)
    expected = real[np.lexsort((real, receivers[real]))]  # receiver, then edge id
    np.testing.assert_array_equal(np.asarray(table.order)[: len(real)], expected)
    np.testing.assert_array_equal(np.asarray(table.order)[len(real) :], np.flatnonzero(~edge_mask))
    np.testing.assert_array_equal(table.degree, np.bincount(receivers[real], minlength=num_nodes))


def test_neighbour_sampling_draws_only_real_incoming_edges_uniformly():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 8, 16)
    graph, n = padded.graph, padded.graph.nodes.shape[0]
    table = sampling.neighbour_table(graph.receivers, padded.edge_mask, n)
    # Samples: APs heard (+ the virtual edge 0-2); APs: samples hearing them.
    np.testing.assert_array_equal(table.degree[:6], [3, 2, 2, 2, 1, 2])
    assert np.all(np.asarray(table.degree[6:]) == 0)  # the padding node
    ids, mask = sampling.sample_edges(jax.random.key(0), table, fanout=3000)
    ids, mask = np.asarray(ids).reshape(n, -1), np.asarray(mask).reshape(n, -1)
    assert mask[:6].all() and not mask[6:].any()
    real = np.flatnonzero(padded.edge_mask)
    for node in range(6):
        incoming = real[np.asarray(graph.receivers)[real] == node]
        drawn, counts = np.unique(ids[node], return_counts=True)
        np.testing.assert_array_equal(drawn, np.sort(incoming))  # every one, nothing else
        np.testing.assert_allclose(counts / 3000, 1 / len(incoming), atol=0.05)
    sub = sampling.edge_subgraph(graph, jnp.asarray(ids[:6].reshape(-1)))
    assert (np.asarray(sub.receivers).reshape(6, -1) == np.arange(6)[:, None]).all()
    np.testing.assert_array_equal(
        sub.edges["weight"], np.asarray(graph.edges["weight"])[ids[:6].reshape(-1)]
    )


def goodness_fairness_numpy(graph, tol=1e-6, max_iterations=200):
    """Eq. 11-12 written node by node, straight from the definitions."""
    s = graph.num_samples
    nodes = np.concatenate([graph.sample_features, graph.ap_features()]).astype(np.float64)
    w = graph.edge_weight / graph.edge_weight.max()
    neighbours = {v: [] for v in range(len(nodes))}
    for e, (i, a) in enumerate(zip(graph.edge_sample, graph.edge_ap, strict=True)):
        neighbours[i].append((s + a, w[e]))
        neighbours[s + a].append((i, w[e]))
    g, f = nodes.copy(), nodes.copy()
    for iteration in range(1, max_iterations + 1):
        new_g, new_f = np.zeros_like(g), np.zeros_like(f)
        for v, nbrs in neighbours.items():
            new_g[v] = sum(f[u] * wt for u, wt in nbrs) / max(len(nbrs), 1)
        for u, nbrs in neighbours.items():
            new_f[u] = 1 - sum(np.abs(wt - new_g[v]) for v, wt in nbrs) / (2 * max(len(nbrs), 1))
        change = max(np.abs(new_g - g).max(), np.abs(new_f - f).max())
        g, f = new_g, new_f
        if change < tol:
            return g, f, iteration
    return g, f, max_iterations


def test_goodness_and_fairness_match_a_direct_computation():
    rng = np.random.default_rng(0)
    rss = np.where(rng.random((12, 7)) < 0.5, rng.uniform(-95, -40, (12, 7)), np.nan)
    rss[:, 0] = -60.0  # every sample has an edge
    g = bipartite.build_site_graph(rss, np.arange(7), rng.normal(size=(12, 3)))
    scores = edge_prediction.goodness_fairness(g)
    good, fair, iterations = goodness_fairness_numpy(g)
    np.testing.assert_allclose(scores.goodness, good, atol=1e-5)
    np.testing.assert_allclose(scores.fairness, fair, atol=1e-5)
    assert abs(scores.iterations - iterations) <= 1


def test_goodness_and_fairness_reuse_the_compiled_iteration_across_nearby_graph_sizes():
    rng = np.random.default_rng(1)
    graphs = []
    for aps in (30, 31):  # an update adds an AP and a few readings: same padded sizes
        rss = np.where(rng.random((70, aps)) < 0.5, rng.uniform(-95, -40, (70, aps)), np.nan)
        rss[:, 0] = -60.0
        graphs.append(bipartite.build_site_graph(rss, np.arange(aps), rng.normal(size=(70, 3))))
    assert graphs[0].edge_weight.size != graphs[1].edge_weight.size
    edge_prediction.goodness_fairness(graphs[0])
    compiled = edge_prediction._iterate._cache_size()
    scores = edge_prediction.goodness_fairness(graphs[1])
    assert edge_prediction._iterate._cache_size() == compiled
    good, fair, iterations = goodness_fairness_numpy(graphs[1])  # padding changes nothing
    np.testing.assert_allclose(scores.goodness, good, atol=1e-5)
    np.testing.assert_allclose(scores.fairness, fair, atol=1e-5)
    assert abs(scores.iterations - iterations) <= 1
    assert [edge_prediction._bucket(n) for n in (1, 64, 65, 100, 1000, 1024, 1025)] == [
        64,
        64,
        72,
        104,
        1024,
        1024,
        1152,
    ]


def test_candidates_equal_a_brute_force_set_in_sorted_order():
    rng = np.random.default_rng(3)
    rss = np.where(rng.random((40, 9)) < 0.3, rng.uniform(-95, -40, (40, 9)), np.nan)
    g = bipartite.build_site_graph(rss, np.arange(9), rng.normal(size=(40, 2)))
    virtual = np.sort(rng.integers(0, 40, (60, 2)), 1)
    g = g._replace(virtual=virtual[virtual[:, 0] != virtual[:, 1]])
    joined = set(zip(g.edge_sample.tolist(), g.edge_ap.tolist(), strict=True))
    expected = set()
    for i, j in g.virtual.tolist():
        for a, b in ((i, j), (j, i)):  # a reaches b's APs
            expected |= {(a, ap) for s, ap in joined if s == b and (a, ap) not in joined}
    found = edge_prediction.candidate_pairs(g)
    assert [tuple(p) for p in found.tolist()] == sorted(expected)


def test_candidates_an_ap_appearing_and_one_disappearing():
    g = hand_graph()._replace(virtual=np.array([[0, 2], [1, 2]]))
    # Sample 2 reaches AP c through 0 and 1, AP b through 1; sample 0 reaches nothing new.
    np.testing.assert_array_equal(edge_prediction.candidate_pairs(g), [[1, 0], [2, 1], [2, 2]])
    scores = edge_prediction.goodness_fairness(g)
    added = edge_prediction.update_edges(g, threshold=0.0, scores=scores)
    assert added.added == 3 and added.removed == 0 and len(added.deleted_aps) == 0
    predicted = edge_prediction.predicted_weights(scores, 3, np.array([[2, 1]]))
    new_rss = added.graph.rss()
    np.testing.assert_allclose(new_rss[2, 1], predicted[0] * 70 - 120, rtol=1e-5)
    only_c = edge_prediction.update_edges(g, 0.0, scores, addable_aps=np.array([2]))
    assert only_c.added == 1 and np.isfinite(only_c.graph.rss()[2, 2])
    # A threshold above every prediction removes every edge: all AP nodes are forgotten.
    gone = edge_prediction.update_edges(g, threshold=2.0, scores=scores)
    assert gone.added == 0 and gone.removed == 5 and list(gone.deleted_aps) == ["a", "b", "c"]
    # An AP whose only reading is weak disappears while the others stay.
    weak = bipartite.build_site_graph(
        np.array([[-40.0, -40.0, -115.0], [-42.0, -45.0, NAN]], np.float32),
        np.array(["x", "y", "old"]),
        np.ones((2, 2), np.float32),
    )
    update = edge_prediction.update_edges(weak, edge_prediction.default_threshold(weak))
    assert list(update.deleted_aps) == ["old"] and list(update.graph.ap_ids) == ["x", "y"]
    assert update.graph.edge_ap.max() == 1


def test_old_new_pairs_top_k_per_new_sample_one_record_per_point():
    # Records 0-2 sit at point 0 (nearly the same direction), record 3 at point 1; two new samples.
    features = np.array(
        [[1.0, 0.0], [0.99, 0.05], [0.98, 0.1], [0.0, 1.0], [1.0, 0.02], [0.1, 1.0]], np.float32
    )
    points = np.array([0, 0, 0, 1])
    every = bipartite.old_new_pairs(features, 4, threshold=0.5, per_new=2)
    # Without points, new sample 4's two best are records 0 and 1, both at point 0.
    np.testing.assert_array_equal(np.sort(every[every[:, 1] == 4][:, 0]), [0, 1])
    one = bipartite.old_new_pairs(features, 4, threshold=0.5, per_new=2, point_of_old=points)
    # One record per point: sample 4 gets record 0 (its best at point 0; point 1 is below the
    # threshold); sample 5 gets record 3.
    np.testing.assert_array_equal(one, [[0, 4], [3, 5]])
    # Below any threshold each sample reaches both points, through each point's best record.
    loose = bipartite.old_new_pairs(features, 4, threshold=-1.0, per_new=2, point_of_old=points)
    assert sorted(map(tuple, loose)) == [(0, 4), (2, 5), (3, 4), (3, 5)]
    assert len(bipartite.old_new_pairs(features, 4, threshold=0.9999, per_new=2)) == 0


def test_edges_from_readings_forget_a_gone_ap_and_map_a_new_one_by_place():
    # Records 0 (near AP n) and 1 (far from it) both heard AP g; new samples 2 (near) and 3 (far)
    # hear n, at -50 and -90 dBm, and no longer g.
    rss = np.array(
        [[-60.0, -50.0, NAN], [-60.0, -70.0, NAN], [-62.0, NAN, -50.0], [-61.0, NAN, -90.0]],
        np.float32,
    )
    g = bipartite.build_site_graph(rss, np.array(["kept", "g", "n"]), np.ones((4, 2)))
    links = np.array([[0, 2], [1, 3]])
    update = edge_prediction.update_edges_from_readings(g, links, 2, np.array([2]))
    out = update.graph.rss()
    assert list(update.deleted_aps) == ["g"] and list(update.graph.ap_ids) == ["kept", "n"]
    np.testing.assert_allclose(out[:2, 1], [-50.0, -90.0], atol=1e-4)  # the map follows place
    np.testing.assert_allclose(out[:2, 0], [-60.0, -60.0])  # a heard AP stays as it was
    np.testing.assert_array_equal(update.added_per_ap, [0, 0, 2])
    np.testing.assert_array_equal(update.removed_per_ap, [0, 2, 0])
    # A record no new sample links to is not judged: it keeps the gone AP.
    half = edge_prediction.update_edges_from_readings(g, links[:1], 2, np.array([2]))
    assert np.isfinite(half.graph.rss()[1, 1]) and np.isnan(half.graph.rss()[0, 1])
    # Forgetting: with one new sample linked to a record hearing g and none hearing g, g goes
    # from the unlinked record too; asking for two such samples keeps it there.
    forgets = edge_prediction.update_edges_from_readings(g, links[:1], 2, forget_min_links=1)
    assert list(forgets.deleted_aps) == ["g"] and "g" not in forgets.graph.ap_ids
    cautious = edge_prediction.update_edges_from_readings(g, links[:1], 2, forget_min_links=2)
    assert np.isfinite(cautious.graph.rss()[1, 1])
    # An AP the new samples still hear ("kept") is never forgotten this way.
    heard = edge_prediction.update_edges_from_readings(g, links, 2, forget_min_links=1)
    np.testing.assert_allclose(heard.graph.rss()[:2, 0], [-60.0, -60.0])
    # Blending moves a confirmed edge halfway to the linked reading (-60 -> -61.5 for record 1).
    blended = edge_prediction.update_edges_from_readings(g, links, 2, blend=0.5)
    np.testing.assert_allclose(blended.graph.rss()[:2, 0], [-61.0, -60.5], atol=1e-4)
    # Record 0 is linked to two samples, one hearing n: half the share adds it, more does not.
    two = np.array([[0, 2], [0, 3]])
    rss_one = rss.copy()
    rss_one[3, 2] = np.nan
    g_one = bipartite.build_site_graph(rss_one, g.ap_ids, np.ones((4, 2)))
    assert edge_prediction.update_edges_from_readings(g_one, two, 2, add_share=0.5).added == 1
    assert edge_prediction.update_edges_from_readings(g_one, two, 2, add_share=0.6).added == 0


def test_old_new_pairs_keep_exactly_k_when_similarities_tie():
    # Every record points the same way: all similarities tie at 1, yet each sample gets k records.
    features = np.ones((10, 3), np.float32)
    pairs = bipartite.old_new_pairs(features, 8, threshold=0.5, per_new=3)
    assert len(pairs) == 2 * 3 and set(np.bincount(pairs[:, 1])[8:]) == {3}


def test_predicted_weights_are_the_mean_of_fairness_times_goodness_on_both_paths():
    # Two samples, one AP, two dimensions: sample 1's fairness (0.5, 1) and the AP's goodness
    # (0.2, 0.6) give (0.1 + 0.6) / 2 = 0.35; sample 0's (1, 0) gives 0.1.
    fairness = np.array([[1.0, 0.0], [0.5, 1.0], [9.0, 9.0]], np.float32)
    goodness = np.array([[7.0, 7.0], [7.0, 7.0], [0.2, 0.6]], np.float32)
    scores = edge_prediction.GoodnessFairness(goodness, fairness, 1)
    few = edge_prediction.predicted_weights(scores, 2, np.array([[1, 0]]))  # per-pair gathers
    many = edge_prediction.predicted_weights(scores, 2, np.array([[1, 0], [0, 0], [1, 0]]))
    np.testing.assert_allclose(few, [0.35], rtol=1e-6)
    np.testing.assert_allclose(many, [0.35, 0.1, 0.35], rtol=1e-6)  # one matrix product

"""GUFU's GraphSAGE with edge features (Algorithm 1) on the hand-made site graph."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.graphs import bipartite, sampling
from jaxfp.methods.gufu.losses import GnnStatic, gnn_loss
from jaxfp.methods.gufu.sage import EdgeParts, EdgeSAGE, EndsDense

from ...graphs.test_graphs import hand_graph


def test_padding_does_not_change_the_embeddings():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    small = bipartite.to_graphs_tuple(g, 8, 16)
    large = bipartite.to_graphs_tuple(g, 16, 40)
    model = EdgeSAGE(features=8, num_layers=2)
    params = model.init(jax.random.key(0), small.graph, jnp.asarray(small.edge_mask))
    nodes_s, edges_s = model.apply(params, small.graph, jnp.asarray(small.edge_mask))
    nodes_l, edges_l = model.apply(params, large.graph, jnp.asarray(large.edge_mask))
    np.testing.assert_allclose(nodes_s[:6], nodes_l[:6], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(edges_s[:12], edges_l[:12], rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(edges_l)[~large.edge_mask] == 0)
    norms = np.linalg.norm(np.asarray(nodes_s[:6]), axis=1)
    assert np.all((np.abs(norms - 1) < 1e-5) | (norms == 0))


def test_weighted_aggregation_follows_the_edge_weights():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 8, 16)
    mask = jnp.asarray(padded.edge_mask)
    plain, weighted = EdgeSAGE(8, 1), EdgeSAGE(8, 1, weighted=True)
    params = plain.init(jax.random.key(0), padded.graph, mask)
    # Equal weights everywhere (virtual edges weigh 1): the weighted mean is the plain mean.
    edges = dict(padded.graph.edges, weight=np.full_like(padded.graph.edges["weight"], 120.0))
    same = padded.graph._replace(edges=edges)
    np.testing.assert_allclose(
        weighted.apply(params, same, mask)[0], plain.apply(params, same, mask)[0], atol=1e-6
    )
    # The hand graph's unequal readings move the aggregate away from the plain mean.
    assert not np.allclose(
        weighted.apply(params, padded.graph, mask)[0], plain.apply(params, padded.graph, mask)[0]
    )


def test_the_split_edge_layer_equals_a_dense_over_the_concatenated_ends():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    graph = bipartite.to_graphs_tuple(g, 8, 16).graph
    keys = jax.random.split(jax.random.key(1), 4)
    n, e = graph.nodes.shape[0], graph.senders.shape[0]
    h = jax.random.normal(keys[0], (n, 5))
    parts = EdgeParts(
        jax.random.normal(keys[1], (n, 3)),
        jax.random.normal(keys[2], (n, 3)),
        jax.random.normal(keys[3], (e, 3)),
    )
    edges = parts.at_sender[graph.senders] + parts.at_receiver[graph.receivers] + parts.own
    np.testing.assert_allclose(parts.per_edge(graph, 0), edges, rtol=1e-6)
    split = EndsDense(4)
    params = split.init(jax.random.key(0), h, graph, parts)
    ends = jnp.concatenate([h[graph.senders], h[graph.receivers], edges], -1)
    dense = flax.linen.Dense(4).apply(params, ends)  # the same parameter tree as nn.Dense
    np.testing.assert_allclose(split.apply(params, h, graph, parts), dense, rtol=1e-5, atol=1e-5)


def reference_sage(params, graph, edge_mask, weighted: bool):
    """Algorithm 1 written edge by edge: messages [sender ⊕ edge] averaged at the receivers."""
    nodes = graph.nodes
    edges = 0.5 * (nodes[graph.senders] + nodes[graph.receivers])
    mask = edge_mask.astype(jnp.float32)[:, None]
    w = mask
    if weighted:
        w = mask * jnp.where(graph.edges["virtual"], 1.0, graph.edges["weight"] / 120.0)[:, None]
    for layer in sorted(params["params"]):
        p = params["params"][layer]
        message = jnp.concatenate([nodes[graph.senders], edges], -1) * w
        total = jax.ops.segment_sum(message, graph.receivers, nodes.shape[0])
        count = jax.ops.segment_sum(w, graph.receivers, nodes.shape[0])
        inputs = jnp.concatenate([nodes, total / jnp.maximum(count, 1e-6)], -1)
        h = jax.nn.relu(inputs @ p["node"]["kernel"] + p["node"]["bias"])
        h = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
        ends = jnp.concatenate([h[graph.senders], h[graph.receivers], edges], -1)
        edges = jax.nn.relu(ends @ p["edge"]["kernel"] + p["edge"]["bias"]) * mask
        nodes = h
    return nodes, edges


def test_the_model_equals_algorithm_1_written_edge_by_edge():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 8, 16)
    mask = jnp.asarray(padded.edge_mask)
    for weighted in (False, True):
        model = EdgeSAGE(features=6, num_layers=3, weighted=weighted)
        params = model.init(jax.random.key(2), padded.graph, mask)
        nodes, edges = model.apply(params, padded.graph, mask)
        want_nodes, want_edges = reference_sage(params, padded.graph, mask, weighted)
        np.testing.assert_allclose(nodes, want_nodes, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(edges, want_edges, rtol=1e-5, atol=1e-6)


def test_the_sampled_layout_gives_what_the_scatters_give():
    """Edges drawn `fanout` per node, node by node: sums and repeats instead of scatters and
    gathers at the receivers, with the same embeddings and the same loss and gradient."""
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 8, 16)
    n = padded.graph.nodes.shape[0]
    table = sampling.neighbour_table(padded.graph.receivers, padded.edge_mask, n)
    key = jax.random.key(3)
    sample_key = jax.random.split(key, 3)[2]  # the draw `gnn_loss` makes with this key
    ids, mask = sampling.sample_edges(sample_key, table, fanout=4)
    sub = sampling.edge_subgraph(padded.graph, ids)
    model = EdgeSAGE(features=6, num_layers=2, weighted=True)
    params = model.init(jax.random.key(1), sub, mask)
    scattered = model.apply(params, sub, mask)
    grouped = model.apply(params, sub, mask, per_receiver=4)
    np.testing.assert_allclose(grouped[0], scattered[0], rtol=1e-5, atol=1e-6)
    real = np.asarray(mask)  # a node without incoming edges draws padding edges, masked out
    assert 0 < real.sum() < len(real)
    np.testing.assert_allclose(grouped[1][real], scattered[1][real], rtol=1e-5, atol=1e-6)

    data = {
        "graph": padded.graph,
        "edge_mask": jnp.asarray(padded.edge_mask),
        "real_nodes": jnp.int32(padded.node_mask.sum()),
        "table": table,
    }
    loss, grads = jax.value_and_grad(gnn_loss, argnums=1)(GnnStatic(model, 4, 1), params, data, key)
    # The same draws through the scatter path: no sampling, on the sampled subgraph.
    drawn = dict(data, graph=sub, edge_mask=mask)
    scattered_static = GnnStatic(model, 0, 1)
    want, want_grads = jax.value_and_grad(gnn_loss, argnums=1)(scattered_static, params, drawn, key)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    for got, expected in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_linear_last_layer_keeps_signs_and_a_finite_gradient_at_padding():
    g = bipartite.with_virtual_edges(hand_graph(), 0.5)
    padded = bipartite.to_graphs_tuple(g, 16, 40)  # padding nodes: zero features, h = 0 at init
    mask = jnp.asarray(padded.edge_mask)
    relu, linear = EdgeSAGE(8, 2), EdgeSAGE(8, 2, last_relu=False)
    params = relu.init(jax.random.key(0), padded.graph, mask)  # the same parameters serve both
    z_relu = np.asarray(relu.apply(params, padded.graph, mask)[0][:6])
    z_linear = np.asarray(linear.apply(params, padded.graph, mask)[0][:6])
    assert (z_relu >= 0).all() and (z_linear < 0).any()
    np.testing.assert_allclose(np.linalg.norm(z_linear, axis=1), 1.0, rtol=1e-5)
    # ReLU of the linear layer's output, renormalised, is the ReLU layer's output
    positive = np.maximum(z_linear, 0)
    np.testing.assert_allclose(
        positive / np.linalg.norm(positive, axis=1, keepdims=True), z_relu, rtol=1e-5, atol=1e-6
    )

    def loss(p):
        return jnp.sum(linear.apply(p, padded.graph, mask)[0] ** 3)

    grads = jax.grad(loss)(params)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))

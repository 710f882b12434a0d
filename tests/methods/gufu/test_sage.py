"""GUFU's GraphSAGE with edge features (Algorithm 1) on the hand-made site graph."""

import flax.linen
import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.graphs import bipartite
from jaxfp.methods.gufu.sage import EdgeSAGE, EndsDense, edge_start_features

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
    h = jax.random.normal(jax.random.key(1), (graph.nodes.shape[0], 5))
    edges = edge_start_features(graph.nodes, graph)
    split = EndsDense(4)
    params = split.init(jax.random.key(0), h, graph, edges)
    ends = jnp.concatenate([h[graph.senders], h[graph.receivers], edges], -1)
    dense = flax.linen.Dense(4).apply(params, ends)  # the same parameter tree as nn.Dense
    np.testing.assert_allclose(split.apply(params, h, graph, edges), dense, rtol=1e-5, atol=1e-5)

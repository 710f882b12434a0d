"""GUFU's GraphSAGE with edge features (Algorithm 1) over a padded `jraph.GraphsTuple`.

Per layer: each node averages [neighbour embedding ⊕ edge embedding] over its incoming edges (mean
aggregator, padding edges masked), concatenates its own embedding, applies a dense layer + ReLU and
L2-normalises (GraphSAGE); then each edge embedding is updated from [sender ⊕ receiver ⊕ itself].
`weighted=True` makes the mean a weighted one (the paper's "weighted feature aggregation"): a
sample-AP edge counts by its weight over 120 (a 0 dBm reading: 1), a virtual edge (similarity
above the threshold) by 1.

Speed: on a 2-core CPU a step is bound by writing per-edge arrays (1.4M edges x 32
floats take ~60 ms to write; the sums over them ~7 ms), so edge features are kept as `EdgeParts`,
per-node parts gathered at the ends plus a per-edge part, and linear maps and sums over incoming
edges are taken part by part: the edges' starting features (the mean of their end nodes') and
the node halves of the edge update never become per-edge arrays of their own.
`per_receiver=k > 0` says the edges come k per node, node by node (GraphSAGE's sampled
neighbourhoods, `jaxfp.graphs.sampling.sample_edges`): a sum over incoming edges is then a
reshape and a sum, and a gather at the receivers a repeat.
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from jaxfp.common.rows import take_rows
from jaxfp.common.rss_scale import OFFSET_DB


def at_receivers(x: jax.Array, graph: jraph.GraphsTuple, per_receiver: int) -> jax.Array:
    """x[graph.receivers]; with `per_receiver` = k, edge i's receiver is node i // k."""
    if per_receiver:
        repeated = jnp.broadcast_to(x[:, None], (x.shape[0], per_receiver, *x.shape[1:]))
        return repeated.reshape(-1, *x.shape[1:])
    return take_rows(x, graph.receivers)


def sum_at_receivers(
    x: jax.Array, graph: jraph.GraphsTuple, num_nodes: int, per_receiver: int
) -> jax.Array:
    """Each node's sum of per-edge `x` over its incoming edges (`per_receiver` as above)."""
    if per_receiver:
        return x.reshape(num_nodes, per_receiver, *x.shape[1:]).sum(1)
    return jax.ops.segment_sum(x, graph.receivers, num_nodes)


def weighted_sum_at_receivers(
    x: jax.Array, weight: jax.Array, graph: jraph.GraphsTuple, num_nodes: int, per_receiver: int
) -> jax.Array:
    """Each node's sum of per-edge `x` (E, F) times `weight` (E, 1) over its incoming edges. With
    `per_receiver` a batched product (N, k) x (N, k, F): XLA:CPU would otherwise write the weight
    broadcast to (E, F) before multiplying (~6 ms a layer of a step on the 10,000-node bench)."""
    if per_receiver:
        shaped = x.reshape(num_nodes, per_receiver, *x.shape[1:])
        return jnp.einsum("nk,nk...->n...", weight.reshape(num_nodes, per_receiver), shaped)
    return sum_at_receivers(x * weight, graph, num_nodes, per_receiver)


class EdgeParts(NamedTuple):
    """Edge features = at_sender[senders] + at_receiver[receivers] + own; a part may be None."""

    at_sender: jax.Array | None  # (N, F)
    at_receiver: jax.Array | None  # (N, F)
    own: jax.Array | None  # (E, F)

    def dense(self, kernel: jax.Array) -> EdgeParts:
        """The parts of (edge features) @ kernel."""
        return EdgeParts(*(None if part is None else part @ kernel for part in self))

    def per_edge(self, graph: jraph.GraphsTuple, per_receiver: int) -> jax.Array:
        """(E, F) edge features, the parts gathered and added."""
        gathered = [
            None if self.at_sender is None else take_rows(self.at_sender, graph.senders),
            None
            if self.at_receiver is None
            else at_receivers(self.at_receiver, graph, per_receiver),
            self.own,
        ]
        present = [part for part in gathered if part is not None]
        return sum(present[1:], present[0])

    def weighted_sums(
        self, graph: jraph.GraphsTuple, weight: jax.Array, count: jax.Array, per_receiver: int
    ) -> jax.Array:
        """(N, F) each node's `weight`-weighted sum of its incoming edges' features; `count` is
        the sum of the weights (a receiver's own part is at_receiver x count)."""
        num_nodes = count.shape[0]
        sums = []
        if self.at_sender is not None:
            sent = take_rows(self.at_sender, graph.senders)
            sums.append(weighted_sum_at_receivers(sent, weight, graph, num_nodes, per_receiver))
        if self.at_receiver is not None:
            sums.append(self.at_receiver * count)
        if self.own is not None:
            own = weighted_sum_at_receivers(self.own, weight, graph, num_nodes, per_receiver)
            sums.append(own)
        return sum(sums[1:], sums[0])


def edge_start_features(nodes: jax.Array) -> EdgeParts:
    """An edge's input features: the mean of its end nodes' (padding edges join the padding node,
    whose zero features give zeros; masked out either way)."""
    return EdgeParts(0.5 * nodes, 0.5 * nodes, None)


class EdgeSAGELayer(nn.Module):
    features: int
    per_receiver: int = 0
    relu: bool = True  # on the node embeddings, before the L2 norm

    @nn.compact
    def __call__(
        self,
        nodes: jax.Array,
        edges: EdgeParts,
        graph: jraph.GraphsTuple,
        edge_mask: jax.Array,
        aggregation_weight: jax.Array,
    ) -> tuple[jax.Array, EdgeParts]:
        num_nodes = nodes.shape[0]
        mask = edge_mask.astype(nodes.dtype)[:, None]
        weight = mask * aggregation_weight[:, None]
        count = sum_at_receivers(weight, graph, num_nodes, self.per_receiver)
        neighbour_nodes = EdgeParts(nodes, None, None)
        total = jnp.concatenate(
            [
                neighbour_nodes.weighted_sums(graph, weight, count, self.per_receiver),
                edges.weighted_sums(graph, weight, count, self.per_receiver),
            ],
            -1,
        )
        neighbours = total / jnp.maximum(count, 1e-6)
        h = nn.Dense(self.features, name="node")(jnp.concatenate([nodes, neighbours], -1))
        if self.relu:
            h = nn.relu(h)
            h = h / jnp.maximum(jnp.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
        else:  # a padding node's h is exactly 0 at init: the norm's gradient there is 0/0
            h = h * jax.lax.rsqrt(jnp.maximum(jnp.sum(h * h, -1, keepdims=True), 1e-24))
        e = EndsDense(self.features, self.per_receiver, name="edge")(h, graph, edges)
        return h, EdgeParts(None, None, nn.relu(e) * mask)


class EndsDense(nn.Module):
    """Dense([h[sender] ⊕ h[receiver] ⊕ edge]) with nn.Dense's parameters (kernel rows in that
    order), computed as (h·K_s + edge's sender part·K_e) gathered at the senders + the same at
    the receivers + edge's own part·K_e: node parts are multiplied once per node, not per edge."""

    features: int
    per_receiver: int = 0

    @nn.compact
    def __call__(self, h: jax.Array, graph: jraph.GraphsTuple, edges: EdgeParts) -> jax.Array:
        width = h.shape[-1]
        edge_width = next(part.shape[-1] for part in edges if part is not None)
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (2 * width + edge_width, self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        from_edge = edges.dense(kernel[2 * width :])
        at_sender, at_receiver = h @ kernel[:width], h @ kernel[width : 2 * width]
        if from_edge.at_sender is not None:
            at_sender = at_sender + from_edge.at_sender
        if from_edge.at_receiver is not None:
            at_receiver = at_receiver + from_edge.at_receiver
        parts = EdgeParts(at_sender, at_receiver, from_edge.own)
        return parts.per_edge(graph, self.per_receiver) + bias


class EdgeSAGE(nn.Module):
    """Node and edge embeddings after `num_layers` layers over a graph as
    `jaxfp.graphs.bipartite.to_graphs_tuple` builds it (edges = {'weight', 'virtual'})."""

    features: int = 32
    num_layers: int = 2
    dropout: float = 0.0
    weighted: bool = False
    # ReLU on the last layer's node embeddings too (Algorithm 1's σ at every layer); False leaves
    # that layer linear before its L2 norm, as GraphSAGE's reference implementation does
    last_relu: bool = True

    @nn.compact
    def __call__(
        self,
        graph: jraph.GraphsTuple,
        edge_mask: jax.Array,
        train: bool = False,
        per_receiver: int = 0,
    ) -> tuple[jax.Array, jax.Array]:
        nodes = graph.nodes
        edges = edge_start_features(nodes)
        aggregation_weight = jnp.ones(edge_mask.shape, nodes.dtype)
        if self.weighted:
            w = graph.edges["weight"] / OFFSET_DB
            aggregation_weight = jnp.where(graph.edges["virtual"], 1.0, w)
        for layer in range(self.num_layers):
            nodes = nn.Dropout(self.dropout, deterministic=not train)(nodes)
            relu = self.last_relu or layer < self.num_layers - 1
            nodes, edges = EdgeSAGELayer(self.features, per_receiver, relu, name=f"layer{layer}")(
                nodes, edges, graph, edge_mask, aggregation_weight
            )
        # Per-edge outputs are written only where a caller uses them (jit drops them otherwise).
        return nodes, edges.per_edge(graph, per_receiver)

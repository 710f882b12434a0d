"""GUFU's losses, module-level with a hashable `static` first argument (a NamedTuple of the
settings and modules a loss needs) so `jaxfp.train.optimise` reuses a compiled step exactly when
the static settings and shapes match (`study` states the choices behind each equation)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxfp.common.rows import take_rows
from jaxfp.graphs import sampling
from jaxfp.methods.gufu.nets import MLP, Autoencoder
from jaxfp.methods.gufu.sage import EdgeSAGE, at_receivers


class AutoencoderStatic(NamedTuple):
    """Eq. (2)/(10)'s statics: the autoencoder, its mini-batch of records (0 = every record) and
    the weight of a detected entry against an undetected one's 1 (1 = eq. 2's plain norm)."""

    model: Autoencoder
    batch: int
    detected_weight: float = 1.0


class GnnStatic(NamedTuple):
    """Eq. (4)'s statics: the GNN, incoming edges sampled per node (0 = the whole graph) and
    negatives per edge."""

    model: EdgeSAGE
    fanout: int
    negatives: int


class UpdateModuleStatic(NamedTuple):
    """Eq. (9)'s statics: MLP1, MLP2, the number of records (rows before the batch's), whether
    any old-new pair exists, λ, and records and pairs drawn a step (0 = all of them)."""

    mlp1: MLP
    mlp2: MLP
    records: int
    has_pairs: bool
    consistency_weight: float
    batch: int


def column_mask(data) -> jax.Array:
    """(1, width) 1.0 on the autoencoder's real AP columns, 0.0 on the padding beyond them."""
    width = data["x"].shape[1]
    return (jnp.arange(width) < data["real_columns"]).astype(jnp.float32)[None]


def entry_weights(x: jax.Array, data, detected_weight: float) -> jax.Array:
    """(rows, width) `detected_weight` on a detected entry (x > 0), 1 on an undetected one, 0 on
    the padding columns."""
    return jnp.where(x > 0, detected_weight, 1.0) * column_mask(data)


def weighted_mean_square(error: jax.Array, weight: jax.Array) -> jax.Array:
    """sum(weight * error^2) / sum(weight): with unit weights the mean square over the entries."""
    return jnp.sum(weight * error**2) / jnp.maximum(jnp.sum(weight), 1.0)


def autoencoder_loss(static: AutoencoderStatic, params, data, key):
    """Eq. (2)/(10): reconstruction of the normalised RSS, on a mini-batch of records if set, a
    detected entry weighted `detected_weight` (undetected 1). `data`: x (records, width) with
    zero padding columns, real_columns (how many are APs)."""
    model, batch = static.model, static.batch
    x = data["x"]
    if batch and batch < x.shape[0]:  # mini-batches of records: steps cost O(batch)
        key, rows = jax.random.split(key)
        x = x[jax.random.randint(rows, (batch,), 0, x.shape[0])]
    out, _ = model.apply(params, x, train=True, rngs={"dropout": key})
    return weighted_mean_square(out - x, entry_weights(x, data, static.detected_weight))


def alignment_loss(static: AutoencoderStatic, params, data, key):
    """Eq. (10) as alignment: encoder(updated RSS) -> updated codes, decoder(updated codes) ->
    updated RSS; the two terms touch disjoint parameters, neither learns its own output."""
    model, batch = static.model, static.batch
    x, codes = data["x"], data["codes"]
    if batch and batch < x.shape[0]:
        key, rows = jax.random.split(key)
        pick = jax.random.randint(rows, (batch,), 0, x.shape[0])
        x, codes = x[pick], codes[pick]
    # No input dropout here: regressing onto fixed codes through dropout noise shrinks the codes
    # towards their mean every update, and repeated updates collapse them (measured: the mean
    # cosine between codes went 0.87 -> 0.996 -> 1.0000 in two weeks of the synthetic site)
    encoded = model.apply(params, x, method="encode")
    decoded = model.apply(params, codes, method="decode")
    weight = entry_weights(x, data, static.detected_weight)
    return jnp.mean((encoded - codes) ** 2) + weighted_mean_square(decoded - x, weight)


def gnn_loss(static: GnnStatic, params, data, key):
    """Eq. (4): GraphSAGE's unsupervised loss on (sampled) edges with random negatives."""
    model, fanout, negatives = static.model, static.fanout, static.negatives
    graph, mask = data["graph"], data["edge_mask"]
    dropout_key, negative_key, sample_key = jax.random.split(key, 3)
    if fanout:  # GraphSAGE's sampled neighbourhoods: nodes x fanout edges per step
        ids, mask = sampling.sample_edges(sample_key, data["table"], fanout)
        graph = sampling.edge_subgraph(graph, ids)
    # Sampled edges come `fanout` per receiver, node by node: sums instead of scatters (sage.py)
    z, _ = model.apply(
        params, graph, mask, train=True, per_receiver=fanout, rngs={"dropout": dropout_key}
    )
    senders = graph.senders
    at_sender = take_rows(z, senders)
    positive = jax.nn.log_sigmoid(jnp.sum(at_sender * at_receivers(z, graph, fanout), -1))
    sampled = jax.random.randint(negative_key, (negatives, senders.shape[0]), 0, data["real_nodes"])
    # One (edges, features) product per negative: XLA:CPU reduced the stacked (1, edges,
    # features) product ~20x slower (48 ms a step, half the step, on the 10,000-node bench).
    negative = (
        sum(jax.nn.log_sigmoid(-jnp.sum(at_sender * take_rows(z, draw), -1)) for draw in sampled)
        / negatives
    )
    per_edge = -(positive + negatives * negative)
    weight = mask.astype(jnp.float32)
    return jnp.sum(per_edge * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def update_module_loss(static: UpdateModuleStatic, params, d, key):
    """Eq. (9) = eq. 5 + eq. 6 + λ (eq. 7 + eq. 8) over the padded old-new virtual pairs.

    `d`: z (records then batch, embeddings), loc (the records' scaled locations), codes_old
    (what MLP2 learns for the records), codes_new (the batch's features), old_end / new_end
    (each pair's record and batch row), cross_weight (1 for a real pair, 0 for padding),
    num_pairs (the real pairs; padding sits after them).
    Eq. 5 and 6 are mean squared (summed over coordinates / features) errors over the records;
    eq. 7 and 8 weighted means over the pairs of ||MLP1(z_new) - loc_old||^2 and
    ||MLP2(loc_old) - codes_new||^2. `batch` > 0 estimates each term on `batch` records and
    `batch` pairs drawn each step (a step costs O(batch), not O(records)); 0 uses all of them."""
    mlp1, mlp2, s = static.mlp1, static.mlp2, static.records
    has_cross, lam, batch = static.has_pairs, static.consistency_weight, static.batch
    sampled = bool(batch) and batch < s
    rows_key, pairs_key = jax.random.split(key)
    z_old, loc, codes_old = d["z"][:s], d["loc"], d["codes_old"]
    if sampled:
        rows = jax.random.randint(rows_key, (batch,), 0, s)
        z_old, loc, codes_old = (take_rows(x, rows) for x in (z_old, loc, codes_old))
    features_old = mlp2.apply(params["mlp2"], loc)
    loss = jnp.mean(jnp.sum((mlp1.apply(params["mlp1"], z_old) - loc) ** 2, -1))  # eq. 5
    loss += jnp.mean(jnp.sum((features_old - codes_old) ** 2, -1))  # eq. 6
    if has_cross:
        new_end, old_end, w = d["new_end"], d["old_end"], d["cross_weight"]
        if sampled:  # drawn among the real pairs (the padding sits after them)
            pick = jax.random.randint(pairs_key, (batch,), 0, d["num_pairs"])
            new_end, old_end, w = (take_rows(x, pick) for x in (new_end, old_end, w))
        old_loc = take_rows(d["loc"], old_end)
        if sampled:
            located = mlp1.apply(params["mlp1"], take_rows(d["z"], s + new_end))
            features = mlp2.apply(params["mlp2"], old_loc)
        else:  # each network once per row, then gathered per pair: pairs outnumber rows
            located = take_rows(mlp1.apply(params["mlp1"], d["z"][s:]), new_end)
            features = take_rows(features_old, old_end)
        eq7 = jnp.sum((located - old_loc) ** 2, -1)
        eq8 = jnp.sum((features - take_rows(d["codes_new"], new_end)) ** 2, -1)
        loss += lam * jnp.sum(w * (eq7 + eq8)) / jnp.maximum(jnp.sum(w), 1.0)
    return loss

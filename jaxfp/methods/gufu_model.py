"""GUFU's learned parts and one batch update (GUFU paper §4-6): autoencoder, GNN on the site graph,
update module, edge prediction for AP changes. The protocol that feeds it months lives in `gufu.py`.

Choices where the paper's symbols were lost or it is silent, one line each:
- RSS normalisation: (dBm + 120) / 120, not detected -> 0; decoded values below
  `detect_floor_dbm` count as not detected.
- sample node features = 32-d code ⊕ location scaled by the database's centre and spread; new
  samples get a random location drawn from the database's locations (§5.1: "randomly assigned").
- eq. 4: GraphSAGE's unsupervised loss, -log σ(z_u·z_v) over real and virtual edges minus
  `negatives` x log σ(-z_u·z_n) for random nodes n.
- update module: MLP1 embedding -> location, MLP2 location -> feature (code); eq. 5 and 6 are MSE on
  the database's samples, eq. 7 pulls a new sample's location towards its old virtual neighbours'
  locations, eq. 8 pulls an old sample's updated feature towards its new virtual neighbours'
  features; eq. 9 = eq. 5 + eq. 6 + λ (eq. 7 + eq. 8).
- the database is rewritten with the decoded updated features of the old samples (same locations).
- virtual edges: cosine similarity > threshold, at most `max_virtual_per_node` per sample (memory).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.graphs import bipartite, edge_prediction
from jaxfp.nets import MLP, Autoencoder, EdgeSAGE

ALPHA = bipartite.ALPHA_DB


def normalise(rss_dbm: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(rss_dbm), 0.0, (rss_dbm + ALPHA) / ALPHA).astype(np.float32)


def denormalise(x: np.ndarray, floor_dbm: float) -> np.ndarray:
    dbm = np.asarray(x, np.float64) * ALPHA - ALPHA
    return np.where(dbm > floor_dbm, dbm, np.nan).astype(np.float32)


def align_columns(rss: np.ndarray, ap_ids: np.ndarray, target_ids: np.ndarray) -> np.ndarray:
    """`rss` (rows over `ap_ids`) over `target_ids`; NaN for the APs `ap_ids` lacks."""
    column = {ap: i for i, ap in enumerate(ap_ids.tolist())}
    index = np.array([column.get(ap, -1) for ap in target_ids.tolist()], np.int64)
    picked = rss[:, np.maximum(index, 0)] if len(index) else rss[:, :0]
    return np.where(index[None] >= 0, picked, np.nan).astype(np.float32)


def _fit(loss_fn, params, data, steps: int, learning_rate: float, key: jax.Array):
    """Full-batch Adam on `loss_fn(params, data, key)`, jitted, for `steps` steps.

    `data` (arrays: the graph, the RSS) is an argument of the compiled step, not a constant baked
    into it: XLA would otherwise constant-fold the graph's scatters for seconds per compile.
    """
    tx = optax.adam(learning_rate)

    @jax.jit
    def step(carry, data, i):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, data, jax.random.fold_in(key, i))
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    carry = (params, tx.init(params))
    data = jax.device_put(data)
    losses = []
    for i in range(steps):
        carry, loss = step(carry, data, i)
        losses.append(loss)
    final = float(losses[-1]) if losses else float("nan")
    if not np.isfinite(final):
        raise FloatingPointError(f"GUFU training diverged: loss {final} after {steps} steps")
    return carry[0], final


@dataclasses.dataclass
class Gufu:
    """The updated fingerprint database (rss dBm with NaN, fixed locations) and GUFU's state."""

    config: ml_collections.ConfigDict
    ap_ids: np.ndarray
    rss: np.ndarray  # (S, A) dBm, NaN = not detected
    xy: np.ndarray  # (S, 2)
    key: jax.Array
    ae_params: Any = None
    gnn_params: Any = None
    gnn_width: int = 0

    @property
    def g(self) -> ml_collections.ConfigDict:
        return self.config.gufu

    def _next_key(self) -> jax.Array:
        self.key, out = jax.random.split(self.key)
        return out

    # --- features -----------------------------------------------------------------------------
    def train_autoencoder(self, steps: int) -> float:
        """Eq. (2)/(10): reconstruct the database's normalised RSS; a new AP set starts afresh."""
        x = jnp.asarray(normalise(self.rss))
        model = Autoencoder(inputs=x.shape[1], code=self.g.code, dropout=self.g.ae_dropout)
        if self.ae_params is None or self._ae_width() != x.shape[1]:
            self.ae_params = model.init(self._next_key(), x[:1])

        def loss_fn(params, x, key):
            out, _ = model.apply(params, x, train=True, rngs={"dropout": key})
            return jnp.mean((out - x) ** 2)

        self.ae_params, loss = _fit(
            loss_fn, self.ae_params, x, steps, self.g.learning_rate, self._next_key()
        )
        return loss

    def _ae_width(self) -> int:
        return int(self.ae_params["params"]["out"]["bias"].shape[0])

    def _autoencoder(self) -> Autoencoder:
        return Autoencoder(inputs=self._ae_width(), code=self.g.code, dropout=self.g.ae_dropout)

    def encode(self, rss_dbm: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:  # ablation: the normalised RSS itself
            return normalise(rss_dbm)
        model = self._autoencoder()
        return np.asarray(
            model.apply(self.ae_params, jnp.asarray(normalise(rss_dbm)), method="encode")
        )

    def decode(self, codes: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:
            return denormalise(codes, self.g.detect_floor_dbm)
        out = self._autoencoder().apply(self.ae_params, jnp.asarray(codes), method="decode")
        return denormalise(np.asarray(out), self.g.detect_floor_dbm)

    def _location_scale(self) -> tuple[np.ndarray, float]:
        """Centre and spread of the database's locations (fixed: records keep their places)."""
        return self.xy.mean(0), max(float(self.xy.std()), 1e-6)

    def _location_features(self, xy: np.ndarray) -> np.ndarray:
        centre, spread = self._location_scale()
        return ((xy - centre) / spread).astype(np.float32)

    def _graph(self, rss: np.ndarray, codes: np.ndarray, xy: np.ndarray) -> bipartite.SiteGraph:
        features = np.concatenate([codes, self._location_features(xy)], 1)
        graph = bipartite.build_site_graph(rss, self.ap_ids, features)
        if self.g.virtual_edges:
            graph = bipartite.with_virtual_edges(
                graph, self.g.virtual_threshold, self.g.max_virtual_per_node
            )
        return graph

    # --- GNN ----------------------------------------------------------------------------------
    def _padded(self, graph: bipartite.SiteGraph) -> bipartite.Padded:
        # Budgets rounded up to a multiple, so batches of similar size share one compilation.
        nodes = graph.num_samples + graph.num_aps + 1
        edges = 2 * (len(graph.edge_weight) + len(graph.virtual))
        multiple = self.g.budget_multiple
        return bipartite.to_graphs_tuple(
            graph, -(-nodes // multiple) * multiple, max(-(-edges // multiple) * multiple, multiple)
        )

    def train_gnn(self, graph: bipartite.SiteGraph, steps: int) -> float:
        """Eq. (4) on the graph with its virtual edges."""
        padded = self._padded(graph)
        model = EdgeSAGE(self.g.embedding, self.g.gnn_layers, self.g.gnn_dropout)
        edge_mask = jnp.asarray(padded.edge_mask)
        real_nodes = int(padded.node_mask.sum())
        width = graph.sample_features.shape[1]
        if self.gnn_params is None or width != self.gnn_width:  # the ablation's width follows APs
            self.gnn_params = model.init(self._next_key(), padded.graph, edge_mask)
            self.gnn_width = width
        data = {"graph": jax.tree.map(jnp.asarray, padded.graph), "edge_mask": edge_mask}

        def loss_fn(params, data, key):
            graph, mask = data["graph"], data["edge_mask"]
            dropout_key, negative_key = jax.random.split(key)
            z, _ = model.apply(params, graph, mask, train=True, rngs={"dropout": dropout_key})
            senders, receivers = graph.senders, graph.receivers
            positive = jax.nn.log_sigmoid(jnp.sum(z[senders] * z[receivers], -1))
            negatives = jax.random.randint(
                negative_key, (self.g.negatives, senders.shape[0]), 0, real_nodes
            )
            negative = jax.nn.log_sigmoid(-jnp.sum(z[senders][None] * z[negatives], -1)).mean(0)
            per_edge = -(positive + self.g.negatives * negative)
            weight = mask.astype(jnp.float32)
            return jnp.sum(per_edge * weight) / jnp.maximum(jnp.sum(weight), 1.0)

        self.gnn_params, loss = _fit(
            loss_fn, self.gnn_params, data, steps, self.g.learning_rate, self._next_key()
        )
        return loss

    def embed(self, graph: bipartite.SiteGraph) -> np.ndarray:
        padded = self._padded(graph)
        model = EdgeSAGE(self.g.embedding, self.g.gnn_layers, self.g.gnn_dropout)
        z, _ = model.apply(self.gnn_params, padded.graph, jnp.asarray(padded.edge_mask))
        return np.asarray(z)[: graph.num_samples]

    # --- stages -------------------------------------------------------------------------------
    def offline(self) -> dict[str, float]:
        start = time.perf_counter()
        losses = self._train_on_database(self.g.ae_steps, self.g.gnn_steps)
        return {**losses, "seconds": time.perf_counter() - start}

    def _train_on_database(self, ae_steps: int, gnn_steps: int) -> dict[str, float]:
        """Autoencoder (eq. 2/10, unless ablated), then the GNN (eq. 4) on the database's graph."""
        ae_loss = self.train_autoencoder(ae_steps) if self.g.feature_extractor else 0.0
        graph = self._graph(self.rss, self.encode(self.rss), self.xy)
        return {"ae_loss": ae_loss, "gnn_loss": self.train_gnn(graph, gnn_steps)}

    def update(self, new_rss: np.ndarray, new_ap_ids: np.ndarray) -> dict[str, Any]:
        """One unlabelled batch (rows of `new_rss` over `new_ap_ids`, dBm with NaN).

        Returns the batch's predicted locations and what changed; rewrites the database.
        """
        start = time.perf_counter()
        s = len(self.rss)
        on_known = align_columns(new_rss, new_ap_ids, self.ap_ids)
        rng = np.random.default_rng(np.asarray(jax.random.key_data(self._next_key())).ravel())
        new_xy = self.xy[rng.integers(0, s, len(new_rss))]
        codes_old, codes_new = self.encode(self.rss), self.encode(on_known)
        graph = self._graph(
            np.concatenate([self.rss, on_known]),
            np.concatenate([codes_old, codes_new]),
            np.concatenate([self.xy, new_xy]),
        )
        z = self.embed(graph)
        predicted_xy, updated_codes = self._update_module(graph, z, codes_old)
        updated = self.decode(updated_codes)
        # Values change here, the detection pattern only through edge prediction (§6): a record
        # keeps its old value where the decoder falls below the detection floor.
        self.rss = np.where(
            np.isnan(self.rss), np.nan, np.where(np.isnan(updated), self.rss, updated)
        ).astype(np.float32)
        changes = {"aps_added": 0, "aps_removed": 0, "edges_added": 0, "edges_removed": 0}
        if self.g.edge_prediction:
            changes = self._ap_changes(new_rss, new_ap_ids, graph)
        losses = self._train_on_database(self.g.retrain_steps, self.g.retrain_steps)
        return {
            "xy": predicted_xy,
            **changes,
            **losses,
            "seconds": time.perf_counter() - start,
        }

    def _update_module(
        self, graph: bipartite.SiteGraph, z: np.ndarray, codes_old: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Eq. (5)-(9): MLP1 embedding -> location, MLP2 location -> feature."""
        s = len(self.rss)
        loc = jnp.asarray(self._location_features(self.xy))
        z = jnp.asarray(z)
        codes_old = jnp.asarray(codes_old)
        codes_new = jnp.asarray(graph.sample_features[s:, : codes_old.shape[1]])
        v = graph.virtual
        cross = v[(v[:, 0] < s) != (v[:, 1] < s)]  # old-new virtual pairs
        old_end = jnp.asarray(np.where(cross[:, 0] < s, cross[:, 0], cross[:, 1]))
        new_end = jnp.asarray(np.where(cross[:, 0] < s, cross[:, 1], cross[:, 0]) - s)
        has_cross = len(cross) > 0
        mlp1 = MLP(hidden=(self.g.hidden,), out=2)
        mlp2 = MLP(hidden=(self.g.hidden,), out=codes_old.shape[1])
        k1, k2 = jax.random.split(self._next_key())
        params = {"mlp1": mlp1.init(k1, z[:1]), "mlp2": mlp2.init(k2, loc[:1])}
        lam = self.g.consistency_weight

        data = {
            "z": z,
            "loc": loc,
            "codes_old": codes_old,
            "codes_new": codes_new,
            "old_end": old_end,
            "new_end": new_end,
        }

        def loss_fn(params, d, key):
            located = mlp1.apply(params["mlp1"], d["z"])
            features = mlp2.apply(params["mlp2"], d["loc"])
            loss = jnp.mean(jnp.sum((located[:s] - d["loc"]) ** 2, -1))  # eq. 5
            loss += jnp.mean(jnp.sum((features - d["codes_old"]) ** 2, -1))  # eq. 6
            if has_cross:
                new_at, old_at = s + d["new_end"], d["old_end"]
                eq7 = jnp.mean(jnp.sum((located[new_at] - d["loc"][old_at]) ** 2, -1))
                eq8 = jnp.mean(jnp.sum((features[old_at] - d["codes_new"][d["new_end"]]) ** 2, -1))
                loss += lam * (eq7 + eq8)
            return loss

        params, _ = _fit(
            loss_fn, params, data, self.g.update_steps, self.g.learning_rate, self._next_key()
        )
        located = np.asarray(mlp1.apply(params["mlp1"], z[s:]))
        centre, spread = self._location_scale()
        updated = np.asarray(mlp2.apply(params["mlp2"], loc))
        return located * spread + centre, updated

    def _ap_changes(
        self, new_rss: np.ndarray, new_ap_ids: np.ndarray, graph: bipartite.SiteGraph
    ) -> dict[str, int]:
        """§6: new AP nodes from the batch, edge prediction, forgetting; the batch's nodes go."""
        s = len(self.rss)
        known = set(self.ap_ids.tolist())
        fresh = [i for i, ap in enumerate(new_ap_ids.tolist()) if ap not in known]
        fresh = [i for i in fresh if np.isfinite(new_rss[:, i]).any()]
        all_ids = np.concatenate([self.ap_ids, new_ap_ids[fresh]])
        batch_rss = align_columns(new_rss, new_ap_ids, all_ids)
        old_rss = np.concatenate([self.rss, np.full((s, len(fresh)), np.nan, np.float32)], 1)
        full = bipartite.build_site_graph(
            np.concatenate([old_rss, batch_rss]), all_ids, graph.sample_features
        )._replace(virtual=graph.virtual)
        threshold = edge_prediction.default_threshold(full, self.g.edge_floor_dbm)
        new_aps = np.arange(len(self.ap_ids), len(all_ids))
        result = edge_prediction.update_edges(full, threshold, addable_aps=new_aps)
        rss = result.graph.rss()[:s]  # the batch's sample nodes leave the graph
        alive = np.isfinite(rss).any(0)
        self.ap_ids, self.rss = result.graph.ap_ids[alive], rss[:, alive]
        return {
            "aps_added": int(np.isin(new_ap_ids[fresh], self.ap_ids).sum()),
            "aps_removed": int(len(known - set(self.ap_ids.tolist()))),
            "edges_added": result.added,
            "edges_removed": result.removed,
        }

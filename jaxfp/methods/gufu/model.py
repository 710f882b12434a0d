"""GUFU's learned parts and one batch update (GUFU paper §4-6): autoencoder, GNN on the site graph,
update module, edge prediction for AP changes. The protocol that feeds it months lives in `run.py`.

Every inner fit runs through `jaxfp.train.optimise` (a finite check on every step, losses in the
run's metrics.jsonl); its loss functions are module-level with a hashable `static` argument, so JAX
reuses a compiled step exactly when the static settings and shapes match.

Choices where the paper's symbols were lost or it is silent, one line each:
- RSS normalisation: (dBm + 120) / 120, not detected -> 0; decoded values below
  `detect_floor_dbm` count as not detected.
- sample node features = 32-d code ⊕ location scaled by the database's centre and spread; new
  samples get a random location drawn from the database's locations (§5.1: "randomly assigned");
  `initial_location="code_knn"` (ours) starts them at a cosine WkNN estimate over the codes instead.
- §5.2 "iteratively predict": `update_rounds` passes; after each, the new samples' location
  features become their predicted locations and the virtual edges, embeddings and update module
  are recomputed (1 = one pass from the random locations).
- rewrite: "replace" (the paper: decoded updated features replace the records) or "residual" (ours:
  records move by decode(MLP2(loc)) - decode(MLP2'(loc)), MLP2' being the same fit without the
  batch, so only what the batch changed reaches them and the decoder's own error cancels), or
  "none" (an ablation: values change only through §6's edges).
- `rewrite_from`: what MLP2 produces. "codes" (eq. 6 on the encoder's codes: the batch reaches the
  records only through eq. 8's old-new pairs) or "embeddings" (§6.2: the GNN's output embeddings
  of the records on the graph the batch joins, which message passing changes; a ridge readout
  fitted on the database's own embeddings maps them to codes for the decoder).
- eq. 10 (`autoencoder_retrain`): "reconstruct" retrains the autoencoder on the rewritten records
  (it learns its own output back); "align" (the paper's stated purpose, that updated features
  can be extracted from the updated RSS): the encoder maps the updated RSS to the updated codes,
  the decoder the updated codes to the updated RSS; neither sees its own output as a target.
- a decoded value below `detect_floor_dbm` ends the detection (`below_floor="ends"`, the paper's
  replacement); `"keeps"` (ours before) kept the old value, so no detection could end.
- eq. 4: GraphSAGE's unsupervised loss, -log σ(z_u·z_v) over real and virtual edges minus
  `negatives` x log σ(-z_u·z_n) for random nodes n.
- update module: MLP1 embedding -> location, MLP2 location -> feature (code); eq. 5 and 6 are MSE on
  the database's samples, eq. 7 pulls a new sample's location towards its old virtual neighbours'
  locations, eq. 8 pulls an old sample's updated feature towards its new virtual neighbours'
  features; eq. 9 = eq. 5 + eq. 6 + λ (eq. 7 + eq. 8).
  `update_batch` = b > 0 (ours, for speed) estimates each term on b records and b pairs a step;
  the residual rewrite's two fits then draw the same mini-batches, so they differ by the batch.
- after an update the autoencoder retrains `retrain_steps` (eq. 10) and the GNN
  `retrain_gnn_steps` (the paper: both are updated; it gives no step counts).
- the database is rewritten with the decoded updated features of the old samples (same locations).
- a location is whatever the protocol gives, (x, y) or (x, y, height of the floor): MLP1 predicts
  as many coordinates as the records have.
- virtual edges: cosine similarity > threshold, at most `max_virtual_per_node` per sample (memory),
  on code ⊕ location (`virtual_features="code_location"`, the paper's node features) or on the
  code alone (`"code"`: a new sample's location is a guess). `old_new_per_new` = k > 0 (ours)
  joins old and new samples apart from the rest: each new sample to its k most similar records
  above the threshold, with `virtual_one_per_point` one record per reference point; 0 lets
  old-new pairs compete with every other pair for the per-node cap (as before).
- edge prediction: `edge_weights="goodness_fairness"` (the paper, eq. 11-12) or
  `"neighbour_readings"` (ours: from the batch samples virtually linked to a record — an edge goes
  when at most `readings_keep_share` of them hear its AP, one comes when `readings_add_share` do,
  at their mean reading, for new APs or with `readings_any_ap` any AP; `readings_blend` moves a
  confirmed edge towards their reading; `readings_per_point` judges every record at a linked
  record's reference point alike, so a point's map moves as one: the protocol reads a point's
  AP only where half its records detect it, which a few linked records never reach;
  `readings_forget_min_links` = k forgets an AP no batch sample hears though k of them are
  linked to records hearing it (edges judged record by record never remove it where no batch
  sample links); see
  `jaxfp.graphs.edge_prediction`).
- GNN training samples `fanout` incoming edges per node each step (GraphSAGE's sampling; 0 = the
  whole graph); eq. 4's positive pairs are the sampled edges; inference uses every edge.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import scipy.sparse

from jaxfp.common.neighbours import idw_average
from jaxfp.common.rss_scale import from_unit, to_unit
from jaxfp.config import ConfigError
from jaxfp.graphs import bipartite, edge_prediction, sampling
from jaxfp.methods.gufu.autoencoder import Autoencoder, carry_over_inputs
from jaxfp.methods.gufu.losses import (
    alignment_loss,
    autoencoder_loss,
    gnn_loss,
    update_module_loss,
)
from jaxfp.methods.gufu.sage import EdgeSAGE
from jaxfp.nets import MLP
from jaxfp.train.optimise import StepLog, optimise


def align_columns(rss: np.ndarray, ap_ids: np.ndarray, target_ids: np.ndarray) -> np.ndarray:
    """`rss` (rows over `ap_ids`) over `target_ids`; NaN for the APs `ap_ids` lacks."""
    column = {ap: i for i, ap in enumerate(ap_ids.tolist())}
    index = np.array([column.get(ap, -1) for ap in target_ids.tolist()], np.int64)
    picked = rss[:, np.maximum(index, 0)] if len(index) else rss[:, :0]
    return np.where(index[None] >= 0, picked, np.nan).astype(np.float32)


def carry_over_aps(old: Any, old_ids: np.ndarray, fresh: Any, new_ids: np.ndarray) -> Any:
    """Autoencoder params for `new_ids`: every AP both sets share keeps its learned weights."""
    position = {ap: i for i, ap in enumerate(old_ids.tolist())}
    new_at = np.array([i for i, ap in enumerate(new_ids.tolist()) if ap in position], np.int64)
    old_at = np.array([position[new_ids[i]] for i in new_at], np.int64)
    return carry_over_inputs(old, fresh, old_at, new_at)


def ridge_readout(z: np.ndarray, codes: np.ndarray, ridge: float = 1e-3):
    """The least-squares affine map from GNN embeddings to codes (with a small ridge)."""
    design = np.c_[z, np.ones(len(z))].astype(np.float64)
    gram = design.T @ design + ridge * len(z) * np.eye(design.shape[1])
    weights = np.linalg.solve(gram, design.T @ codes.astype(np.float64))
    return lambda e: (np.c_[e, np.ones(len(e))] @ weights).astype(np.float32)


def crossing_pairs(virtual: np.ndarray, num_old: int) -> np.ndarray:
    """(P, 2) (old, new) ends of the virtual pairs that join a record and a batch sample."""
    crossing = virtual[(virtual[:, 0] < num_old) != (virtual[:, 1] < num_old)]
    return np.sort(crossing, axis=1)


def link_diagnostics(virtual: np.ndarray, num_old: int, num_new: int) -> dict[str, float]:
    """How much of the batch the old-new virtual pairs reach (the only path of eq. 7-8)."""
    cross = crossing_pairs(virtual, num_old)
    return {
        "old_new_pairs": int(len(cross)),
        "new_samples_linked": float(len(np.unique(cross[:, 1])) / max(num_new, 1)),
        "records_linked": float(len(np.unique(cross[:, 0])) / max(num_old, 1)),
    }


def fits_budget(count: int, budget: int) -> bool:
    """A padded size is kept while `count` fits it and fills more than half of it."""
    return count <= budget < 2 * count


@functools.partial(jax.jit, static_argnums=0)
def _embed(model: EdgeSAGE, params, graph, edge_mask):
    return model.apply(params, graph, edge_mask)[0]


@dataclasses.dataclass
class Gufu:
    """The updated fingerprint database (rss dBm with NaN, fixed locations) and GUFU's state."""

    settings: ml_collections.ConfigDict  # config.gufu with the variant's settings applied
    ap_ids: np.ndarray
    rss: np.ndarray  # (S, A) dBm, NaN = not detected
    xy: np.ndarray  # (S, 2) positions, or (S, 3) with the floor's height
    key: jax.Array
    ae_params: Any = None
    gnn_params: Any = None
    gnn_width: int = 0
    _ae_ap_ids: np.ndarray | None = None  # the AP set the autoencoder's first columns follow
    _ae_width: int = 0  # its input width: the AP count padded to a budget
    _database_graph: bipartite.SiteGraph | None = None  # the records' graph of the last training
    _encoded: tuple[np.ndarray, np.ndarray] | None = None  # (rss, its codes) of that training
    _graph_budgets: tuple[int, int] = (0, 0)  # (nodes, edges) the last padded graph had
    log: StepLog = dataclasses.field(default_factory=StepLog, repr=False)

    CHOICES = {
        "rewrite": ("replace", "residual", "none"),
        "initial_location": ("random", "code_knn"),
        "virtual_features": ("code_location", "code"),
        "edge_weights": ("goodness_fairness", "neighbour_readings"),
        "rewrite_from": ("codes", "embeddings"),
        "autoencoder_retrain": ("reconstruct", "align"),
        "below_floor": ("ends", "keeps"),
    }

    def __post_init__(self) -> None:
        self.check(self.settings)

    @classmethod
    def check(cls, settings: ml_collections.ConfigDict) -> None:
        """Fail on an unknown choice or an impossible count before hours of training, not after."""
        for field, allowed in cls.CHOICES.items():
            if settings[field] not in allowed:
                raise ConfigError(
                    f"gufu.{field}: expected one of {allowed}, got {settings[field]!r}"
                )
        for field, least, meaning in (
            ("update_rounds", 1, "at least one pass an update"),
            ("retrain_gnn_steps", -1, "a step count, or -1 for retrain_steps"),
        ):
            if settings[field] < least:
                raise ConfigError(f"gufu.{field}: expected {meaning}, got {settings[field]!r}")

    @property
    def g(self) -> ml_collections.ConfigDict:
        return self.settings

    def _fit(
        self, name: str, loss_fn, static, params, data, steps: int, key: jax.Array | None = None
    ) -> tuple[Any, float]:
        """`steps` Adam steps; `key` (default: the next one) draws the fit's mini-batches."""
        fit_key = self._next_key()
        return optimise(
            loss_fn,
            static,
            params,
            data,
            fit_key if key is None else key,
            steps,
            self.g.learning_rate,
            name,
            self.log,
        )

    def _next_key(self) -> jax.Array:
        self.key, out = jax.random.split(self.key)
        return out

    def _upcoming_key(self) -> jax.Array:
        """The key `_next_key` returns next, without taking it."""
        return jax.random.split(self.key)[1]

    # --- features -----------------------------------------------------------------------------
    def train_autoencoder(self, steps: int, align_to: np.ndarray | None = None) -> float:
        """Eq. (2)/(10): reconstruct the database's normalised RSS, or with `align_to` (the
        records' updated codes) align: the encoder maps the updated RSS to them and the decoder
        maps them to it. When the AP set changed, the APs kept keep their input rows and output
        columns; new APs start from a fresh init. The AP axis is padded to a budget (zero
        inputs, outputs masked out of the losses: the padding learns nothing), so an update
        that changes the AP set but fits the budget reuses the compiled step (README "Speed")."""
        count = len(self.ap_ids)
        width = self._ae_width
        if not fits_budget(count, width):  # fresh: 25 % headroom, as the graphs' edges
            width = self._budget(count + count // 4, multiple=8)
        model = Autoencoder(inputs=width, code=self.g.code, dropout=self.g.ae_dropout)
        x = jnp.asarray(self._padded_unit(self.rss, width))
        if self.ae_params is None:
            self.ae_params = model.init(self._next_key(), x[:1])
        elif width != self._ae_width or not np.array_equal(self._ae_ap_ids, self.ap_ids):
            fresh = model.init(self._next_key(), x[:1])
            self.ae_params = carry_over_aps(self.ae_params, self._ae_ap_ids, fresh, self.ap_ids)
        self._ae_ap_ids, self._ae_width = self.ap_ids.copy(), width

        static = (model, int(self.g.ae_batch))
        data = {"x": x, "real_columns": jnp.int32(count)}
        if align_to is None:
            self.ae_params, loss = self._fit(
                "autoencoder", autoencoder_loss, static, self.ae_params, data, steps
            )
        else:
            data["codes"] = jnp.asarray(align_to)
            self.ae_params, loss = self._fit(
                "autoencoder_alignment", alignment_loss, static, self.ae_params, data, steps
            )
        return loss

    @staticmethod
    def _padded_unit(rss_dbm: np.ndarray, width: int) -> np.ndarray:
        """Normalised RSS with zero columns up to the autoencoder's padded width."""
        unit = to_unit(rss_dbm)
        return np.pad(unit, ((0, 0), (0, width - unit.shape[1])))

    def _autoencoder(self) -> Autoencoder:
        """The autoencoder over the (padded) AP set it was last trained on."""
        return Autoencoder(inputs=self._ae_width, code=self.g.code, dropout=self.g.ae_dropout)

    def encode(self, rss_dbm: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:  # ablation: the normalised RSS itself
            return to_unit(rss_dbm)
        if rss_dbm.shape[1] != len(self._ae_ap_ids):  # padding would hide a misaligned AP set
            raise ValueError(
                f"encode: RSS over {rss_dbm.shape[1]} APs, the autoencoder reads "
                f"{len(self._ae_ap_ids)}"
            )
        x = self._padded_unit(rss_dbm, self._ae_width)
        return np.asarray(
            self._autoencoder().apply(self.ae_params, jnp.asarray(x), method="encode")
        )

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return from_unit(self._decode_normalised(codes), self.g.detect_floor_dbm)

    def _decode_normalised(self, codes: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:
            return np.asarray(codes)
        out = self._autoencoder().apply(self.ae_params, jnp.asarray(codes), method="decode")
        return np.asarray(out)[:, : len(self._ae_ap_ids)]

    def _rewritten(self, updated_codes: np.ndarray, without_batch: np.ndarray | None) -> np.ndarray:
        """The database's new values. A value the update takes from above the detection floor to
        at or below it ends that detection (the paper: the decoded value replaces the old one);
        none starts here (§6 adds them). `rewrite="none"` (an ablation) leaves the values."""
        if self.g.rewrite == "none":
            return self.rss.copy()
        if self.g.rewrite == "replace":  # the paper: decoded updated features replace the records
            unit = self._decode_normalised(updated_codes)
        else:  # residual: only what the batch changed, the decoder's own errors cancel
            change = self._decode_normalised(updated_codes) - self._decode_normalised(without_batch)
            unit = to_unit(self.rss) + change
        updated = from_unit(unit, -np.inf)
        below = updated <= self.g.detect_floor_dbm
        if self.g.below_floor == "keeps":  # ours before: the old value stays, no detection ends
            updated = np.where(below, self.rss, updated)
        else:
            updated = np.where(below & (self.rss > self.g.detect_floor_dbm), np.nan, updated)
        return np.where(np.isnan(self.rss), np.nan, updated).astype(np.float32)

    def _location_scale(self) -> tuple[np.ndarray, float]:
        """Centre and spread of the database's locations (fixed: records keep their places)."""
        return self.xy.mean(0), max(float(self.xy.std()), 1e-6)

    def _location_features(self, xy: np.ndarray) -> np.ndarray:
        centre, spread = self._location_scale()
        return ((xy - centre) / spread).astype(np.float32)

    def _graph(
        self, rss: np.ndarray, codes: np.ndarray, xy: np.ndarray, num_old: int | None = None
    ) -> bipartite.SiteGraph:
        """The site graph; with `num_old`, rows from `num_old` on are a batch's new samples."""
        features = self._node_features(codes, xy)
        graph = bipartite.build_site_graph(rss, self.ap_ids, features)
        if not self.g.virtual_edges:
            return graph
        similar = features if self._pairs_follow_locations() else codes
        threshold, cap, per_new = (
            self.g.virtual_threshold,
            self.g.max_virtual_per_node,
            self.g.old_new_per_new,
        )
        if num_old is None or per_new == 0:
            return graph._replace(virtual=bipartite.similar_pairs(similar, threshold, cap))
        points = self._points() if self.g.virtual_one_per_point else None
        # The records' own pairs are the last retraining's graph's: same records, same encoder.
        known = self._database_graph
        records = (
            known.virtual
            if known is not None and known.num_samples == num_old
            else bipartite.similar_pairs(similar[:num_old], threshold, cap)
        )
        virtual = [
            records,
            num_old + bipartite.similar_pairs(similar[num_old:], threshold, cap),
            bipartite.old_new_pairs(similar, num_old, threshold, per_new, points),
        ]
        return graph._replace(virtual=np.concatenate(virtual))

    def _node_features(self, codes: np.ndarray, xy: np.ndarray) -> np.ndarray:
        """A sample node's features: its code ⊕ its scaled location."""
        return np.concatenate([codes, self._location_features(xy)], 1)

    def _pairs_follow_locations(self) -> bool:
        """Whether the virtual pairs depend on the samples' locations (not only their codes)."""
        return self.g.virtual_edges and self.g.virtual_features == "code_location"

    def _points(self) -> np.ndarray:
        """(S,) the reference point of each record (records sharing a place share a point)."""
        return np.unique(np.round(self.xy, 2), axis=0, return_inverse=True)[1].ravel()

    def _links_of_points(self, links: np.ndarray) -> np.ndarray:
        """(old, new) links extended to every record at the linked record's point."""
        points = self._points()
        s, n = len(points), int(links[:, 1].max(initial=-1)) + 1
        member = scipy.sparse.csr_matrix((np.ones(s), (np.arange(s), points)))
        linked = scipy.sparse.csr_matrix(
            (np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(s, max(n, 1))
        )
        spread = (member @ (member.T @ linked)).tocoo()
        return np.column_stack([spread.row, spread.col]).astype(np.int64)

    # --- GNN ----------------------------------------------------------------------------------
    def _budget(self, count: int, multiple: int | None = None) -> int:
        """`count` rounded up to a multiple of `multiple` (default `budget_multiple`, the graphs')
        or of 1/8 of its power of two, whichever is larger, so batches of similar size share one
        compilation (<= 12.5% padding)."""
        multiple = self.g.budget_multiple if multiple is None else multiple
        step = max(multiple, 2 ** max(int(count).bit_length() - 4, 0))
        return max(-(-count // step) * step, step)

    def _padded(self, graph: bipartite.SiteGraph) -> bipartite.Padded:
        """The graph padded to the budgets of the last padded graph while it fits them and fills
        more than half of each; else to fresh budgets, the edges' with 25 % headroom. The
        records' graph gains ~8 % of its edges an update on the 10,000-node bench (new APs'
        edges): budgets fitted each time recompiled the GNN's training step every update (4 s)."""
        nodes = graph.num_samples + graph.num_aps + 1
        edges = 2 * (len(graph.edge_weight) + len(graph.virtual))
        last_nodes, last_edges = self._graph_budgets
        if not (fits_budget(nodes, last_nodes) and fits_budget(edges, last_edges)):
            self._graph_budgets = (self._budget(nodes), self._budget(edges + edges // 4))
        return bipartite.to_graphs_tuple(graph, *self._graph_budgets)

    def _gnn(self) -> EdgeSAGE:
        g = self.g
        return EdgeSAGE(g.embedding, g.gnn_layers, g.gnn_dropout, g.gnn_weighted)

    def train_gnn(self, graph: bipartite.SiteGraph, steps: int) -> float:
        """Eq. (4) on the graph with its virtual edges."""
        padded = self._padded(graph)
        model = self._gnn()
        edge_mask = jnp.asarray(padded.edge_mask)
        width = graph.sample_features.shape[1]
        if self.gnn_params is None or width != self.gnn_width:  # the ablation's width follows APs
            self.gnn_params = model.init(self._next_key(), padded.graph, edge_mask)
            self.gnn_width = width
        data = {
            "graph": jax.tree.map(jnp.asarray, padded.graph),
            "edge_mask": edge_mask,
            "real_nodes": jnp.int32(padded.node_mask.sum()),
            "table": sampling.neighbour_table(
                padded.graph.receivers, padded.edge_mask, padded.graph.nodes.shape[0]
            ),
        }
        static = (model, int(self.g.fanout), int(self.g.negatives))
        self.gnn_params, loss = self._fit("gnn", gnn_loss, static, self.gnn_params, data, steps)
        return loss

    def embed(self, graph: bipartite.SiteGraph) -> np.ndarray:
        padded = self._padded(graph)
        model = self._gnn()
        z = _embed(model, self.gnn_params, padded.graph, padded.edge_mask)
        return np.asarray(z)[: graph.num_samples]

    # --- stages -------------------------------------------------------------------------------
    def offline(self) -> dict[str, float]:
        start = time.perf_counter()
        losses = self._train_on_database(self.g.ae_steps, self.g.gnn_steps)
        seconds = time.perf_counter() - start
        return {**losses, **self.reconstruction(self._encoded[1]), "seconds": seconds}

    def reconstruction(self, codes: np.ndarray | None = None) -> dict[str, float]:
        """How well the autoencoder gives the database back: mean |error| (dB) over the detected
        values and the share of them decoded at or below the detection floor (measured: after
        300 steps on the UJI library's month 1, 36 dB and 93 % — a decoder that says 'not
        heard' everywhere; after 700, 7.3 dB and 6 %)."""
        if not self.g.feature_extractor:
            return {}
        detected = np.isfinite(self.rss)
        codes = self.encode(self.rss) if codes is None else codes  # `codes`: the records' own
        decoded = from_unit(self._decode_normalised(codes), -np.inf)[detected]
        return {
            "ae_error_db": float(np.abs(decoded - self.rss[detected]).mean()),
            "ae_below_floor": float((decoded <= self.g.detect_floor_dbm).mean()),
        }

    def _train_on_database(
        self, ae_steps: int, gnn_steps: int, new_codes: np.ndarray | None = None
    ) -> dict[str, float]:
        """Autoencoder (eq. 2/10, unless ablated), then the GNN (eq. 4) on the database's graph.
        `new_codes`: the records' updated codes, which eq. 10 aligns to if so set."""
        ae_loss = 0.0
        if self.g.feature_extractor:
            align = new_codes if self.g.autoencoder_retrain == "align" else None
            ae_loss = self.train_autoencoder(ae_steps, align)
        codes = self.encode(self.rss)
        graph = self._graph(self.rss, codes, self.xy)
        # Both unchanged until the next update rewrites the records; it starts from them
        self._database_graph, self._encoded = graph, (self.rss, codes)
        return {"ae_loss": ae_loss, "gnn_loss": self.train_gnn(graph, gnn_steps)}

    def update(self, new_rss: np.ndarray, new_ap_ids: np.ndarray) -> dict[str, Any]:
        """One unlabelled batch (rows of `new_rss` over `new_ap_ids`, dBm with NaN).

        Returns the batch's predicted locations and what changed; rewrites the database.
        """
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        s = len(self.rss)
        on_known = align_columns(new_rss, new_ap_ids, self.ap_ids)
        known = self._encoded is not None and self._encoded[0] is self.rss
        codes_old = self._encoded[1] if known else self.encode(self.rss)
        codes_new = self.encode(on_known)
        new_xy = self._initial_locations(codes_old, codes_new)
        readout = None
        if self.g.rewrite_from == "embeddings":  # features = GNN embeddings; codes by a readout
            z_alone = self.embed(self._database_graph)  # codes_old's graph, built in retraining
            readout = ridge_readout(z_alone, codes_old)
        codes = np.concatenate([codes_old, codes_new])

        def batch_graph(previous: bipartite.SiteGraph | None) -> bipartite.SiteGraph:
            xy = np.concatenate([self.xy, new_xy])
            if previous is not None and not self._pairs_follow_locations():  # same edges
                features = self._node_features(codes, xy)
                return previous._replace(sample_features=np.asarray(features, np.float32))
            return self._graph(np.concatenate([self.rss, on_known]), codes, xy, num_old=s)

        graph = None
        for round_ in range(self.g.update_rounds):
            graph = batch_graph(graph)  # a later round's: the new samples at their estimates
            z = self.embed(graph)
            if readout is None:  # MLP2 learns the codes; the batch reaches them through eq. 8
                targets, targets_alone = codes, codes_old
            else:  # MLP2 learns the embeddings the batch changed through message passing
                targets, targets_alone = z, z_alone
            last = round_ == self.g.update_rounds - 1
            new_xy, updated, alone = self._update_module(graph, z, targets, targets_alone, last)
            if readout is not None:
                updated, alone = readout(updated), None if alone is None else readout(alone)
        links = link_diagnostics(graph.virtual, s, len(on_known))
        rewritten = self._rewritten(updated, alone)
        links["detections_ended"] = int((np.isfinite(self.rss) & np.isnan(rewritten)).sum())
        self.rss = rewritten
        # Eq. 10's target codes: what the records' features became
        new_codes = updated if alone is None else codes_old + (updated - alone)
        if self.g.rewrite == "none":
            new_codes = codes_old
        seconds = {"seconds_update_module": lap()}  # graphs, embeddings, eq. 5-9, rewrite
        changes = {"aps_added": 0, "aps_removed": 0, "edges_added": 0, "edges_removed": 0}
        if self.g.edge_prediction:
            changes = self._ap_changes(new_rss, new_ap_ids, graph)
        seconds["seconds_edge_prediction"] = lap()
        gnn_steps = self.g.retrain_gnn_steps
        gnn_steps = self.g.retrain_steps if gnn_steps < 0 else gnn_steps
        losses = self._train_on_database(self.g.retrain_steps, gnn_steps, new_codes)
        seconds["seconds_retraining"] = lap()
        return {
            "xy": new_xy,
            **links,
            **changes,
            **losses,
            **self.reconstruction(self._encoded[1]),
            **seconds,
            "seconds": clock[-1] - clock[0],
        }

    def _initial_locations(self, codes_old: np.ndarray, codes_new: np.ndarray) -> np.ndarray:
        if self.g.initial_location == "random":  # the paper (§5.1)
            rng = np.random.default_rng(np.asarray(jax.random.key_data(self._next_key())).ravel())
            return self.xy[rng.integers(0, len(self.xy), len(codes_new))]
        return idw_average(codes_new, codes_old, self.xy, 3, metric="cosine")  # code_knn: WkNN

    def _update_module(
        self,
        graph: bipartite.SiteGraph,
        z: np.ndarray,
        features: np.ndarray,
        features_alone: np.ndarray,
        last_round: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Eq. (5)-(9): MLP1 embedding -> location, MLP2 location -> feature.

        `features` (records then batch) are what MLP2 learns (eq. 6) and eq. 8 pulls towards;
        `features_alone` the records' features without the batch. Returns the new samples'
        locations, the records' updated features and, for the residual rewrite, the features of
        the same module fit on `features_alone` with eq. 7-8 weighted 0 (only in the last round:
        the rewrite reads no other).
        """
        s = len(self.rss)
        loc = jnp.asarray(self._location_features(self.xy))
        z = jnp.asarray(z)
        codes_old = jnp.asarray(features[:s])
        codes_new = jnp.asarray(features[s:])
        cross = crossing_pairs(graph.virtual, s)
        # Old-new pairs padded (weight 0) to a budget, so later updates reuse the compiled step.
        pad = self._budget(len(cross)) - len(cross)
        old_end = np.pad(cross[:, 0], (0, pad))
        new_end = np.pad(cross[:, 1] - s, (0, pad))
        cross_weight = np.pad(np.ones(len(cross), np.float32), (0, pad))
        has_cross = len(cross) > 0
        mlp1 = MLP(hidden=(self.g.hidden,), out=self.xy.shape[1])
        mlp2 = MLP(hidden=(self.g.hidden,), out=codes_old.shape[1])
        k1, k2 = jax.random.split(self._next_key())
        params = {"mlp1": mlp1.init(k1, z[:1]), "mlp2": mlp2.init(k2, loc[:1])}
        lam = self.g.consistency_weight

        data = {
            "z": z,
            "loc": loc,
            "codes_old": codes_old,
            "codes_new": codes_new,
            "old_end": jnp.asarray(old_end),
            "new_end": jnp.asarray(new_end),
            "cross_weight": jnp.asarray(cross_weight),
            "num_pairs": jnp.int32(max(len(cross), 1)),
        }

        static = (mlp1, mlp2, s, has_cross, float(lam), int(self.g.update_batch))
        initial, draws = params, self._upcoming_key()  # the first fit's mini-batch draws
        params, _ = self._fit(
            "update_module", update_module_loss, static, initial, data, self.g.update_steps
        )
        located = np.asarray(mlp1.apply(params["mlp1"], z[s:]))
        centre, spread = self._location_scale()
        updated = np.asarray(mlp2.apply(params["mlp2"], loc))
        without_batch = None
        if self.g.rewrite == "residual" and not last_round:
            self._next_key()  # the skipped fit's key, so later fits draw the keys they drew before
        elif self.g.rewrite == "residual":  # same start, same compiled step, the batch weighted 0
            data["cross_weight"] = jnp.zeros_like(data["cross_weight"])
            data["codes_old"] = jnp.asarray(features_alone)
            # ... and the same mini-batches (`update_batch`): the two fits differ by what the
            # batch changed, not by their draws (with independent draws the difference carried
            # the draws' noise into every record: 7.14 against 7.05 dB, README GUFU "Speed")
            params, _ = self._fit(
                "update_module_without_batch",
                update_module_loss,
                static,
                initial,
                data,
                self.g.update_steps,
                key=draws,
            )
            without_batch = np.asarray(mlp2.apply(params["mlp2"], loc))
        return located * spread + centre, updated, without_batch

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
        if self.g.edge_weights == "goodness_fairness":
            result = edge_prediction.update_edges(full, threshold, addable_aps=new_aps)
        else:
            links = crossing_pairs(graph.virtual, s)
            if self.g.readings_per_point:
                links = self._links_of_points(links)
            result = edge_prediction.update_edges_from_readings(
                full,
                links,
                s,
                addable_aps=None if self.g.readings_any_ap else new_aps,
                add_share=self.g.readings_add_share,
                keep_share=self.g.readings_keep_share,
                blend=self.g.readings_blend,
                forget_min_links=self.g.readings_forget_min_links,
            )
        rss = result.graph.rss()[:s]  # the batch's sample nodes leave the graph
        alive = np.isfinite(rss).any(0)
        self.ap_ids, self.rss = result.graph.ap_ids[alive], rss[:, alive]
        return {
            "aps_added": int(np.isin(new_ap_ids[fresh], self.ap_ids).sum()),
            "aps_removed": int(len(known - set(self.ap_ids.tolist()))),
            "edges_added": result.added,
            "edges_removed": result.removed,
            "new_aps_heard": len(fresh),
            "edges_added_per_new_ap": float(result.added_per_ap[new_aps].mean())
            if len(fresh)
            else 0.0,
            "aps_losing_edges": int((result.removed_per_ap > 0).sum()),
        }

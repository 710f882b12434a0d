"""GUFU's stages (GUFU paper §4-6): the offline stage (autoencoder, GNN on the site graph) and one
batch update (new sample nodes, GNN embeddings, the update module, the records' rewrite, AP
changes, retraining). The protocol that feeds it periods lives in `run.py` and `variants.py`.

Every inner fit runs through `jaxfp.train.optimise` (a finite check on every step, losses in the
run's metrics.jsonl) with `gufu.optimizer` (by name, Adam) at `learning_rate`. A fit's random
key comes from its name and the
stage it runs in (`named_key(key, "update", n, "round", r, "update_module")`), never from the
order of the fits, so adding or skipping a fit changes no other fit's draws.

Choices where the paper's symbols were lost or it is silent, one line each (the pieces' own
modules hold theirs: `autoencoder`, `site_graph`, `update_module`, `ap_changes`):
- new samples get a random location drawn from the database's locations (§5.1: "randomly
  assigned"); `initial_location="code_knn"` (ours) starts them at a cosine WkNN estimate over the
  codes instead.
- a record's own location in what MLP1 reads (`location_input`; §4.2 puts it in the node
  features, and MLP1 learns embedding -> location on the records, so with it there MLP1 copies
  its input and echoes the batch's random locations): "none" (the location part is zero in every
  graph: locating and pairing read the codes and the graph only), "batch_like" (in an update's
  graph the records' location part is drawn as the batch's is), or "own" (the record's true
  location, the copyable reading; an ablation).
- §5.2 "iteratively predict": up to `update_rounds` passes, stopping when the batch's locations
  move less than `settle_m` (mean) from one pass to the next; after each, the new samples'
  location features become their predicted locations and the virtual edges, embeddings and
  update module are recomputed. With `location_input="none"` nothing feeds back: one pass.
- §6.2's order: the AP changes (edges added and forgotten) come first, then the autoencoder
  (eq. 10) and the GNN retrain on the database they leave, then the retrained decoder turns the
  updated features into the records' values, a new AP's included.
- `rewrite_from`: what MLP2 produces. "codes" (eq. 6 on the encoder's codes: the batch reaches the
  records only through eq. 8's old-new pairs) or "embeddings" (§6.2: the GNN's output embeddings
  of the records on the graph the batch joins; a ridge readout fitted on the database's own
  embeddings maps them to codes for the decoder).
- eq. 10 (`autoencoder_retrain`): "reconstruct" retrains the autoencoder on the rewritten records;
  "align" (ours, the paper's stated purpose: updated features can be extracted from the updated
  RSS): the encoder maps the updated RSS to the updated codes, the decoder the codes to the RSS.
- eq. 4: GraphSAGE's unsupervised loss, -log σ(z_u·z_v) over real and virtual edges minus
  `negatives` x log σ(-z_u·z_n) for random nodes n; training samples `fanout` incoming edges per
  node each step (0 = the whole graph); inference uses every edge.
- after an update the autoencoder retrains `retrain_steps` (eq. 10) and the GNN
  `retrain_gnn_steps` (the paper: both are updated; it gives no step counts).
- Algorithm 1's σ (ReLU, §7.1) at every layer, the last included (`gnn_last_relu`); False leaves
  the last layer linear before its L2 norm, as GraphSAGE's reference implementation does.
- `feature_extractor=False` (§7.3's ablation): a code is the normalised RSS itself.
- an AP node's starting features (`ap_init`, Table 8): "weighted_average" (the paper: its
  samples' features weighted by their edges), "zero", "one" or "uniform" (each entry from
  U[0, 1), one draw per AP kept for the run); edge prediction's eq. 11-12 read the weighted
  average whatever this says.
- the offline stage stops the run when the autoencoder fails its bounds (`ae_gate`,
  `autoencoder.FeatureExtractor.check`).

Over ~400 lines: one stateful object whose offline stage and updates share its graph caches and
keys; the pieces it calls (`autoencoder`, `site_graph`, `update_module`, `ap_changes`) are modules.
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

from jaxfp.common.neighbours import idw_average
from jaxfp.common.rss_scale import from_unit, to_unit
from jaxfp.config import ConfigError
from jaxfp.graphs import bipartite, sampling
from jaxfp.methods.gufu import budgets
from jaxfp.methods.gufu.ap_changes import align_columns, apply_ap_changes
from jaxfp.methods.gufu.autoencoder import FeatureExtractor
from jaxfp.methods.gufu.losses import GnnStatic, gnn_loss
from jaxfp.methods.gufu.nets import EdgeSAGE
from jaxfp.methods.gufu.site_graph import (
    LocationScale,
    node_features,
    pairs_follow_locations,
    reference_points,
    site_graph,
)
from jaxfp.methods.gufu.update_module import (
    UpdateModuleOptions,
    crossing_pairs,
    fit_update_module,
    fit_without_batch,
    link_diagnostics,
    rewritten_records,
    ridge_readout,
)
from jaxfp.train.keys import named_key
from jaxfp.train.optimise import StepLog, optimise, optimizer_spec, settled_step


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
    key: jax.Array  # every fit's key is named from this one
    gnn_params: Any = None
    gnn_width: int = 0
    features: FeatureExtractor | None = None
    stage: tuple[str | int, ...] = ("offline",)  # names the keys of the fits that run now
    updates: int = 0  # batches taken so far
    updated_codes: np.ndarray | None = None  # the last update's features the decoder turned to RSS
    _database_graph: bipartite.SiteGraph | None = None  # the records' graph of the last training
    _encoded: tuple[np.ndarray, np.ndarray] | None = None  # (rss, its codes) of that training
    _graph_budgets: tuple[int, int] = (0, 0)  # (nodes, edges) the last padded graph had
    _pairs_budget: int = 0  # the old-new pairs' last padded length (`budgets.pairs_budget`)
    gnn_seconds: float = 0.0  # the last GNN fit's wall time
    log: StepLog = dataclasses.field(default_factory=StepLog, repr=False)

    CHOICES = {
        "rewrite": ("replace", "residual", "none"),
        "initial_location": ("random", "code_knn"),
        "virtual_features": ("code_location", "code"),
        "edge_weights": ("goodness_fairness", "neighbour_readings"),
        "rewrite_from": ("codes", "embeddings"),
        "autoencoder_retrain": ("reconstruct", "align"),
        "below_floor": ("ends", "keeps"),
        "location_input": ("none", "batch_like", "own"),
        "location_scale": ("centred", "values"),
        "ae_dropout_at": ("input", "hidden"),
        "ap_init": ("weighted_average", "zero", "one", "uniform"),
        "feature_method": ("autoencoder", "pca"),
    }

    def __post_init__(self) -> None:
        self.check(self.settings)
        if self.features is None:
            self.features = FeatureExtractor.from_settings(self.settings)

    @classmethod
    def check(cls, settings: ml_collections.ConfigDict) -> None:
        """Fail on an unknown choice or an impossible count before hours of training, not after."""
        optimizer_spec({"name": settings.optimizer, "learning_rate": settings.learning_rate})
        for field, allowed in cls.CHOICES.items():
            if settings[field] not in allowed:
                raise ConfigError(
                    f"gufu.{field}: expected one of {allowed}, got {settings[field]!r}"
                )
        for field, least, meaning in (
            ("update_rounds", 1, "at least one pass an update"),
            ("retrain_gnn_steps", -1, "a step count, or -1 for retrain_steps"),
            ("settle_m", 0, "a distance in metres, 0 or more"),
        ):
            if settings[field] < least:
                raise ConfigError(f"gufu.{field}: expected {meaning}, got {settings[field]!r}")

    @property
    def g(self) -> ml_collections.ConfigDict:
        return self.settings

    @property
    def optimizer(self) -> dict[str, Any]:
        """Every inner fit's optimiser (`train/optimisers`): `gufu.optimizer` at `learning_rate`."""
        return {"name": self.g.optimizer, "learning_rate": self.g.learning_rate}

    # --- keys and fits ------------------------------------------------------------------------
    def named(self, *names: str | int) -> jax.Array:
        """The key for `names` in the current stage (offline, or update n)."""
        return named_key(self.key, *self.stage, *names)

    def _fit(
        self, name: str, loss_fn, static, params, data, steps: int, key: jax.Array | None = None
    ) -> tuple[Any, float]:
        """`steps` optimiser steps; `key` (default: the one named after the fit) draws its batches."""
        key = self.named(name) if key is None else key
        return optimise(loss_fn, static, params, data, key, steps, self.optimizer, name, self.log)

    # --- features -----------------------------------------------------------------------------
    def train_autoencoder(self, steps: int, align_to: np.ndarray | None = None) -> float:
        """Eq. (2)/(10) on the database (`autoencoder.FeatureExtractor.train`)."""
        init = self.named("autoencoder", "init")
        return self.features.train(self.rss, self.ap_ids, steps, self._fit, init, align_to)

    def encode(self, rss_dbm: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:  # ablation: the normalised RSS itself
            return to_unit(rss_dbm)
        return self.features.encode(rss_dbm)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return from_unit(self._decode_normalised(codes), self.g.detect_floor_dbm)

    def _decode_normalised(self, codes: np.ndarray) -> np.ndarray:
        if not self.g.feature_extractor:
            return np.asarray(codes)
        return self.features.decode_normalised(codes)

    def reconstruction(self, codes: np.ndarray | None = None) -> dict[str, float]:
        """The autoencoder's error on the database (`FeatureExtractor.reconstruction`); `codes`:
        the records' own, when known."""
        if not self.g.feature_extractor:
            return {}
        codes = self.encode(self.rss) if codes is None else codes
        return self.features.reconstruction(self.rss, codes)

    def _rewritten(
        self,
        updated_codes: np.ndarray,
        without_batch: np.ndarray | None,
        code_ap_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """The records' values from their updated features, over the current AP set; without the
        feature extractor a code is the RSS over `code_ap_ids` (the AP set it was made on)."""
        g = self.g

        def decode(codes: np.ndarray) -> np.ndarray:
            out = self._decode_normalised(codes)
            if not g.feature_extractor and code_ap_ids is not None:
                out = align_columns(out, code_ap_ids, self.ap_ids)  # a new AP: NaN, kept as is
            return out

        return rewritten_records(
            self.rss,
            g.rewrite,
            g.below_floor,
            g.detect_floor_dbm,
            decode,
            updated_codes,
            without_batch,
        )

    # --- graph and GNN ------------------------------------------------------------------------
    @functools.cached_property
    def scale(self) -> LocationScale:
        """The records' location centre and spread (records keep their places)."""
        return LocationScale.of(self.xy, self.g.get("location_scale", "centred"))

    @functools.cached_property
    def points(self) -> np.ndarray:
        """(S,) each record's reference point."""
        return reference_points(self.xy)

    def location_part(
        self, new_xy: np.ndarray | None = None, records_xy: np.ndarray | None = None
    ) -> np.ndarray:
        """The scaled location part of the sample nodes' features: the records' (at `records_xy`
        when given, else their own places), then the batch's at `new_xy`; zero with
        `location_input="none"`."""
        xy = self.xy if records_xy is None else records_xy
        if new_xy is not None:
            xy = np.concatenate([xy, new_xy])
        scaled = self.scale.scaled(xy)
        return np.zeros_like(scaled) if self.g.location_input == "none" else scaled

    def _graph(
        self,
        rss: np.ndarray,
        codes: np.ndarray,
        location: np.ndarray,
        num_old: int | None = None,
    ) -> bipartite.SiteGraph:
        """The site graph (`location`: the scaled location part of each sample node); with
        `num_old`, rows from `num_old` on are a batch's new samples."""
        known = self._database_graph
        records_pairs = None
        if num_old is not None and known is not None and known.num_samples == num_old:
            records_pairs = known.virtual
        features = node_features(codes, location)
        points = self.points if self.g.virtual_one_per_point else None
        return site_graph(self.g, rss, self.ap_ids, codes, features, points, num_old, records_pairs)

    def _padded(self, graph: bipartite.SiteGraph) -> bipartite.Padded:
        """The graph padded to the budgets of the last padded graph while it fits them
        (`budgets.graph_budgets`)."""
        nodes = graph.num_samples + graph.num_aps + 1
        edges = 2 * (len(graph.edge_weight) + len(graph.virtual))
        self._graph_budgets = budgets.graph_budgets(
            nodes, edges, self._graph_budgets, self.g.budget_multiple
        )
        return bipartite.to_graphs_tuple(graph, *self._graph_budgets, self._ap_features(graph))

    def _ap_features(self, graph: bipartite.SiteGraph) -> np.ndarray | None:
        """The AP nodes' starting features (`ap_init`); None: the weighted average."""
        init = self.g.get("ap_init", "weighted_average")
        shape = (graph.num_aps, graph.sample_features.shape[1])
        if init == "uniform":  # rows fill in order: an AP keeps its draw as APs are added
            seed = np.asarray(jax.random.key_data(named_key(self.key, "ap_init"))).ravel()
            return np.random.default_rng(seed).random(shape, np.float32)
        return {"zero": np.zeros, "one": np.ones}.get(init, lambda _: None)(shape)

    def _gnn(self) -> EdgeSAGE:
        g = self.g
        last_relu = bool(g.get("gnn_last_relu", True))
        return EdgeSAGE(g.embedding, g.gnn_layers, g.gnn_dropout, g.gnn_weighted, last_relu)

    def train_gnn(self, graph: bipartite.SiteGraph, steps: int) -> float:
        """Eq. (4) on the graph with its virtual edges."""
        padded = self._padded(graph)
        model = self._gnn()
        edge_mask = jnp.asarray(padded.edge_mask)
        width = graph.sample_features.shape[1]
        if self.gnn_params is None or width != self.gnn_width:  # the ablation's width follows APs
            self.gnn_params = model.init(self.named("gnn", "init"), padded.graph, edge_mask)
            self.gnn_width = width
        data = {
            "graph": jax.tree.map(jnp.asarray, padded.graph),
            "edge_mask": edge_mask,
            "real_nodes": jnp.int32(padded.node_mask.sum()),
            "table": sampling.neighbour_table(
                padded.graph.receivers, padded.edge_mask, padded.graph.nodes.shape[0]
            ),
        }
        static = GnnStatic(model, int(self.g.fanout), int(self.g.negatives))
        start = time.perf_counter()
        self.gnn_params, loss = self._fit("gnn", gnn_loss, static, self.gnn_params, data, steps)
        self.gnn_seconds = time.perf_counter() - start
        return loss

    def embed(self, graph: bipartite.SiteGraph) -> np.ndarray:
        padded = self._padded(graph)
        z = _embed(self._gnn(), self.gnn_params, padded.graph, padded.edge_mask)
        return np.asarray(z)[: graph.num_samples]

    # --- stages -------------------------------------------------------------------------------
    def offline(self) -> dict[str, float]:
        """§4: the autoencoder, then the GNN; stops (`OfflineStageFailed`) on a failed
        autoencoder when `ae_gate` is set."""
        start = time.perf_counter()
        self.stage = ("offline",)
        losses = self._train_on_database(self.g.ae_steps, self.g.gnn_steps, gate=self.g.ae_gate)
        seconds = time.perf_counter() - start
        z = self.embed(self._database_graph)
        return {
            **losses,
            **self.reconstruction(self._encoded[1]),
            **self.gnn_training_time(),
            # records whose embedding is all zeros (ReLU before the L2 norm can kill them all:
            # eq. 4 then sits at 2 ln 2 for every pair, its value at zero embeddings)
            "gnn_zero_embeddings": float((np.abs(z).max(1) < 1e-6).mean()),
            "seconds": seconds,
        }

    def gnn_training_time(self) -> dict[str, float]:
        """Table 8's training time of the last GNN fit: the step by which its loss curve settled
        (`settled_step`, within 1 % of its final 50-step mean), the fit's seconds and seconds per
        step (a process's first fit of a shape includes its compilation)."""
        curve = self.log.curves.get("gnn")
        if curve is None or not len(curve):
            return {}
        return {
            "gnn_settled_step": float(settled_step(curve)),
            "gnn_seconds": self.gnn_seconds,
            "gnn_seconds_per_step": self.gnn_seconds / len(curve),
        }

    def _train_on_database(
        self,
        ae_steps: int,
        gnn_steps: int,
        new_codes: np.ndarray | None = None,
        gate: bool = False,
    ) -> dict[str, float]:
        """Autoencoder (eq. 2/10, unless ablated), then the GNN (eq. 4) on the database's graph.
        `new_codes`: the records' updated codes, which eq. 10 aligns to if so set; `gate`: the
        autoencoder's reconstruction is checked before the GNN trains on its codes."""
        ae_loss = 0.0
        codes = None
        if self.g.feature_extractor:
            align = new_codes if self.g.autoencoder_retrain == "align" else None
            ae_loss = self.train_autoencoder(ae_steps, align)
            codes = self.encode(self.rss)
            if gate:
                bounds = (self.g.ae_max_error_db, self.g.ae_max_below_floor)
                FeatureExtractor.check(self.reconstruction(codes), *bounds)
        codes = self.encode(self.rss) if codes is None else codes
        graph = self._graph(self.rss, codes, self.location_part())
        # Both unchanged until the next update rewrites the records; it starts from them
        self._database_graph, self._encoded = graph, (self.rss, codes)
        return {"ae_loss": ae_loss, "gnn_loss": self.train_gnn(graph, gnn_steps)}

    def update(
        self, new_rss: np.ndarray, new_ap_ids: np.ndarray, initial_xy: np.ndarray | None = None
    ) -> dict[str, Any]:
        """One unlabelled batch (rows of `new_rss` over `new_ap_ids`, dBm with NaN); `initial_xy`:
        the batch's initial locations (default: `initial_location`'s).

        Returns the batch's predicted locations, its initial ones and what changed; rewrites the
        database in §6.2's order (AP changes, retraining, decoding).
        """
        clock = [time.perf_counter()]

        def lap() -> float:
            clock.append(time.perf_counter())
            return clock[-1] - clock[-2]

        self.updates += 1
        self.stage = ("update", self.updates)
        s = len(self.rss)
        scale = self.scale
        on_known = align_columns(new_rss, new_ap_ids, self.ap_ids)
        known = self._encoded is not None and self._encoded[0] is self.rss
        codes_old = self._encoded[1] if known else self.encode(self.rss)
        codes_new = self.encode(on_known)
        if initial_xy is None:
            initial_xy = self._initial_locations(codes_old, codes_new)
        new_xy = initial_xy
        records_xy = None  # the records' own places ("own"; "none" zeroes them)
        if self.g.location_input == "batch_like":  # drawn as the batch's random locations are
            rng = np.random.default_rng(self._draw_seed("record_locations"))
            records_xy = self.xy[rng.integers(0, s, s)]
        readout = None
        if self.g.rewrite_from == "embeddings":  # features = GNN embeddings; codes by a readout
            z_alone = self.embed(self._database_graph)  # codes_old's graph, built in retraining
            readout = ridge_readout(z_alone, codes_old)
        codes = np.concatenate([codes_old, codes_new])
        code_ap_ids = self.ap_ids  # the AP set the codes are made on, before §6 changes it

        def batch_graph(previous: bipartite.SiteGraph | None) -> bipartite.SiteGraph:
            location = self.location_part(new_xy, records_xy)
            if previous is not None and not pairs_follow_locations(self.g):  # same edges
                features = node_features(codes, location)
                return previous._replace(sample_features=np.asarray(features, np.float32))
            return self._graph(np.concatenate([self.rss, on_known]), codes, location, num_old=s)

        graph = None
        options = UpdateModuleOptions.from_settings(self.g)
        rounds = self.g.update_rounds if self.g.location_input != "none" else 1
        moves: list[float] = []  # per pass: the batch's mean move (m), from the initial guess on
        for round_ in range(rounds):
            graph = batch_graph(graph)  # a later round's: the new samples at their estimates
            crossing = len(crossing_pairs(graph.virtual, s))
            self._pairs_budget = budgets.pairs_budget(
                crossing, options.pairs_multiple, self._pairs_budget
            )
            options = options._replace(pairs_last=self._pairs_budget)
            z = self.embed(graph)
            if readout is None:  # MLP2 learns the codes; the batch reaches them through eq. 8
                targets, targets_alone = codes, codes_old
            else:  # MLP2 learns the embeddings the batch changed through message passing
                targets, targets_alone = z, z_alone
            round_key = self.named("round", round_, "update_module")
            args = (options, self._fit, round_key, scale.scaled(self.xy), z, targets)
            out = fit_update_module(*args, targets_alone, graph.virtual, last_round=False)
            located = scale.places(out.located)
            moves.append(_mean_distance(located, new_xy))
            new_xy, updated = located, out.updated
            if round_ > 0 and moves[-1] < self.g.settle_m:
                break
        alone = None
        if options.residual:  # the batch-free fit of the last pass, same init and draws
            alone = fit_without_batch(*args, targets_alone, graph.virtual)
        if readout is not None:
            updated, alone = readout(updated), None if alone is None else readout(alone)
        links = link_diagnostics(graph.virtual, s, len(on_known))
        # Eq. 10's target codes: what the records' features became
        new_codes = updated if alone is None else codes_old + (updated - alone)
        if self.g.rewrite == "none":
            new_codes = codes_old
        seconds = {"seconds_update_module": lap()}  # graphs, embeddings, eq. 5-9
        # §6.2: edges added and forgotten, then the retraining, then the decoding
        changes = {"aps_added": 0, "aps_removed": 0, "edges_added": 0, "edges_removed": 0}
        if self.g.edge_prediction:
            self.ap_ids, self.rss, changes = apply_ap_changes(
                self.g, self.ap_ids, self.rss, self.points, new_rss, new_ap_ids, graph
            )
        seconds["seconds_edge_prediction"] = lap()
        gnn_steps = self.g.retrain_gnn_steps
        gnn_steps = self.g.retrain_steps if gnn_steps < 0 else gnn_steps
        losses = self._train_on_database(self.g.retrain_steps, gnn_steps, new_codes)
        reconstruction = self.reconstruction(self._encoded[1])
        seconds["seconds_retraining"] = lap()
        # Over the AP set §6 left, new APs included
        rewritten = self._rewritten(updated, alone, code_ap_ids)
        links["detections_ended"] = int((np.isfinite(self.rss) & np.isnan(rewritten)).sum())
        self.rss, self.updated_codes = rewritten, updated
        seconds["seconds_rewrite"] = lap()
        return {
            "xy": new_xy,
            "xy_initial": initial_xy,
            "round_moves_m": moves,
            "rounds": len(moves),
            "mlp1_from_initial_m": _mean_distance(new_xy, initial_xy),
            **links,
            **changes,
            **losses,
            **reconstruction,
            **seconds,
            "seconds": clock[-1] - clock[0],
        }

    def _draw_seed(self, name: str) -> np.ndarray:
        """A numpy seed from the key named `name` in the current stage."""
        return np.asarray(jax.random.key_data(self.named(name))).ravel()

    def _initial_locations(self, codes_old: np.ndarray, codes_new: np.ndarray) -> np.ndarray:
        if self.g.initial_location == "random":  # the paper (§5.1)
            rng = np.random.default_rng(self._draw_seed("initial_locations"))
            return self.xy[rng.integers(0, len(self.xy), len(codes_new))]
        return idw_average(codes_new, codes_old, self.xy, 3, metric="cosine")  # code_knn: WkNN


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean horizontal distance between matching rows of two sets of places."""
    return float(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean())

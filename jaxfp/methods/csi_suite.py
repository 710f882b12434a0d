"""CSI positioning with few labels: every method of the CSI paper's Table II and Fig. 4 on one split.

Methods (config.methods): supervised (stage 1), mean_teacher, fixmatch (confidence rule),
fixmatch_distance, consistency (stages 1-3 and `rounds` - 1 further stage 2-3 rounds, reported as
consistency and consistency_iterative), ensemble (groups of members, weighted average and
consensus) and sector_heads (three heads, sector rotation, decoupled inference).

All seeds in config.seeds train at once: states carry a leading member axis, sharded over devices
by `member_step` (each device its own members, no collective); each member draws its own batches,
noise and pseudo labels. The labelled, unlabelled and test CSI are read into memory once (the
small etoile set: ~0.9 GB; the full set: ~6.6 GB). Every training stage is a `fit` run with its own
workdir, checkpoints and metrics; a killed run restarted in the same workdir resumes the stage it
was in and recomputes the pseudo labels of finished stages from their checkpoints (fixed keys).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxfp.data.csi import preprocess, splits
from jaxfp.data.csi_store import CsiDataset
from jaxfp.eval.metrics import bootstrap_ci, error_summary
from jaxfp.eval.plots import cdf_plot, percentile_bar_plot
from jaxfp.eval.report import format_table, write_json
from jaxfp.methods import csi_ssl
from jaxfp.methods.ensemble import consensus, inverse_error_weights, weighted_average
from jaxfp.nets import BACKBONES, PositionHeads
from jaxfp.train.loop import fit
from jaxfp.train.members import init_members, member_step
from jaxfp.train.state import TeacherState, TrainState
from jaxfp.train.steps import make_train_step
from jaxfp.train.whole_run import member_mesh

METHOD_NAMES = (
    "supervised",
    "mean_teacher",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "ensemble",
    "sector_heads",
)
REPORTED = (
    "supervised",
    "mean_teacher",
    "fixmatch",
    "fixmatch_distance",
    "consistency",
    "consistency_iterative",
    "ensemble",
    "ensemble_consensus",
    "sector_heads",
)
PAPER_PERCENTILES = (50, 67, 80, 90)


class Suite:
    """The split, the in-memory CSI, the stacked-seed training and prediction helpers."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str) -> None:
        self.config, self.workdir = config, workdir
        unknown = set(config.methods) - set(METHOD_NAMES)
        if unknown:
            raise ValueError(f"methods: unknown {sorted(unknown)}; expected some of {METHOD_NAMES}")
        dataset = CsiDataset(config.data.path)
        usable = (
            np.flatnonzero(dataset.num_paths > 0)
            if config.data.drop_pathless
            else np.arange(len(dataset))
        )
        parts = splits(
            dataset.xy[usable],
            config.data.labelled_fraction,
            config.data.test_fraction,
            config.data.split_seed,
        )
        self.rows = {name: usable[idx] for name, idx in parts.items()}
        train_rows = np.concatenate([self.rows["labelled"], self.rows["unlabelled"]])
        self.n_labelled = len(self.rows["labelled"])
        self.train_csi = dataset.csi(train_rows)
        self.train_xy = dataset.xy[train_rows].astype(np.float32)  # unlabelled: scoring only
        self.train_sector = dataset.sector[train_rows].astype(np.int32)
        self.test_csi = dataset.csi(self.rows["test"])
        self.test_xy = dataset.xy[self.rows["test"]].astype(np.float64)
        self.test_sector = dataset.sector[self.rows["test"]].astype(np.int32)
        azimuths = dataset.config.get("sector_azimuths_deg", (30.0, 150.0, 270.0))
        self.geometry = csi_ssl.Geometry(
            tuple(config.bs_xy), config.target_scale_m, tuple(math.radians(a) for a in azimuths)
        )
        spacing = dataset.config["subcarrier_spacing_hz"] * dataset.config["srs_comb"]
        p = config.preprocess

        def prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(csi, key, p.snr_db, p.max_ta_s, spacing, p.crop_taps)

        def strong_prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(
                csi,
                key,
                p.snr_db - p.strong_snr_drop_db,
                p.max_ta_s * p.strong_ta_factor,
                spacing,
                p.crop_taps,
            )

        self.prep, self.strong_prep = prep, strong_prep
        self.seeds = tuple(config.seeds)
        self.n = len(self.seeds)
        self.mesh = member_mesh(self.n)
        self.sharded = NamedSharding(self.mesh, P("members"))
        self.sample = prep(jnp.asarray(self.train_csi[:1]), jax.random.key(0))
        self.dataset_size = len(dataset)
        self._compiled: dict[Callable, Callable] = {}
        self._forwards: dict[int, tuple[Any, Callable]] = {}

    # --- models and states ------------------------------------------------------------------
    def model(self, backbone: str, width: int = 0, heads: int = 1, cells: int = 0) -> PositionHeads:
        kwargs: dict[str, Any] = {"outputs": None}
        if width:
            kwargs["width"] = width
        if backbone == "mobilenet_v2":
            kwargs["dropout"] = self.config.model.dropout
        return PositionHeads(BACKBONES[backbone](**kwargs), num_heads=heads, num_cells=cells)

    def optimizer(self, learning_rate: float, steps: int) -> optax.GradientTransformation:
        return optax.adamw(
            optax.cosine_decay_schedule(learning_rate, steps),
            weight_decay=self.config.train.weight_decay,
        )

    def new_states(
        self, model, tx, salt: int, teacher: bool = False, init_from: TrainState | None = None
    ) -> TrainState:
        """Stacked states, one per seed: fresh weights, or `init_from`'s with a fresh optimizer."""
        keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), salt))(
            jnp.asarray(self.seeds, jnp.uint32)
        )
        cls = TeacherState if teacher else TrainState

        def make(params, batch_stats) -> TrainState:
            extra = (
                {"teacher_params": params, "teacher_batch_stats": batch_stats} if teacher else {}
            )
            return cls.create(
                apply_fn=model.apply, params=params, tx=tx, batch_stats=batch_stats, **extra
            )

        if init_from is not None:
            return jax.jit(jax.vmap(make), out_shardings=self.sharded)(
                init_from.params, init_from.batch_stats
            )

        def init(key: jax.Array) -> TrainState:
            params_key, dropout_key = jax.random.split(key)
            variables = model.init({"params": params_key, "dropout": dropout_key}, self.sample)
            return make(variables["params"], variables["batch_stats"])

        return init_members(init, keys, self.mesh)

    # --- training -----------------------------------------------------------------------------
    def train(
        self,
        name: str,
        state: TrainState,
        step_fn: Callable,
        num_steps: int,
        targets: np.ndarray,
        weights: np.ndarray,
        pools: list[np.ndarray],
        salt: int,
        unlabelled: bool = False,
    ) -> TrainState:
        """`num_steps` of `step_fn` (un-jitted) for every member under workdir/name.

        targets (members, rows, 2) metres and weights (members, rows) index the train table;
        pools[m] lists the rows member m draws from (labelled, pseudo-labelled, bootstrapped).
        """
        c = self.config.copy_and_resolve_references()
        c.seed = int(self.config.seed * 1000 + salt)
        c.train.num_steps = int(num_steps)
        batch, ubatch = c.train.batch_size, c.train.unlabelled_batch_size
        unlabelled_rows = np.arange(self.n_labelled, len(self.train_csi))
        member = np.arange(self.n)[:, None]

        def draw(pool: np.ndarray, size: int, step: int, m: int, stream: int) -> np.ndarray:
            per_epoch = max(len(pool) // size, 1)
            epoch, i = divmod(step, per_epoch)
            order = np.random.default_rng([c.seed, stream, m, epoch]).permutation(pool)
            if len(order) < size:  # tiny test sets: wrap around
                order = np.resize(order, size)
            return order[i * size : (i + 1) * size]

        def batch_at(step: int) -> dict[str, np.ndarray]:
            idx = np.stack([draw(pools[m], batch, step, m, 0) for m in range(self.n)])
            out = {
                "csi": self.train_csi[idx],
                "xy": targets[member, idx].astype(np.float32),
                "weight": weights[member, idx].astype(np.float32),
                "sector": self.train_sector[idx],
            }
            if unlabelled:
                uidx = np.stack([draw(unlabelled_rows, ubatch, step, m, 1) for m in range(self.n)])
                out["ucsi"] = self.train_csi[uidx]
                out["usector"] = self.train_sector[uidx]
            return out

        # Stages that share a step function (the consistency fine-tunes) share its compilation.
        if step_fn not in self._compiled:
            self._compiled[step_fn] = member_step(step_fn, self.n, self.mesh)
        step = self._compiled[step_fn]
        state, _ = fit(c, os.path.join(self.workdir, name), state, step, batch_at, desc=name)
        return state

    def labelled_targets(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        rows = len(self.train_csi)
        targets = np.zeros((self.n, rows, 2), np.float32)
        targets[:, : self.n_labelled] = self.train_xy[: self.n_labelled]
        weights = np.zeros((self.n, rows), np.float32)
        weights[:, : self.n_labelled] = 1.0
        return targets, weights, [np.arange(self.n_labelled)] * self.n

    # --- prediction ---------------------------------------------------------------------------
    def predict(self, model, state: TrainState, csi: np.ndarray) -> dict[str, np.ndarray]:
        """xy (members, rows, heads, 2) in metres and features (members, rows, F); a fixed key
        draws the same TA and noise for every model, so predictions are repeatable."""
        batch = self.config.eval_batch
        run = self._forward(model)
        outs = []
        for start in range(0, len(csi), batch):
            chunk = csi[start : start + batch]
            pad = batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            x = self.prep(jnp.asarray(chunk), jax.random.fold_in(jax.random.key(1), start))
            host = jax.device_get(run(state, x))
            outs.append({k: v[:, : batch - pad] for k, v in host.items()})
        return {k: np.concatenate([o[k] for o in outs], 1).astype(np.float64) for k in outs[0]}

    def _forward(self, model) -> Callable:
        """The jitted stacked forward pass of `model`, compiled once per model."""
        key = id(model)
        if key not in self._forwards:
            origin = jnp.asarray(self.geometry.origin, jnp.float32)
            scale = self.geometry.scale

            @jax.jit
            def run(state: TrainState, x: jax.Array) -> dict[str, jax.Array]:
                def one(params, batch_stats):
                    variables = {"params": params, "batch_stats": batch_stats}
                    out = model.apply(variables, x, train=False)
                    return {"xy": out["xy"] * scale + origin, "features": out["features"]}

                return jax.vmap(one)(state.params, state.batch_stats)

            self._forwards[key] = (model, run)  # the model is kept so its id stays unique
        return self._forwards[key][1]

    def test_positions(self, model, state: TrainState) -> np.ndarray:
        """(members, test rows, 2): each test row from its own sector's head."""
        xy = self.predict(model, state, self.test_csi)["xy"]
        if xy.shape[2] == 1:
            return xy[:, :, 0]
        return xy[:, np.arange(len(self.test_xy)), self.test_sector]


def run_supervised(s: Suite, salt: int = 1) -> tuple[Any, TrainState]:
    c = s.config
    model = s.model(c.backbone, c.width)
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    loss = csi_ssl.make_supervised_loss(model, s.prep, s.geometry)
    state = s.train(
        "supervised",
        s.new_states(model, tx, salt),
        make_train_step(loss, jit=False),
        c.train.num_steps,
        *s.labelled_targets(),
        salt=salt,
    )
    return model, state


def run_mean_teacher(s: Suite, salt: int = 2) -> np.ndarray:
    c = s.config
    model = s.model(c.backbone, c.width)
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    rampup = int(c.mean_teacher.rampup_fraction * c.train.num_steps)
    loss = csi_ssl.make_mean_teacher_loss(model, s.prep, s.geometry, c.mean_teacher.weight, rampup)
    step = csi_ssl.make_mean_teacher_step(loss, c.mean_teacher.ema_decay)
    state = s.new_states(model, tx, salt, teacher=True)
    state = s.train(
        "mean_teacher", state, step, c.train.num_steps, *s.labelled_targets(), salt, True
    )
    # The teacher is the model Mean Teacher reports.
    teacher = state.replace(params=state.teacher_params, batch_stats=state.teacher_batch_stats)
    return s.test_positions(model, teacher)


def run_fixmatch(s: Suite, rule: str, salt: int) -> np.ndarray:
    c, f = s.config, s.config.fixmatch
    cells = csi_ssl.Cells.covering(s.train_xy[: s.n_labelled], f.cell_m)
    model = s.model(c.backbone, c.width, cells=cells.count if rule == "confidence" else 0)
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    loss = csi_ssl.make_fixmatch_loss(
        model,
        s.prep,
        s.strong_prep,
        s.geometry,
        rule,
        f.weight,
        f.threshold,
        f.distance_threshold_m,
        cells,
    )
    name = "fixmatch" if rule == "confidence" else "fixmatch_distance"
    state = s.train(
        name,
        s.new_states(model, tx, salt),
        make_train_step(loss, jit=False),
        c.train.num_steps,
        *s.labelled_targets(),
        salt,
        True,
    )
    return s.test_positions(model, state)


def run_consistency(
    s: Suite, model, pretrained: TrainState, salt: int = 10
) -> tuple[dict[str, np.ndarray], list[dict[str, float]]]:
    """Stages 2-3 for config.consistency.rounds rounds from the stage-1 model.

    Returns test positions after round 1 ('consistency') and after the last round
    ('consistency_iterative'), and per-round pseudo-label statistics.
    """
    c, k = s.config, s.config.consistency
    tx = s.optimizer(c.finetune.learning_rate, c.finetune.num_steps)
    loss = csi_ssl.make_supervised_loss(model, s.prep, s.geometry)
    step = make_train_step(loss, jit=False)
    n_l, rows = s.n_labelled, len(s.train_csi)
    xy_l = s.train_xy[:n_l].astype(np.float64)
    true_u = s.train_xy[n_l:].astype(np.float64)
    base_targets, base_weights, _ = s.labelled_targets()
    pseudo = np.full((s.n, rows - n_l, 2), np.nan)  # kept labels so far, per member
    current, positions, stats = pretrained, {}, []

    def finetune(name: str, labels: np.ndarray, round_salt: int) -> TrainState:
        targets, weights = base_targets.copy(), base_weights.copy()
        have = np.isfinite(labels).all(-1)
        targets[:, n_l:][have] = labels[have]
        weights[:, n_l:][have] = k.pseudo_weight
        pools = [np.concatenate([np.arange(n_l), n_l + np.flatnonzero(h)]) for h in have]
        state = s.new_states(model, tx, round_salt, init_from=current)
        return s.train(name, state, step, c.finetune.num_steps, targets, weights, pools, round_salt)

    for r in range(1, k.rounds + 1):
        out = s.predict(model, current, s.train_csi)
        xy_all, features = out["xy"][:, :, 0], out["features"]
        labels_a = np.stack(
            [
                csi_ssl.feature_knn_labels(features[m, n_l:], features[m, :n_l], xy_l, k.k)
                for m in range(s.n)
            ]
        )
        labels_b = np.stack(
            [
                csi_ssl.spatial_residual_labels(xy_all[m, n_l:], xy_all[m, :n_l], xy_l, k.k)
                for m in range(s.n)
            ]
        )
        model_a = finetune(f"consistency/round{r}_a", labels_a, salt + 3 * r)
        model_b = finetune(f"consistency/round{r}_b", labels_b, salt + 3 * r + 1)
        position_a = s.predict(model, model_a, s.train_csi[n_l:])["xy"][:, :, 0]
        position_b = s.predict(model, model_b, s.train_csi[n_l:])["xy"][:, :, 0]
        kept, agreed = csi_ssl.agreeing_labels(position_a, position_b, k.agreement_radius_m)
        pseudo[kept] = agreed[kept]
        have = np.isfinite(pseudo).all(-1)
        stats.append(
            {
                "round": r,
                "interpolation_a_error_m": float(np.linalg.norm(labels_a - true_u, axis=-1).mean()),
                "interpolation_b_error_m": float(np.linalg.norm(labels_b - true_u, axis=-1).mean()),
                "kept_this_round": float(kept.mean()),
                "pseudo_labelled": float(have.mean()),
                "kept_label_error_m": float(
                    np.linalg.norm(agreed - true_u, axis=-1)[kept].mean() if kept.any() else np.nan
                ),
            }
        )
        current = finetune(f"consistency/round{r}_stage3", pseudo, salt + 3 * r + 2)
        xy = s.test_positions(model, current)
        if r == 1:
            positions["consistency"] = xy
        positions["consistency_iterative"] = xy
    return positions, stats


def run_ensemble(s: Suite, salt: int = 100) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each group (backbone, learning rate, width) trains all seeds at once on bootstrap samples of
    the labelled rows; out-of-bag errors weight the members; seed m's ensemble = member m of
    every group."""
    c, e = s.config, s.config.ensemble
    targets, weights, _ = s.labelled_targets()
    n_l = s.n_labelled
    predictions, oob_errors = [], []
    for g, (name, group) in enumerate(sorted(e.groups.items())):
        rng = [np.random.default_rng([c.seed, salt + g, m]) for m in range(s.n)]
        pools = [r.choice(n_l, n_l, replace=True) if e.bootstrap else np.arange(n_l) for r in rng]
        model = s.model(group.backbone, group.get("width", 0))
        tx = s.optimizer(group.learning_rate, c.train.num_steps)
        loss = csi_ssl.make_supervised_loss(model, s.prep, s.geometry)
        state = s.train(
            f"ensemble/{name}",
            s.new_states(model, tx, salt + g),
            make_train_step(loss, jit=False),
            c.train.num_steps,
            targets,
            weights,
            pools,
            salt + g,
        )
        predictions.append(s.test_positions(model, state))
        labelled_xy = s.predict(model, state, s.train_csi[:n_l])["xy"][:, :, 0]
        errors = np.linalg.norm(labelled_xy - s.train_xy[:n_l], axis=-1)
        oob = []
        for m in range(s.n):
            out_of_bag = np.setdiff1d(np.arange(n_l), pools[m])
            oob.append(errors[m, out_of_bag].mean() if len(out_of_bag) else errors[m].mean())
        oob_errors.append(oob)
    members = np.stack(predictions, 1)  # (seeds, groups, test, 2)
    oob = np.asarray(oob_errors).T  # (seeds, groups)
    averaged, agreed, agreeing = [], [], []
    for m in range(s.n):
        w = inverse_error_weights(jnp.asarray(oob[m]))
        averaged.append(np.asarray(weighted_average(jnp.asarray(members[m]), w)))
        estimate, count = consensus(jnp.asarray(members[m]), e.consensus_radius_m, w)
        agreed.append(np.asarray(estimate))
        agreeing.append(float(np.asarray(count).mean()))
    info = {
        "groups": sorted(e.groups.keys()),
        "out_of_bag_error_m": oob.tolist(),
        "mean_agreeing_members": agreeing,
    }
    return {"ensemble": np.stack(averaged), "ensemble_consensus": np.stack(agreed)}, info


def run_sector_heads(s: Suite, salt: int = 200) -> np.ndarray:
    c, h = s.config, s.config.sector
    model = s.model(c.backbone, c.width, heads=len(s.geometry.azimuths_rad))
    tx = s.optimizer(c.train.learning_rate, c.train.num_steps)
    loss = csi_ssl.make_supervised_loss(
        model, s.prep, s.geometry, h.rotated_weight, h.consistency_weight
    )
    state = s.train(
        "sector_heads",
        s.new_states(model, tx, salt),
        make_train_step(loss, jit=False),
        c.train.num_steps,
        *s.labelled_targets(),
        salt,
        h.consistency_weight > 0,
    )
    return s.test_positions(model, state)


def summarise(
    positions: np.ndarray, true_xy: np.ndarray, seeds: tuple[int, ...]
) -> tuple[dict[str, Any], np.ndarray]:
    """Per-seed error summaries and their mean over seeds with a bootstrap CI."""
    errors = np.linalg.norm(positions - true_xy[None], axis=-1)
    per_seed = [error_summary(e, PAPER_PERCENTILES) for e in errors]
    row: dict[str, Any] = {}
    for key in ("mean", *(f"p{q}" for q in PAPER_PERCENTILES)):
        values = np.array([p[key] for p in per_seed])
        row[key] = float(values.mean())
        if key == "mean":
            row["mean_ci_low"], row["mean_ci_high"] = bootstrap_ci(values)
    row["per_seed_mean"] = {str(seed): p["mean"] for seed, p in zip(seeds, per_seed, strict=True)}
    return row, errors


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Run config.methods for all seeds; results.json, the table, CDF and percentile plots."""
    os.makedirs(workdir, exist_ok=True)
    s = Suite(config, workdir)
    positions: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    extra: dict[str, Any] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - start
        return out

    methods = set(config.methods)
    if methods & {"supervised", "consistency"}:
        model, pretrained = timed("supervised", lambda: run_supervised(s))
        positions["supervised"] = s.test_positions(model, pretrained)
    if "mean_teacher" in methods:
        positions["mean_teacher"] = timed("mean_teacher", lambda: run_mean_teacher(s))
    if "fixmatch" in methods:
        positions["fixmatch"] = timed("fixmatch", lambda: run_fixmatch(s, "confidence", 3))
    if "fixmatch_distance" in methods:
        positions["fixmatch_distance"] = timed(
            "fixmatch_distance", lambda: run_fixmatch(s, "distance", 4)
        )
    if "consistency" in methods:
        found, extra["pseudo_labels"] = timed(
            "consistency", lambda: run_consistency(s, model, pretrained)
        )
        positions.update(found)
    if "ensemble" in methods:
        found, extra["ensemble"] = timed("ensemble", lambda: run_ensemble(s))
        positions.update(found)
    if "sector_heads" in methods:
        positions["sector_heads"] = timed("sector_heads", lambda: run_sector_heads(s))
    rows, pooled = {}, {}
    for name in REPORTED:
        if name in positions:
            rows[name], errors = summarise(positions[name], s.test_xy, s.seeds)
            pooled[name] = errors.ravel()
    cdf_plot(pooled, os.path.join(workdir, "cdf.png"), title="CSI positioning (all seeds)")
    percentile_bar_plot(
        pooled, os.path.join(workdir, "percentiles.png"), title="error percentiles (all seeds)"
    )
    sizes = {name: int(len(r)) for name, r in s.rows.items()}
    write_json(
        os.path.join(workdir, "results.json"),
        {
            "config": config.to_dict(),
            "seeds": list(s.seeds),
            "split_sizes": sizes,
            "receivers_without_path_dropped": int(s.dataset_size - sum(sizes.values())),
            "results": rows,
            "train_seconds": seconds,
            **extra,
        },
    )
    print(
        f"{config.data.path}: labelled {sizes['labelled']}, unlabelled {sizes['unlabelled']}, "
        f"test {sizes['test']}; seeds {list(s.seeds)}; backbone {config.backbone}"
    )
    columns = ["mean", "mean_ci_low", "mean_ci_high", *(f"p{q}" for q in PAPER_PERCENTILES)]
    print(format_table(rows, columns))
    return rows

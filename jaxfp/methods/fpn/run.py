"""`fpn.synthetic` and `fpn.drift`: FPN's protocols.

- synthetic (the paper's experiment): a three-floor synthetic world with reference points on a
  3 m grid; train on walks through it with its radio map, then `moved_aps` APs are moved, the map
  re-surveyed, and each network is scored before ("untrained map") and after ("fine-tuned") a
  brief fine-tune on walks of the changed world; the old map is scored too.
- drift (UJI long-term library set): map and walks of month 1's training scans; then month by
  month the map is rebuilt from that month's training scans (a point not re-measured keeps its
  row), scored untrained, briefly fine-tuned (starting from last month's weights), scored again;
  every month's test scans, assembled into walks, are the test set.

Variants (`config.variants`, run `config.run_variants`): FPN, FPN comparing with the raw map (no
encoder), and the plain 2-layer LSTM on raw signals; baselines nearest RP, Kalman and WkNN. Every
variant trains all seeds at once (stacked, vmapped) through the training core: checkpoints,
resume, metrics.jsonl, finite guard, and early stopping on the cross-entropy of validation walks
drawn from 20% of each point's scans (the best validation parameters are kept). Metrics over
every step of every test walk: mean 2-D error (mean over seeds, with a CI), 95th percentile,
floor hit rate; fine-tuning wall time in seconds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.common.atomic_files import write_json
from jaxfp.config import ConfigError, variant_settings
from jaxfp.data.places import ReferencePoints, floor_code, floor_code_of
from jaxfp.data.registry import load_parts
from jaxfp.data.synthetic import WorldParams, make_world, relocate_aps, survey
from jaxfp.data.types import RSS_MAX_DBM, RSS_MIN_DBM, FingerprintSet
from jaxfp.eval.plots import per_point_error_plot
from jaxfp.eval.results import over_seeds, write_results
from jaxfp.methods import program
from jaxfp.methods.baselines.knn import build_index
from jaxfp.methods.baselines.knn import predict as knn_predict
from jaxfp.methods.fpn.baselines import kalman_track, nearest_point, walk_filter
from jaxfp.methods.fpn.nets import Positioner
from jaxfp.methods.fpn.radio_map import radio_map, received_dbm, to_unit
from jaxfp.methods.fpn.training import (
    LossSettings,
    make_loss,
    predict_points,
    stacked_cross_entropy,
)
from jaxfp.methods.fpn.walks import ScanPool, neighbour_lists, random_walks
from jaxfp.train.early_stopping import best_state, patience_exhausted, record, track, tracking_step
from jaxfp.train.keys import named_int, named_seed
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages, with_fresh_optimizer
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

METRIC_COLUMNS = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "p95_m", "floor_hit", "seconds"]


class Scans(NamedTuple):
    """A period's scans as FPN sees them."""

    signals: np.ndarray  # (n, L) unit scale
    xy: np.ndarray  # (n, 2)
    floor: np.ndarray  # (n,) floor code
    point: np.ndarray  # (n,) reference point, -1 elsewhere


class Walks(NamedTuple):
    """Walks through a set of scans: `rows` (W, T) index the scans."""

    scans: Scans
    rows: np.ndarray

    def batch(self, radio_map: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "signals": self.scans.signals[self.rows],
            "point": self.scans.point[self.rows],
            "map": radio_map,
        }


class Variant(NamedTuple):
    name: str
    net: Positioner
    settings: ml_collections.ConfigDict


class Study:
    """The reference points, the radio-map rule, and the stacked-seed stages of one run."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        points: ReferencePoints,
        shared: dict[str, Any],
    ) -> None:
        self.config, self.points = config, points
        self.seeds = tuple(config.seeds)
        self.stages = SeedStages(workdir, self.seeds, shared)
        self.neighbours = neighbour_lists(points.xy, points.floor, float(config.walk.radius_m))
        self._steps: dict[tuple, Any] = {}

    # --- data ----------------------------------------------------------------------------------
    def map_of(self, fs: FingerprintSet, previous: np.ndarray | None = None) -> np.ndarray:
        """The unit-scale radio map of `fs`; points without scans keep `previous`'s rows."""
        r = self.config.radio_map
        dbm, counts = radio_map(fs, self.points, r.threshold_dbm, r.missing_dbm)
        unit = to_unit(dbm, r.missing_dbm)
        if previous is not None:
            unit[counts == 0] = previous[counts == 0]
        elif (counts == 0).any():
            raise ConfigError(
                f"{fs.source}: {int((counts == 0).sum())} reference points lack scans"
            )
        return unit

    def scans(self, fs: FingerprintSet) -> Scans:
        """`fs` on the unit scale, at its reference points."""
        r = self.config.radio_map
        dbm = received_dbm(fs.rss, fs.detected, r.threshold_dbm, r.missing_dbm)
        return Scans(to_unit(dbm, r.missing_dbm), fs.xy, floor_code(fs), self.points.locate(fs))

    def walks(self, scans: Scans, count: int, seed: int, radius_m: float) -> Walks:
        """`count` fixed walks over the places of `scans` (any places: test scans need not be at
        reference points)."""
        keys = np.c_[np.round(scans.xy, 3), scans.floor]
        places, place = np.unique(keys, axis=0, return_inverse=True)
        neighbours = neighbour_lists(places[:, :2], places[:, 2], radius_m)
        rng = np.random.default_rng(seed)
        path = random_walks(neighbours, count, int(self.config.walk.length), rng)
        return Walks(scans, ScanPool(place.reshape(-1), len(places)).draw(path, rng))

    def split(self, scans: Scans, fraction: float, seed: int) -> tuple[ScanPool, ScanPool]:
        """Each point's scans split (1 − f) / f into training and validation pools."""
        rng = np.random.default_rng(seed)
        val = np.zeros(len(scans.point), bool)
        for p in range(len(self.points)):
            rows = rng.permutation(np.flatnonzero(scans.point == p))
            val[rows[: int(round(fraction * len(rows)))]] = True
        n = len(self.points)
        return ScanPool(np.where(val, -1, scans.point), n), ScanPool(
            np.where(val, scans.point, -1), n
        )

    # --- networks ------------------------------------------------------------------------------
    def variant(self, name: str) -> Variant:
        m = variant_settings(self.config, "model", name)
        net = Positioner(
            len(self.points),
            features=int(m.features),
            layers=int(m.layers),
            encoder_hidden=tuple(m.encoder_hidden),
            use_map=bool(m.use_map),
            use_encoder=bool(m.use_encoder),
            combine=str(m.combine),
        )
        return Variant(name, net, m)

    def step(self, variant: Variant, removal_rate: float):
        key = (variant.name, removal_rate)
        if key not in self._steps:  # one function object per setting: compiled once
            loss = make_loss(LossSettings(variant.net, removal_rate))
            self._steps[key] = tracking_step(make_train_step(loss, jit=False))
        return self._steps[key]

    def train(
        self,
        stage: str,
        variant: Variant,
        start: Any,
        radio_map: np.ndarray,
        scans: Scans,
        train_cfg: ml_collections.ConfigDict,
    ) -> Any:
        """Stacked states after training on walks of `scans` with `radio_map`, early stopped on
        validation walks (the best validation parameters); `start` is None (fresh) or states."""
        walk = self.config.walk
        pool, val_pool = self.split(
            scans,
            float(train_cfg.validation_fraction),
            named_seed(self.config.seed, stage, "split"),
        )
        rng = np.random.default_rng(named_seed(self.config.seed, stage, "validation"))
        val_walks = random_walks(self.neighbours, int(walk.validation_walks), int(walk.length), rng)
        val_batch = Walks(scans, val_pool.draw(val_walks, rng)).batch(radio_map)
        val_batch = jax.tree.map(jnp.asarray, val_batch)
        size, length = int(train_cfg.batch_size), int(walk.length)

        def batch_of(rng: np.random.Generator, _: int) -> dict[str, np.ndarray]:
            rows = pool.draw(random_walks(self.neighbours, size, length, rng), rng)
            return Walks(scans, rows).batch(radio_map)

        def eval_fn(tracked: Any) -> dict[str, jax.Array]:
            ce = stacked_cross_entropy(
                variant.net,
                tracked.state.params,
                val_batch["signals"],
                val_batch["map"],
                val_batch["point"],
            )
            return {"val_ce": ce}

        tx = optax.adam(float(train_cfg.learning_rate))
        if start is None:
            sample = jnp.asarray(scans.signals[:1, None])

            def init(key: jax.Array) -> TrainState:
                params = variant.net.init(key, sample, jnp.asarray(radio_map))["params"]
                return TrainState.create(apply_fn=variant.net.apply, params=params, tx=tx)

            states = self.stages.init(stage, init)
        else:
            states = with_fresh_optimizer(start, tx)
        options = LoopOptions.from_config(train_cfg, seed=named_int(self.config.seed, stage))
        shaping = {"model": variant.settings.to_dict(), "train": train_cfg.to_dict()}
        shaping["walk"] = walk.to_dict()
        tracked = self.stages.stage(
            stage,
            track(states, len(self.seeds)),
            self.step(variant, float(train_cfg.ap_removal_rate)),
            batch_of,
            options,
            shaping,
            eval_fn,
            after_eval=record("val_ce"),
            stop_when=patience_exhausted(int(train_cfg.patience)),
        )
        return best_state(tracked)

    # --- scores --------------------------------------------------------------------------------
    def network_scores(
        self, states: Any, variant: Variant, walks: Walks, radio_map: np.ndarray
    ) -> dict[str, np.ndarray]:
        signals = walks.scans.signals[walks.rows]
        chunk = int(self.config.eval_batch)
        found = predict_points(variant.net, states.params, signals, radio_map, chunk)
        return self.point_scores(found, walks)

    def point_scores(self, found: np.ndarray, walks: Walks) -> dict[str, np.ndarray]:
        """Scores of estimated points (seeds, W, T)."""
        return self.position_scores(self.points.xy[found], self.points.floor[found], walks)

    def position_scores(self, xy: np.ndarray, floor: np.ndarray, walks: Walks) -> dict[str, Any]:
        """Per-seed scores of positions (seeds, W, T, 2) and floors (seeds, W, T)."""
        true_xy, true_floor = walks.scans.xy[walks.rows], walks.scans.floor[walks.rows]
        errors = np.linalg.norm(xy - true_xy[None], axis=-1)  # (seeds, W, T)
        return {
            "mean_m": errors.mean((1, 2)),
            "p95_m": np.percentile(errors.reshape(len(errors), -1), 95, axis=1),
            "floor_hit": (floor == true_floor[None]).mean((1, 2)),
            "errors": errors,
        }

    def baseline_scores(
        self, walks: Walks, radio_map: np.ndarray, database: FingerprintSet, test: FingerprintSet
    ) -> dict[str, dict[str, Any]]:
        """Nearest RP, Kalman and the walk filter with `radio_map`, WkNN with `database` (the map's
        survey scans)."""
        b = self.config.baselines
        signals = walks.scans.signals[walks.rows]
        nearest = nearest_point(signals, radio_map)
        kalman = kalman_track(
            self.points.xy[nearest], b.kalman_process_std_m, b.kalman_measurement_std_m
        )
        std = float(b.walk_filter_signal_std_db) / 100.0  # the unit scale: 100 dB per unit
        filtered = walk_filter(signals, radio_map, self.neighbours, std)
        index = build_index(database, b.knn_representation)
        found = knn_predict(index, test.aligned_to(database), int(b.knn_k))
        floors = floor_code_of(found["floor"], None if test.building is None else found["building"])
        return {
            "nearest RP": self.point_scores(nearest[None], walks),
            "Kalman": self.position_scores(kalman[None], self.points.floor[nearest][None], walks),
            "walk filter": self.point_scores(filtered[None], walks),
            "WkNN": self.position_scores(
                found["xy"][walks.rows][None], floors[walks.rows][None], walks
            ),
        }


def with_noise(fs: FingerprintSet, noise_db: float, seed: int) -> FingerprintSet:
    """`fs` with Gaussian noise of `noise_db` added to its detected readings (walk scans)."""
    if noise_db <= 0:
        return fs
    noise = noise_db * np.random.default_rng(seed).standard_normal(fs.rss.shape)
    rss = np.clip(fs.rss + noise, RSS_MIN_DBM, RSS_MAX_DBM).astype(np.float32)  # NaN stays NaN
    return dataclasses.replace(fs, rss=rss)


def _row(scores: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    row = over_seeds(scores["mean_m"], "mean_m")
    row["p95_m"] = float(np.mean(scores["p95_m"]))
    row["floor_hit"] = float(np.mean(scores["floor_hit"]))
    row["seconds"] = seconds
    return row


def _per_point(scores: dict[str, Any], walks: Walks, n: int) -> np.ndarray:
    """Mean error per place of the walks' steps (over seeds), NaN where no step went."""
    place = walks.scans.point[walks.rows].ravel()
    errors = scores["errors"].mean(0).ravel()
    inside = place >= 0
    sums = np.bincount(place[inside], errors[inside], minlength=n)
    counts = np.bincount(place[inside], minlength=n)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _check_variants(config: ml_collections.ConfigDict) -> None:
    unknown = set(config.run_variants) - set(config.variants.keys())
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of "
            f"{list(config.variants.keys())}"
        )


class Evaluation:
    """Rows of the results table and per-point errors for the figures."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.per_point: dict[str, np.ndarray] = {}

    def add(self, name: str, scores: dict[str, Any], seconds: float | None = None) -> None:
        self.rows[name] = _row(scores, seconds)
        print(f"[fpn] {name}: {self.rows[name]['mean_m']:.2f} m", flush=True)


def _fine_tune(
    study: Study,
    stage: str,
    variant: Variant,
    states: Any,
    radio_map: np.ndarray,
    scans: Scans,
) -> tuple[Any, float | None]:
    """Brief fine-tuning (config.adapt) from `states`, which stay valid; (states, seconds). The
    wall time is kept beside the stage, so a rerun that restores the finished stage reports the
    time the fine-tune took (a resumed one: the time of the part this run did)."""
    folder = os.path.join(study.stages.workdir, stage)
    log, record = os.path.join(folder, "metrics.jsonl"), os.path.join(folder, "seconds.json")

    def logged() -> int:
        return os.path.getsize(log) if os.path.exists(log) else 0

    before, clock = logged(), time.perf_counter()
    tuned = study.train(stage, variant, states, radio_map, scans, study.config.adapt)
    jax.block_until_ready(tuned.params)
    if logged() != before:  # it trained now
        write_json(record, {"seconds": time.perf_counter() - clock})
    seconds = None
    if os.path.exists(record):
        with open(record) as f:
            seconds = float(json.load(f)["seconds"])
    return tuned, seconds


# --- protocol: the paper's experiment on a synthetic three-floor world --------------------------
def run_synthetic(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    _check_variants(config)
    s, walk = config.synthetic, config.walk
    params = WorldParams.from_mapping(s)
    before = make_world(params, s.seed)
    after = relocate_aps(before, s.moved_aps, s.seed)
    sets, noise = {}, float(walk.noise_db)
    for name, world, offset in (("before", before, 0), ("after", after, 10)):
        seed = s.seed + offset
        sets[name] = {
            "map": survey(world, s.map_scans_per_rp, seed + 1),
            "train": with_noise(survey(world, s.train_scans_per_rp, seed + 2), noise, seed + 4),
            "test": with_noise(survey(world, s.test_scans_per_rp, seed + 3), noise, seed + 5),
        }
    points = ReferencePoints.of(sets["before"]["map"])
    shared = {"synthetic": s.to_dict(), "radio_map": config.radio_map.to_dict()}
    shared["seeds"] = list(config.seeds)
    study = Study(config, workdir, points, shared)
    maps = {k: study.map_of(v["map"]) for k, v in sets.items()}
    train = {k: study.scans(v["train"]) for k, v in sets.items()}
    tests = {k: study.scans(v["test"]) for k, v in sets.items()}
    walks = {
        k: study.walks(v, int(walk.test_walks), s.seed + 40, float(walk.radius_m))
        for k, v in tests.items()
    }
    out = Evaluation()
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[fpn] {name}: training {len(study.seeds)} seeds", flush=True)
        states = study.train(
            f"train/{name}", variant, None, maps["before"], train["before"], config.train
        )
        trained = study.network_scores(states, variant, walks["before"], maps["before"])
        out.add(f"original APs: {name}", trained)
        untrained = study.network_scores(states, variant, walks["after"], maps["after"])
        if variant.net.use_map:
            stale = study.network_scores(states, variant, walks["after"], maps["before"])
            out.add(f"moved APs: {name}, old map", stale)
        out.add(f"moved APs: {name}, new map untrained", untrained)
        tuned, seconds = _fine_tune(
            study, f"adapt/{name}", variant, states, maps["after"], train["after"]
        )
        adapted = study.network_scores(tuned, variant, walks["after"], maps["after"])
        out.add(f"moved APs: {name}, new map fine-tuned", adapted, seconds)
        n = len(points)
        out.per_point[name] = {
            "trained map": _per_point(trained, walks["before"], n),
            "untrained map": _per_point(untrained, walks["after"], n),
            "fine-tuned": _per_point(adapted, walks["after"], n),
        }
    for key, label in (("before", "original APs"), ("after", "moved APs")):
        found = study.baseline_scores(walks[key], maps[key], sets[key]["map"], sets[key]["test"])
        for method, scores in found.items():
            out.add(f"{label}: {method}", scores)
    plots = _plots(workdir, out.per_point, points)
    title = (
        f"synthetic world, {s.n_floors} floors, {len(points)} reference points "
        f"({s.rp_spacing_m} m grid), {s.n_aps} APs, {s.moved_aps} moved; walks of "
        f"{walk.length} steps; seeds {list(study.seeds)}"
    )
    write_results(
        workdir,
        title,
        config,
        out.rows,
        METRIC_COLUMNS,
        per_point_error_m={
            k: {m: v.tolist() for m, v in d.items()} for k, d in out.per_point.items()
        },
        plots=plots,
    )
    return {"rows": out.rows, "per_point": out.per_point}


def _plots(workdir: str, per_point: dict[str, dict[str, np.ndarray]], points) -> list[str]:
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    return [
        per_point_error_plot(
            curves,
            os.path.join(workdir, "plots", f"per_point_error_{name}.png"),
            title=f"{name}: mean error per reference point (Figs. 5-6)",
        )
        for name, curves in per_point.items()
    ]


# --- protocol: month by month on the UJI long-term library set ----------------------------------
def run_drift(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    _check_variants(config)
    d, walk = config.data, config.walk

    def load(month: int, kind: str, reference: FingerprintSet | None = None) -> FingerprintSet:
        fs = load_parts(d.path, [d.parts.format(month=month, kind=kind)], d.format)
        return fs if reference is None else fs.aligned_to(reference)

    first = load(d.first_month, "trn")
    points = ReferencePoints.of(first)
    data = {k: v for k, v in d.to_dict().items() if k != "months"}
    shared = {"data": data, "radio_map": config.radio_map.to_dict(), "seeds": list(config.seeds)}
    study = Study(config, workdir, points, shared)
    months = [d.first_month, *d.months]
    maps, databases, walks, previous = {}, {}, {}, None
    for m in months:
        databases[m] = first if m == d.first_month else load(m, "trn", first)
        maps[m] = previous = study.map_of(databases[m], previous)
        test = load(m, "tst", first)
        walks[m] = (
            study.walks(study.scans(test), int(walk.test_walks), m, float(walk.radius_m)),
            test,
        )
    out = Evaluation()
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[fpn] {name}: training {len(study.seeds)} seeds on {first.n} scans", flush=True)
        month1 = study.train(
            f"train/{name}", variant, None, maps[d.first_month], study.scans(first), config.train
        )
        states = month1
        out.add(
            f"month {d.first_month:02d} {name}",
            study.network_scores(month1, variant, walks[d.first_month][0], maps[d.first_month]),
        )
        for m in d.months:
            w = walks[m][0]
            if variant.net.use_map:
                out.add(
                    f"month {m:02d} {name}, month-{d.first_month} map and weights",
                    study.network_scores(month1, variant, w, maps[d.first_month]),
                )
            out.add(
                f"month {m:02d} {name}, new map untrained",
                study.network_scores(states, variant, w, maps[m]),
            )
            states, seconds = _fine_tune(
                study,
                f"adapt/{name}/month{m:02d}",
                variant,
                states,
                maps[m],
                study.scans(databases[m]),
            )
            out.add(
                f"month {m:02d} {name}, fine-tuned",
                study.network_scores(states, variant, w, maps[m]),
                seconds,
            )
    for m in months:
        found = study.baseline_scores(walks[m][0], maps[m], databases[m], walks[m][1])
        for method, scores in found.items():
            out.add(f"month {m:02d} {method}", scores)
    title = (
        f"{first.source}: {len(points)} reference points of month {d.first_month}, "
        f"{first.n_aps} APs; months {list(d.months)}; test walks of {walk.length} steps over each "
        f"month's test scans; seeds {list(study.seeds)}"
    )
    rows = dict(sorted(out.rows.items()))
    write_results(workdir, title, config, rows, METRIC_COLUMNS)
    return {"rows": rows}


PROGRAMS = {"synthetic": run_synthetic, "drift": run_drift}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

"""FPN's stages on the trainer: every seed stacked, each seed trained and scored on its own data.

- `Study.train`: one stage (training or a fine-tune) of every seed at once through `SeedStages`
  (checkpoints, resume, metrics.jsonl, finite guard). Seed m draws its batches from its own scans
  and map, and early stops on its own validation walks — drawn from `validation_fraction` of each
  point's training scans, split by (seed, the data's name), so every variant of a seed sees the
  same split — keeping its best validation parameters.
- Scores over every step of every test walk, per seed: mean 2-D error, 95th percentile, floor hit
  rate, and the ISO/IEC 18305 and IPIN fields (`report.standard_scores`, the constants from
  `config.eval`). The baselines (`config.baselines.run`) are scored per seed on the same walks; the Kalman
  fingerprint's two stds are chosen per seed from `config.baselines.kalman_grid` on walks that
  reported numbers never see (`Study.choose_kalman`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.config import ConfigError, check_seeds, variant_settings
from jaxfp.data.places import ReferencePoints, floor_code_of
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants
from jaxfp.methods.baselines.knn import build_index
from jaxfp.methods.baselines.knn import predict as knn_predict
from jaxfp.methods.fpn.baselines import kalman_cv_track, nearest_point, walk_filter
from jaxfp.methods.fpn.data import (
    RadioMapRule,
    Scans,
    Walks,
    scans_of,
    split_pools,
    unit_map,
    walks_over,
)
from jaxfp.methods.fpn.losses import LossSettings, make_loss
from jaxfp.methods.fpn.nets import Positioner
from jaxfp.methods.fpn.predict import (
    expected_position,
    predict_points,
    predict_top,
    stacked_cross_entropy,
)
from jaxfp.methods.fpn.report import standard_scores
from jaxfp.methods.fpn.walks import Walker, neighbour_lists
from jaxfp.train.early_stopping import best_state, patience_exhausted, record, track, tracking_step
from jaxfp.train.keys import named_int, named_seed
from jaxfp.train.members import stack_members
from jaxfp.train.optimisers import optimizer_from_config
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages, with_fresh_optimizer
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

# Table 1's basic fingerprint and Kalman fingerprint; WkNN and the exact walk filter are ours.
BASELINES = ("nearest RP", "Kalman", "walk filter", "WkNN")


class Variant(NamedTuple):
    name: str
    net: Positioner
    settings: ml_collections.ConfigDict


def check_config(config: ml_collections.ConfigDict) -> None:
    """Unknown variants or baselines to run are config errors, raised before any work."""
    unknown = set(config.run_variants) - set(config.variants.keys())
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of "
            f"{list(config.variants.keys())}"
        )
    unknown = set(config.baselines.run) - set(BASELINES)
    if unknown:
        raise ConfigError(
            f"config.baselines.run: unknown {sorted(unknown)}; expected some of {list(BASELINES)}"
        )
    check_seeds(tuple(config.seeds))


class Study:
    """The reference points, the radio-map rule, and the stacked-seed stages of one run;
    `buildings`: the floor codes fold a building in (the set has building labels)."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        points: ReferencePoints,
        shared: dict[str, Any],
        buildings: bool = False,
    ) -> None:
        self.config, self.points, self.buildings = config, points, buildings
        self.constants = StandardConstants.from_config(config.get("eval"))
        self.seeds = tuple(config.seeds)
        self.rule = RadioMapRule.from_config(config.radio_map)
        self.stages = SeedStages(workdir, self.seeds, shared)
        self.walker = Walker(config.walk, points.xy, points.floor)
        self.neighbours = neighbour_lists(points.xy, points.floor, float(config.walk.radius_m))
        self._steps: dict[tuple, Any] = {}

    # --- data ----------------------------------------------------------------------------------
    def map_of(self, fs: FingerprintSet, previous: np.ndarray | None = None) -> np.ndarray:
        """The unit-scale radio map of `fs`; points without scans keep `previous`'s rows."""
        return unit_map(fs, self.points, self.rule, previous)

    def scans(self, fs: FingerprintSet) -> Scans:
        return scans_of(fs, self.points, self.rule)

    def test_walks(self, scans: Sequence[Scans], draw: str) -> list[Walks]:
        """Each seed's test walks over its own scans, drawn by (seed, `draw`, "test walks")."""
        walk = self.config.walk
        return [
            walks_over(
                s,
                int(walk.test_walks),
                int(walk.length),
                walk,
                named_seed(seed, draw, "test walks"),
            )
            for seed, s in zip(self.seeds, scans, strict=True)
        ]

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
            network=str(m.network),
            join=str(m.join),
            combine=str(m.combine),
            lstm=str(m.lstm),
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
        draw: str,
        variant: Variant,
        start: Any,
        maps: Sequence[np.ndarray],
        scans: Sequence[Scans],
        train_cfg: ml_collections.ConfigDict,
    ) -> Any:
        """Stacked states after training seed m on walks of `scans[m]` with `maps[m]`, early
        stopped on its validation walks (the best validation parameters); `draw` names the data
        (its split and validation walks); `start` is None (fresh) or stacked states."""
        walk = self.config.walk
        size, length = int(train_cfg.batch_size), int(walk.length)
        pools, val_batches = [], []
        for seed, s, radio_map in zip(self.seeds, scans, maps, strict=True):
            fraction = float(train_cfg.validation_fraction)
            pool, val_pool = split_pools(
                s, len(self.points), fraction, named_seed(seed, draw, "split")
            )
            rng = np.random.default_rng(named_seed(seed, draw, "validation walks"))
            path = self.walker.draw(int(walk.validation_walks), length, rng)
            val_batches.append(Walks(s, val_pool.draw(path, rng)).batch(radio_map))
            pools.append(pool)
        val = stack_members(val_batches)

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            rows = pools[m].draw(self.walker.draw(size, length, rng), rng)
            return Walks(scans[m], rows).batch(maps[m])

        def eval_fn(tracked: Any) -> dict[str, jax.Array]:
            params = tracked.state.params
            ce = stacked_cross_entropy(
                variant.net, params, val["signals"], val["map"], val["point"]
            )
            return {"val_ce": ce}

        tx = optimizer_from_config(train_cfg.optimizer)
        if start is None:
            sample, sample_map = jnp.asarray(scans[0].signals[:1, None]), jnp.asarray(maps[0])

            def init(key: jax.Array) -> TrainState:
                params = variant.net.init(key, sample, sample_map)["params"]
                return TrainState.create(apply_fn=variant.net.apply, params=params, tx=tx)

            states = self.stages.init(stage, init)
        else:
            states = with_fresh_optimizer(start, tx)
        options = LoopOptions.from_config(train_cfg, seed=named_int(self.config.seed, stage))
        shaping = {"model": variant.settings.to_dict(), "train": train_cfg.to_dict()}
        shaping.update(walk=walk.to_dict(), draw=draw)
        tracked = self.stages.stage(
            stage,
            track(states, len(self.seeds)),
            self.step(variant, float(variant.settings.ap_removal_rate)),
            batch_of,
            options,
            shaping,
            eval_fn,
            after_eval=record("val_ce"),
            stop_when=patience_exhausted(int(train_cfg.patience)),
        )
        return best_state(tracked)

    def fine_tune(
        self,
        stage: str,
        draw: str,
        variant: Variant,
        states: Any,
        maps: Sequence[np.ndarray],
        scans: Sequence[Scans],
    ) -> tuple[Any, float | None]:
        """Brief fine-tuning (config.adapt) from `states`, which stay valid; (states, seconds).
        The wall time is kept beside the stage, so a rerun that restores the finished stage
        reports the time the fine-tune took (a resumed one: the time of the part this run did)."""
        folder = os.path.join(self.stages.workdir, stage)
        log, record_file = (
            os.path.join(folder, "metrics.jsonl"),
            os.path.join(folder, "seconds.json"),
        )

        def logged() -> int:
            return os.path.getsize(log) if os.path.exists(log) else 0

        before, clock = logged(), time.perf_counter()
        tuned = self.train(stage, draw, variant, states, maps, scans, self.config.adapt)
        jax.block_until_ready(tuned.params)
        if logged() != before:  # it trained now
            write_json(record_file, {"seconds": time.perf_counter() - clock})
        seconds = None
        if os.path.exists(record_file):
            with open(record_file) as f:
                seconds = float(json.load(f)["seconds"])
        return tuned, seconds

    # --- scores --------------------------------------------------------------------------------
    def network_scores(
        self, states: Any, variant: Variant, walks: Sequence[Walks], maps: Sequence[np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Seed m's network on seed m's walks with `maps[m]`."""
        signals = np.stack([w.scans.signals[w.rows] for w in walks])
        chunk = int(self.config.eval_batch)
        found = predict_points(variant.net, states.params, signals, np.stack(maps), chunk)
        return self.point_scores(found, walks)

    def readout_scores(
        self,
        states: Any,
        variant: Variant,
        walks: Sequence[Walks],
        maps: Sequence[np.ndarray],
        ks: Sequence[int],
    ) -> dict[int, dict[str, Any]]:
        """{k: scores} of seed m's network on its walks read out as the expected position over
        its k most probable points (`predict.expected_position`; k = 1 is `network_scores`)."""
        signals = np.stack([w.scans.signals[w.rows] for w in walks])
        chunk = int(self.config.eval_batch)
        top = predict_top(variant.net, states.params, signals, np.stack(maps), chunk, max(ks))
        out = {}
        for k in ks:
            xy, floor = expected_position(top, self.points.xy, self.points.floor, k)
            out[k] = self.position_scores(xy, floor, walks)
        return out

    def point_scores(self, found: np.ndarray, walks: Sequence[Walks]) -> dict[str, np.ndarray]:
        """Scores of estimated points (S, W, T)."""
        return self.position_scores(self.points.xy[found], self.points.floor[found], walks)

    def position_scores(
        self, xy: np.ndarray, floor: np.ndarray, walks: Sequence[Walks]
    ) -> dict[str, Any]:
        """Per-seed scores of positions (S, W, T, 2) and floors (S, W, T) on seed m's walks; the
        estimates and the truth are kept for pooling months (`standard_of`)."""
        true_xy = np.stack([w.scans.xy[w.rows] for w in walks])
        true_floor = np.stack([w.scans.floor[w.rows] for w in walks])
        errors = np.linalg.norm(xy - true_xy, axis=-1)  # (S, W, T)
        estimates = {"xy": xy, "true_xy": true_xy, "floor": floor, "true_floor": true_floor}
        return {
            "mean_m": errors.mean((1, 2)),
            "p95_m": np.percentile(errors.reshape(len(errors), -1), 95, axis=1),
            "floor_hit": (floor == true_floor).mean((1, 2)),
            "errors": errors,
            "place": np.stack([w.scans.point[w.rows] for w in walks]),
            "estimates": estimates,
            "standard": self.standard_of(estimates),
        }

    def standard_of(self, estimates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each seed's ISO/IEC 18305 and IPIN fields of `position_scores`' estimates."""
        return standard_scores(
            estimates["xy"],
            estimates["true_xy"],
            estimates["floor"],
            estimates["true_floor"],
            self.constants,
            self.buildings,
        )

    def kalman_errors(
        self, walks: Sequence[Walks], maps: Sequence[np.ndarray]
    ) -> dict[tuple[float, float], np.ndarray]:
        """{(accel_std, measurement_std_m): (S,) mean error} of the Kalman fingerprint on each
        seed's walks with its map, for every pair of `config.baselines.kalman_grid`."""
        b, xy = self.config.baselines, self.points.xy
        grid = [
            (float(a), float(m))
            for a in b.kalman_grid.accel_std
            for m in b.kalman_grid.measurement_std_m
        ]
        out = {g: np.empty(len(walks)) for g in grid}
        for i, (w, radio_map) in enumerate(zip(walks, maps, strict=True)):
            measured = xy[nearest_point(w.scans.signals[w.rows], radio_map)]
            true_xy = w.scans.xy[w.rows]
            for g in grid:
                track = kalman_cv_track(measured, *g, float(b.kalman_initial_speed_std))
                out[g][i] = np.linalg.norm(track - true_xy, axis=-1).mean()
        return out

    def choose_kalman(
        self, walks: Sequence[Walks], maps: Sequence[np.ndarray]
    ) -> list[tuple[float, float]]:
        """Per seed, the grid's (accel_std, measurement_std_m) with the lowest mean error on
        `walks` (validation walks: never the reported ones)."""
        errors = self.kalman_errors(walks, maps)
        grid = list(errors)
        table = np.stack([errors[g] for g in grid])  # (G, S)
        return [grid[i] for i in table.argmin(0)]

    def validation_walks(self, scans: Sequence[Scans], draw: str) -> list[Walks]:
        """Each seed's walks over the training scans `scans[m]` (not test scans), for choices."""
        walk = self.config.walk
        return [
            walks_over(
                s,
                int(walk.validation_walks),
                int(walk.length),
                walk,
                named_seed(seed, draw, "baseline validation walks"),
            )
            for seed, s in zip(self.seeds, scans, strict=True)
        ]

    def baseline_scores(
        self,
        walks: Sequence[Walks],
        maps: Sequence[np.ndarray],
        databases: Sequence[FingerprintSet],
        tests: Sequence[FingerprintSet],
        kalman: Sequence[tuple[float, float]],
    ) -> dict[str, dict[str, Any]]:
        """The baselines of `config.baselines.run` on each seed's walks: nearest RP, Kalman (seed
        m with `kalman[m]`'s stds) and the walk filter with seed m's map, WkNN with
        `databases[m]` (the map's survey scans); `tests[m]` holds the scans the walks index."""
        b, xy, floor = self.config.baselines, self.points.xy, self.points.floor
        wanted = [name for name in BASELINES if name in tuple(b.run)]
        found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in wanted}
        knn_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for w, radio_map, database, test, stds in zip(
            walks, maps, databases, tests, kalman, strict=True
        ):
            signals = w.scans.signals[w.rows]
            nearest = nearest_point(signals, radio_map)
            if "nearest RP" in found:
                found["nearest RP"].append((xy[nearest], floor[nearest]))
            if "Kalman" in found:
                track = kalman_cv_track(xy[nearest], *stds, float(b.kalman_initial_speed_std))
                found["Kalman"].append((track, floor[nearest]))
            if "walk filter" in found:
                signal_std = float(b.walk_filter_signal_std_db) / 100.0  # 100 dB per unit
                path = walk_filter(signals, radio_map, self.neighbours, signal_std)
                found["walk filter"].append((xy[path], floor[path]))
            if "WkNN" in found:
                key = (id(database), id(test))  # a real set's seeds share them: predict once
                if key not in knn_cache:
                    index = build_index(database, b.knn_representation)
                    knn = knn_predict(index, test.aligned_to(database), int(b.knn_k))
                    building = None if test.building is None else knn["building"]
                    knn_cache[key] = (knn["xy"], floor_code_of(knn["floor"], building))
                knn_xy, knn_floor = knn_cache[key]
                found["WkNN"].append((knn_xy[w.rows], knn_floor[w.rows]))
        return {
            name: self.position_scores(
                np.stack([p for p, _ in per_seed]), np.stack([f for _, f in per_seed]), walks
            )
            for name, per_seed in found.items()
        }

"""GUFU on drift, period by period (GUFU paper §7 protocol), on real months or a synthetic site.

Real: the UJI long-term library set; initial database = the reference month's training sets
(optionally `records_per_rp` records per reference point); each later month's test samples arrive
as one unlabelled batch (their coordinates only score the predicted locations) and its training
sets are the measurement. Synthetic: weekly AP churn at GUFU's Table 5 rates (`jaxfp.data.synthetic`).
Per period and variant: location error of the batch, RSS error of the database against the
period's measurement at the same points, APs added/removed (and the churn in the data), seconds
per update. Variants: GUFU, ours with a residual rewrite, GUFU's ablations (no feature extractor /
no virtual edges / no edge prediction), the database never updated, and location-then-average.

Choices, one line each:
- RSS error: per reference point, the mean dBm of the records (database) and of the month's
  training samples (measured) per AP, an AP counting at a point where at least half the samples
  detect it; mean |database - measured| over the (point, AP) pairs the month detects, a database
  without the AP counting as `missing_dbm`.
- a place is (x, y) on a one-floor site and (x, y, `floor_height_m` x floor) on several floors, for
  every method: the UJI library's floors 3 and 5 share their (x, y) points, and the paper keeps one
  database per floor; the location error is horizontal, the floor is the nearest database floor
  to the predicted height.
- locations for the two baselines: WkNN (k = 3) in the normalised-RSS space of the database.
- location-then-average: every database record within `radius_m` of a batch sample's estimate
  moves towards that sample's RSS by `blend / (1 + distance)` on the APs both detect; APs only the
  sample detects are added to the records at the same blend.
- resume: each finished (variant, seed) writes its periods to the workdir and is reused by a
  rerun; an unfinished one restarts from the initial database.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np

from jaxfp.data.longterm import load_longterm, load_longterm_month
from jaxfp.data.synthetic import WorldParams, evolve, make_world, measure, survey
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.metrics import bootstrap_ci
from jaxfp.eval.report import atomic_path, format_table, write_json
from jaxfp.methods.gufu_model import Gufu, normalise
from jaxfp.methods.knn import idw_average

# GUFU variants: config.gufu overrides. gufu_residual is ours (see gufu_model's docstring).
VARIANTS = {
    "gufu": {},
    "gufu_residual": {"rewrite": "residual", "update_rounds": 2, "initial_location": "code_knn"},
    "no_feature_extractor": {"feature_extractor": False},
    "no_virtual_edges": {"virtual_edges": False},
    "no_edge_prediction": {"edge_prediction": False},
}
BASELINES = ("static", "wknn_average")


def point_means(
    rss: np.ndarray, xy: np.ndarray, floor: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(points (P, 2 or 3): position ⊕ floor when floors are given, mean dBm (P, A) with NaN where
    fewer than half the samples detect). Floors matter: the UJI library's two floors share their
    (x, y) positions."""
    place = np.round(xy, 2) if floor is None else np.c_[np.round(xy, 2), floor]
    points, inverse = np.unique(place, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    detected = np.isfinite(rss)
    counts = np.zeros((len(points), rss.shape[1]))
    sums = np.zeros_like(counts)
    np.add.at(counts, inverse, detected)
    np.add.at(sums, inverse, np.where(detected, rss, 0.0))
    samples = np.bincount(inverse, minlength=len(points))[:, None]
    means = np.where(counts >= 0.5 * samples, sums / np.maximum(counts, 1), np.nan)
    return points, means


def rss_error(
    db_rss: np.ndarray,
    db_ap_ids: np.ndarray,
    db_xy: np.ndarray,
    measured: FingerprintSet,
    missing_dbm: float,
    db_floor: np.ndarray | None = None,
) -> float:
    """Mean |database - measured| (dB) over the (point, AP) pairs the measurement detects; a point
    is a position, and a floor when both sides give floors."""
    by_floor = db_floor is not None and measured.floor is not None
    db_points, db_means = point_means(db_rss, db_xy, db_floor if by_floor else None)
    m_points, m_means = point_means(measured.rss, measured.xy, measured.floor if by_floor else None)
    column = {ap: i for i, ap in enumerate(db_ap_ids.tolist())}
    index = {tuple(p): i for i, p in enumerate(db_points)}
    errors = []
    for p, row in zip(m_points, m_means, strict=True):
        if tuple(p) not in index:
            continue
        db_row = db_means[index[tuple(p)]]
        for a in np.flatnonzero(np.isfinite(row)):
            j = column.get(measured.ap_ids[a])
            value = db_row[j] if j is not None and np.isfinite(db_row[j]) else missing_dbm
            errors.append(abs(value - row[a]))
    if not errors:
        raise ValueError(
            f"{measured.source}: nothing to score: no AP detected (by at least half the samples) "
            "at a reference point the database shares"
        )
    return float(np.mean(errors))


def wknn_locations(
    db_rss: np.ndarray, db_xy: np.ndarray, rss: np.ndarray, k: int = 3
) -> np.ndarray:
    return idw_average(normalise(rss), normalise(db_rss), db_xy, k)


def location_then_average(
    db_rss: np.ndarray,
    db_xy: np.ndarray,
    rss: np.ndarray,
    located: np.ndarray,
    radius_m: float,
    blend: float,
) -> np.ndarray:
    """Each sample in turn moves the records within `radius_m` of its location towards itself by
    blend / (1 + distance): shared APs are blended, APs only the sample hears are copied in."""
    out = db_rss.copy()
    for sample, p in zip(rss, located, strict=True):
        d = np.linalg.norm(db_xy - p, axis=1)
        rows = np.flatnonzero(d <= radius_m)
        w = (blend / (1.0 + d[rows]))[:, None]
        block, seen = out[rows], np.isfinite(sample)[None]
        blended = np.where(seen & np.isfinite(block), (1 - w) * block + w * sample, block)
        out[rows] = np.where(seen & ~np.isfinite(block), sample, blended)
    return out


def places(fingerprints: FingerprintSet, floor_height_m: float, floors: np.ndarray) -> np.ndarray:
    """(N, 2) positions on one floor; (N, 3) with the floor's height when `floors` holds several."""
    if len(floors) < 2 or floor_height_m <= 0:
        return fingerprints.xy
    return np.c_[fingerprints.xy, floor_height_m * fingerprints.floor].astype(np.float32)


def nearest_floor(located: np.ndarray, floor_height_m: float, floors: np.ndarray) -> np.ndarray:
    """The database floor whose height is nearest each predicted place's height."""
    return floors[np.abs(located[:, 2:3] - floor_height_m * floors[None]).argmin(1)]


class Period(NamedTuple):
    """One update: its number (month or week), the unlabelled batch, the fingerprints measured at the
    database's points in that period (scoring only)."""

    number: int
    batch: FingerprintSet
    measured: FingerprintSet


def load_periods(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
    """The initial database (its AP set = the APs it detects) and the later periods."""
    if config.data.source == "longterm":
        db, periods = _longterm_periods(config)
    elif config.data.source == "synthetic":
        db, periods = _synthetic_periods(config.synthetic)
    else:
        raise ValueError(
            f"config.data.source: expected 'longterm' or 'synthetic', got {config.data.source!r}"
        )
    return db.select_aps(db.ap_ids[db.detected.any(0)].tolist()), periods


def _longterm_periods(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
    """Month 1's training sets (optionally `records_per_rp` per point); later months' test sets
    as batches, their training sets as the measurement."""
    path, reference = config.data.path, config.data.reference_month
    db = load_longterm_month(path, reference, "trn")
    keep = config.data.records_per_rp
    if keep:
        rng = np.random.default_rng(config.data.subsample_seed)
        rows = np.concatenate(
            [rng.permutation(np.flatnonzero(db.rp_id == rp))[:keep] for rp in np.unique(db.rp_id)]
        )
        db = db.subset(np.sort(rows))
    available = sorted({int(k[:2]) for k in load_longterm(path, kinds=["trn"])})
    wanted = list(config.data.months) or [m for m in available if m > reference]
    periods = [
        Period(m, load_longterm_month(path, m, "tst"), load_longterm_month(path, m, "trn"))
        for m in wanted
    ]
    return db, periods


def _synthetic_periods(s: ml_collections.ConfigDict) -> tuple[FingerprintSet, list[Period]]:
    """A synthetic site with weekly AP churn at GUFU's Table 5 rates: week 0's survey is the
    database; each week one scan at `batch` random places is the batch, a fresh survey the
    measurement."""
    params = dataclasses.replace(
        WorldParams(),
        width_m=s.width_m,
        height_m=s.height_m,
        n_aps=s.n_aps,
        path_loss_exponent=s.path_loss_exponent,
        sensitivity_dbm=s.sensitivity_dbm,
    )
    world = make_world(params, s.seed)
    db = survey(world, s.samples_per_rp, seed=s.seed + 1)
    periods = []
    rng = np.random.default_rng(s.seed + 2)
    for week in range(1, s.weeks + 1):
        world = evolve(world, seed=s.seed + 3)
        xy = rng.uniform(0, [s.width_m, s.height_m], (s.batch, 2))
        batch = measure(world, xy, np.zeros(s.batch, np.int64), seed=1000 * week + s.seed)
        measured = survey(world, s.samples_per_rp, seed=1000 * week + s.seed + 1)
        periods.append(Period(week, batch, measured))
    return db, periods


def ap_churn(db: FingerprintSet, periods: list[Period]) -> dict[int, dict[str, int]]:
    """Table 5 from the data: per period, APs the batch detects that no earlier period (or the
    database) did, and APs the previous period detected that this batch does not."""
    seen = set(db.ap_ids[db.detected.any(0)].tolist())
    previous = set(seen)
    out = {}
    for period in periods:
        heard = set(period.batch.ap_ids[period.batch.detected.any(0)].tolist())
        out[period.number] = {"new_aps": len(heard - seen), "gone_aps": len(previous - heard)}
        seen |= heard
        previous = heard
    return out


def run_variant(
    config: ml_collections.ConfigDict,
    variant: str,
    seed: int,
    db: FingerprintSet,
    periods: list[Period],
) -> list[dict[str, Any]]:
    floors = np.unique(db.floor) if db.floor is not None else np.zeros(1, np.int64)
    height = config.data.floor_height_m
    ap_ids, rss, xy = db.ap_ids, db.rss.copy(), places(db, height, floors)
    out: list[dict[str, Any]] = []
    model = None
    if variant in VARIANTS:
        c = config.copy_and_resolve_references()
        c.gufu.update(VARIANTS[variant])
        model = Gufu(c, ap_ids, rss, xy, jax.random.key(seed))
        offline = model.offline()
        out.append({"period": 0, "offline_seconds": offline["seconds"]})
    for period in periods:
        batch = period.batch
        start = time.perf_counter()
        row: dict[str, Any] = {"period": period.number, "aps_added": 0, "aps_removed": 0}
        if model is not None:
            result = model.update(batch.rss, batch.ap_ids)
            located = result.pop("xy")
            row.update({k: v for k, v in result.items() if k != "seconds"})
            ap_ids, rss = model.ap_ids, model.rss
        else:
            on_db = batch.select_aps(ap_ids.tolist()).rss
            located = wknn_locations(rss, xy, on_db)
            if variant == "wknn_average":
                known = set(ap_ids.tolist())
                fresh = [ap for ap in batch.ap_ids[batch.detected.any(0)] if ap not in known]
                row["aps_added"] = len(fresh)
                ap_ids = np.concatenate([ap_ids, np.asarray(fresh, str)])
                rss = np.concatenate([rss, np.full((len(rss), len(fresh)), np.nan, np.float32)], 1)
                e = config.eval
                rss = location_then_average(
                    rss,
                    xy,
                    batch.select_aps(ap_ids.tolist()).rss,
                    located,
                    e.average_radius_m,
                    e.average_blend,
                )
        row["seconds_per_update"] = time.perf_counter() - start
        row["location_error_m"] = float(np.linalg.norm(located[:, :2] - batch.xy, axis=1).mean())
        if xy.shape[1] == 3:
            row["floor_accuracy"] = float(
                np.mean(nearest_floor(located, height, floors) == batch.floor)
            )
        row["rss_error_db"] = rss_error(
            rss, ap_ids, db.xy, period.measured, config.eval.missing_dbm, db.floor
        )
        row["aps"] = int(len(ap_ids))
        out.append(row)
    return out


PER_PERIOD = ("rss_error_db", "location_error_m", "aps", "aps_added", "aps_removed")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    unknown = set(config.variants) - set(VARIANTS) - set(BASELINES)
    if unknown:
        raise ValueError(
            f"config.variants: unknown {sorted(unknown)}; expected some of "
            f"{sorted([*VARIANTS, *BASELINES])}"
        )
    db, periods = load_periods(config)
    numbers = [p.number for p in periods]
    unit = "month" if config.data.source == "longterm" else "week"
    runs: dict[str, dict[int, list]] = {}
    for variant in config.variants:
        runs[variant] = {}
        for seed in config.seeds:
            path = os.path.join(workdir, variant, f"seed{seed}.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs[variant][seed] = json.load(f)
                continue
            if variant in BASELINES and runs[variant]:  # no randomness: one run serves every seed
                rows = next(iter(runs[variant].values()))
            else:
                print(f"{variant}, seed {seed}: {unit}s {numbers}", flush=True)
                rows = run_variant(config, variant, seed, db, periods)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "w") as f:
                json.dump(rows, f, indent=1)
            runs[variant][seed] = rows
    table, by_period = {}, {}
    scored = (r for per_seed in runs.values() for rows in per_seed.values() for r in rows)
    floors = ("floor_accuracy",) if any("floor_accuracy" in r for r in scored) else ()
    for variant, per_seed in runs.items():
        summary: dict[str, float] = {}
        for metric in ("rss_error_db", "location_error_m", *floors, "seconds_per_update"):
            values = np.array(
                [np.mean([r[metric] for r in rows if metric in r]) for rows in per_seed.values()]
            )
            summary[metric] = float(values.mean())
            if metric != "seconds_per_update":
                summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"] = bootstrap_ci(values)
        offline = [r.get("offline_seconds", 0.0) for rows in per_seed.values() for r in rows[:1]]
        summary["offline_seconds"] = float(np.mean(offline))
        table[variant] = summary
        by_period[variant] = {
            str(n): {
                metric: float(
                    np.mean(
                        [r[metric] for rows in per_seed.values() for r in rows if r["period"] == n]
                    )
                )
                for metric in (*PER_PERIOD, *floors, "seconds_per_update")
            }
            for n in numbers
        }
    churn = ap_churn(db, periods)
    write_json(
        os.path.join(workdir, "results.json"),
        {
            "config": config.to_dict(),
            "unit": unit,
            "periods": numbers,
            "summary": table,
            "by_period": by_period,
            "ap_churn": {str(n): c for n, c in churn.items()},
            "runs": runs,
        },
    )
    print(f"{db.source}: {unit}s {numbers}; seeds {list(config.seeds)}")
    print(
        format_table(
            table,
            [
                "rss_error_db",
                "rss_error_db_ci_low",
                "rss_error_db_ci_high",
                "location_error_m",
                *floors,
                "seconds_per_update",
                "offline_seconds",
            ],
        )
    )
    for metric in ("rss_error_db", "location_error_m", *floors, "seconds_per_update"):
        print(f"\n{metric} by {unit}")
        print(format_table(_by_period_table(by_period, metric), [str(n) for n in numbers]))
    print(f"\nAP changes by {unit} (Table 5): in the data, and added/removed by each variant")
    changes = {
        "data: new/gone": {str(n): f"{c['new_aps']}/{c['gone_aps']}" for n, c in churn.items()}
    }
    for variant, rows in by_period.items():
        changes[variant] = {
            n: f"{r['aps_added']:.0f}/{r['aps_removed']:.0f}" for n, r in rows.items()
        }
    print(format_table(changes, [str(n) for n in numbers]))
    return table


def _by_period_table(by_period: dict, metric: str) -> dict[str, dict[str, float]]:
    return {v: {n: r[metric] for n, r in rows.items()} for v, rows in by_period.items()}

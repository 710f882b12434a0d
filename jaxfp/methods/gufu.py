"""GUFU on real drift: the UJI long-term library set, month by month (GUFU paper §7 protocol).

Initial database = the reference month's training sets (optionally `records_per_rp` records per
reference point); each later month's test samples arrive as one unlabelled batch (their coordinates
only score the predicted locations). Per month and variant: location error of the batch, RSS error
of the database against that month's training fingerprints at the same points, AP changes, seconds
per update. Variants: GUFU, its ablations (no feature extractor / no virtual edges / no edge
prediction), the database never updated, and location-then-average.

Choices, one line each:
- RSS error: per reference point, the mean dBm of the records (database) and of the month's
  training samples (measured) per AP, an AP counting at a point where at least half the samples
  detect it; mean |database - measured| over the (point, AP) pairs the month detects, a database
  without the AP counting as `missing_dbm`.
- locations for the two baselines: WkNN (k = 3) in the normalised-RSS space of the database.
- location-then-average: every database record within `radius_m` of a batch sample's estimate
  moves towards that sample's RSS by `blend / (1 + distance)` on the APs both detect; APs only the
  sample detects are added to the records at the same blend.
- resume: each finished (variant, seed) writes its months to the workdir and is reused by a rerun;
  an unfinished one restarts from the reference month.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxfp.data.longterm import load_longterm, load_longterm_month
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.metrics import bootstrap_ci
from jaxfp.eval.report import atomic_path, format_table, write_json
from jaxfp.methods.gufu_model import Gufu, normalise

ABLATIONS = {
    "gufu": {},
    "no_feature_extractor": {"feature_extractor": False},
    "no_virtual_edges": {"virtual_edges": False},
    "no_edge_prediction": {"edge_prediction": False},
}
BASELINES = ("static", "wknn_average")


def point_means(rss: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(points (P, 2), mean dBm (P, A) with NaN where fewer than half the samples detect)."""
    points, inverse = np.unique(np.round(xy, 2), axis=0, return_inverse=True)
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
) -> float:
    """Mean |database - measured| (dB) over the (point, AP) pairs the measurement detects."""
    db_points, db_means = point_means(db_rss, db_xy)
    m_points, m_means = point_means(measured.rss, measured.xy)
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
        raise ValueError(f"{measured.source}: no reference point shared with the database")
    return float(np.mean(errors))


def wknn_locations(
    db_rss: np.ndarray, db_xy: np.ndarray, rss: np.ndarray, k: int = 3
) -> np.ndarray:
    refs, queries = normalise(db_rss), normalise(rss)
    d = np.sqrt(
        np.maximum((queries**2).sum(1)[:, None] - 2 * queries @ refs.T + (refs**2).sum(1)[None], 0)
    )
    nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
    w = 1.0 / (np.take_along_axis(d, nearest, 1) + 1e-6)
    return np.einsum("qk,qkc->qc", w, db_xy[nearest]) / w.sum(1)[:, None]


def location_then_average(
    db_rss: np.ndarray,
    db_xy: np.ndarray,
    rss: np.ndarray,
    located: np.ndarray,
    radius_m: float,
    blend: float,
) -> np.ndarray:
    out = db_rss.copy()
    for sample, p in zip(rss, located, strict=True):
        d = np.linalg.norm(db_xy - p, axis=1)
        for r in np.flatnonzero(d <= radius_m):
            w = blend / (1.0 + d[r])
            seen = np.isfinite(sample)
            both = seen & np.isfinite(out[r])
            out[r, both] = (1 - w) * out[r, both] + w * sample[both]
            only = seen & ~np.isfinite(out[r])
            out[r, only] = sample[only]
    return out


def initial_database(config: ml_collections.ConfigDict) -> FingerprintSet:
    db = load_longterm_month(config.data.path, config.data.reference_month, "trn")
    keep = config.data.records_per_rp
    if keep:
        rng = np.random.default_rng(config.data.subsample_seed)
        rows = np.concatenate(
            [rng.permutation(np.flatnonzero(db.rp_id == rp))[:keep] for rp in np.unique(db.rp_id)]
        )
        db = db.subset(np.sort(rows))
    used = db.detected.any(0)  # the initial AP set: the APs the database detects
    return db.select_aps(db.ap_ids[used].tolist())


def run_variant(
    config: ml_collections.ConfigDict,
    variant: str,
    seed: int,
    months: list[tuple[int, FingerprintSet, FingerprintSet]],
) -> list[dict[str, Any]]:
    db = initial_database(config)
    ap_ids, rss, xy = db.ap_ids, db.rss.copy(), db.xy
    out: list[dict[str, Any]] = []
    model = None
    if variant in ABLATIONS:
        c = config.copy_and_resolve_references()
        c.gufu.update(ABLATIONS[variant])
        model = Gufu(c, ap_ids, rss, xy, jax.random.key(seed))
        offline = model.offline()
        out.append({"month": config.data.reference_month, "offline_seconds": offline["seconds"]})
    for month, batch, measured in months:
        start = time.perf_counter()
        row: dict[str, Any] = {"month": month}
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
        row["location_error_m"] = float(np.linalg.norm(located - batch.xy, axis=1).mean())
        row["rss_error_db"] = rss_error(rss, ap_ids, xy, measured, config.eval.missing_dbm)
        row["aps"] = int(len(ap_ids))
        out.append(row)
    return out


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    available = sorted({int(k[:2]) for k in load_longterm(config.data.path, kinds=["trn"])})
    wanted = list(config.data.months) or [m for m in available if m > config.data.reference_month]
    months = [
        (
            m,
            load_longterm_month(config.data.path, m, "tst"),
            load_longterm_month(config.data.path, m, "trn"),
        )
        for m in wanted
    ]
    unknown = set(config.variants) - set(ABLATIONS) - set(BASELINES)
    if unknown:
        raise ValueError(
            f"variants: unknown {sorted(unknown)}; expected {sorted([*ABLATIONS, *BASELINES])}"
        )
    runs: dict[str, dict[int, list]] = {}
    for variant in config.variants:
        runs[variant] = {}
        for seed in config.seeds:
            path = os.path.join(workdir, variant, f"seed{seed}.json")
            if os.path.exists(path):
                with open(path) as f:
                    runs[variant][seed] = json.load(f)
                continue
            print(f"{variant}, seed {seed}: months {wanted}")
            rows = run_variant(config, variant, seed, months)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with atomic_path(path) as tmp, open(tmp, "w") as f:
                json.dump(rows, f, indent=1)
            runs[variant][seed] = rows
    table, by_month = {}, {}
    for variant, per_seed in runs.items():
        summary: dict[str, float] = {}
        for metric in ("rss_error_db", "location_error_m", "seconds_per_update"):
            values = np.array(
                [np.mean([r[metric] for r in rows if metric in r]) for rows in per_seed.values()]
            )
            summary[metric] = float(values.mean())
            if metric != "seconds_per_update":
                summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"] = bootstrap_ci(values)
        table[variant] = summary
        by_month[variant] = {
            str(m): {
                metric: float(
                    np.mean(
                        [r[metric] for rows in per_seed.values() for r in rows if r["month"] == m]
                    )
                )
                for metric in ("rss_error_db", "location_error_m", "aps", "seconds_per_update")
            }
            for m in wanted
        }
    write_json(
        os.path.join(workdir, "results.json"),
        {
            "config": config.to_dict(),
            "months": wanted,
            "summary": table,
            "by_month": by_month,
            "runs": runs,
        },
    )
    print(
        f"{config.data.path}: months {wanted} after month {config.data.reference_month}; seeds {list(config.seeds)}"
    )
    print(
        format_table(
            table,
            [
                "rss_error_db",
                "rss_error_db_ci_low",
                "rss_error_db_ci_high",
                "location_error_m",
                "seconds_per_update",
            ],
        )
    )
    return table

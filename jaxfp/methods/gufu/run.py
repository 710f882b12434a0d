"""GUFU on drift, period by period (GUFU paper §7 protocol), on real months or a synthetic site.

Real: the UJI long-term library set; initial database = the reference month's training sets
(optionally `records_per_rp` records per reference point); each later month's test samples arrive
as one unlabelled batch (their coordinates only score the predicted locations) and its training
sets are the measurement. Synthetic: weekly AP churn at GUFU's Table 5 rates (`jaxfp.data.synthetic`).
Per period and variant: location error of the batch, RSS error of the database against the
period's measurement at the same points, APs added/removed (and the churn in the data), seconds
per update, and the diagnostics of `model` and `scoring.drift_capture`. Variants: GUFU as read,
readings of its open points side by side, ours (`gufu_residual`, `gufu_linked`), GUFU's ablations
(no feature extractor / no virtual edges / no edge prediction), the database never updated,
location-then-average, and §7.1's neighbour averaging after WkNN or iToLoc.

Scoring and the simple databases' choices are in `scoring` and `simple_updates`; GUFU's own in
`model`. Variants are config (`config.variants`: each a set of `config.gufu` settings; the command
line's `--config.gufu.KEY` wins over a variant's own); `config.run_variants` picks which run, GUFU's
or the databases of `variants.BASELINES`.

Resume: each finished (variant, seed) writes its periods with the settings that shaped them; a
rerun reuses it when those settings are unchanged and recomputes it (saying so) otherwise; an
unfinished one restarts from the initial database. Inner fits log to
`variant/seedN/metrics.jsonl`; a line per period says where the run is.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import ml_collections
import numpy as np

from jaxfp.common.atomic_files import write_json
from jaxfp.config import ConfigError, variant_settings
from jaxfp.eval.results import over_seeds, write_results
from jaxfp.eval.results import table as table_of
from jaxfp.methods.gufu.model import Gufu
from jaxfp.methods.gufu.periods import ap_churn, load_periods
from jaxfp.methods.gufu.variants import BASELINES, SEEDLESS, run_variant
from jaxfp.train.logging import MetricWriter
from jaxfp.train.optimise import StepLog
from jaxfp.train.workdir import config_as_json, config_differences, prepare_workdir

PER_PERIOD = ("rss_error_db", "location_error_m", "aps", "aps_added", "aps_removed")
# Logged per update (issue 18's diagnostics): what the batch reaches and what the update does.
DIAGNOSTICS = (
    "old_new_pairs",
    "new_samples_linked",
    "records_linked",
    "edges_added_per_new_ap",
    "aps_losing_edges",
    "detections_ended",
    "record_change_db",
    "measured_drift_db",
    "drift_alignment",
    "aps_removed_still_heard",
    "aps_removed_departed",
    "aps_kept_departed",
    "ae_error_db",
)


def shaping(config: ml_collections.ConfigDict, variant: str, seed: int) -> dict[str, Any]:
    """The settings one (variant, seed) result depends on."""
    out: dict[str, Any] = {"data": config.data.to_dict(), "eval": config.eval.to_dict()}
    if config.data.source == "synthetic":
        out["synthetic"] = config.synthetic.to_dict()
    if variant not in BASELINES:
        out["gufu"] = variant_settings(config, "gufu", variant).to_dict()
    elif variant in ("wknn_neighbour_average", "itoloc_average"):
        out["neighbours"] = {
            k: config.gufu[k] for k in ("virtual_threshold", "max_virtual_per_node")
        }
    if variant == "itoloc_average":
        out["itoloc"] = config.itoloc.to_dict()
        out["itoloc_first_batch"] = config.itoloc_first_batch
    if variant not in SEEDLESS:
        out["seed"] = seed
    return config_as_json(out)


def _run_one(config, workdir, variant, seed, db, periods, label) -> list[dict[str, Any]]:
    """A (variant, seed)'s periods: reused when its shaping settings match, else computed."""
    folder = os.path.join(workdir, variant, f"seed{seed}")
    path = f"{folder}.json"
    wanted = shaping(config, variant, seed)
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("shaping") == wanted:
            print(f"{variant}, seed {seed}: finished earlier, reused", flush=True)
            return saved["rows"]
        diffs = config_differences(saved.get("shaping", {}), wanted)
        print(f"{variant}, seed {seed}: settings changed ({'; '.join(diffs[:4])}); recomputing")
    prepare_workdir(folder, wanted)
    writer = MetricWriter(folder)
    writer.truncate_after(0)  # an unfinished earlier attempt restarts from the initial database
    start = time.perf_counter()
    print(f"{variant}, seed {seed}: {label}", flush=True)
    try:
        rows = run_variant(config, variant, seed, db, periods, StepLog(writer), workdir=folder)
    finally:
        writer.close()
    print(f"{variant}, seed {seed}: done in {time.perf_counter() - start:.0f} s", flush=True)
    write_json(path, {"shaping": wanted, "rows": rows}, indent=1)
    return rows


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    known = [*config.variants.keys(), *BASELINES]
    unknown = set(config.run_variants) - set(known)
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of {known}"
        )
    for variant in config.run_variants:  # a bad setting fails now, not after hours of training
        if variant not in BASELINES:
            Gufu.check(variant_settings(config, "gufu", variant))
    os.makedirs(workdir, exist_ok=True)
    db, periods = load_periods(config)
    numbers = [p.number for p in periods]
    unit = "month" if config.data.source == "longterm" else "week"
    label = f"{unit}s {numbers}"
    runs: dict[str, dict[int, list]] = {}
    for variant in config.run_variants:
        runs[variant] = {}
        for seed in config.seeds:
            if variant in SEEDLESS and runs[variant]:  # no randomness: one run serves every seed
                runs[variant][seed] = next(iter(runs[variant].values()))
                continue
            runs[variant][seed] = _run_one(config, workdir, variant, seed, db, periods, label)
    table, by_period = {}, {}
    scored = (r for per_seed in runs.values() for rows in per_seed.values() for r in rows)
    floors = ("floor_accuracy",) if any("floor_accuracy" in r for r in scored) else ()
    for variant, per_seed in runs.items():
        summary: dict[str, float] = {}
        for metric in ("rss_error_db", "location_error_m", *floors, "seconds_per_update"):
            values = [
                np.mean([r[metric] for r in rows if metric in r]) for rows in per_seed.values()
            ]
            if metric == "seconds_per_update":
                summary[metric] = float(np.mean(values))
            else:
                summary.update(over_seeds(values, metric))
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
    columns = [
        "rss_error_db",
        "rss_error_db_ci_low",
        "rss_error_db_ci_high",
        "location_error_m",
        *floors,
        "seconds_per_update",
        "offline_seconds",
    ]
    tables = {
        f"{metric} by {unit}": table_of(
            _by_period_table(by_period, metric), [str(n) for n in numbers]
        )
        for metric in ("rss_error_db", "location_error_m", *floors, "seconds_per_update")
    }
    changes = {
        "data: new/gone": {str(n): f"{c['new_aps']}/{c['gone_aps']}" for n, c in churn.items()}
    }
    for variant, rows in by_period.items():
        changes[variant] = {
            n: f"{r['aps_added']:.0f}/{r['aps_removed']:.0f}" for n, r in rows.items()
        }
    tables[
        f"AP changes by {unit} (Table 5): new/gone in the data, added/removed by each variant"
    ] = table_of(changes, [str(n) for n in numbers])
    diagnostics = {}
    for variant, per_seed in runs.items():
        rows = [r for seed_rows in per_seed.values() for r in seed_rows if r["period"] != 0]
        found = {m: np.array([r[m] for r in rows if m in r], float) for m in DIAGNOSTICS}
        diagnostics[variant] = {
            m: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            for m, v in found.items()
            if len(v)
        }
    tables[f"diagnostics (mean over {unit}s and seeds)"] = table_of(
        diagnostics, [m for m in DIAGNOSTICS if any(m in d for d in diagnostics.values())]
    )
    write_results(
        workdir,
        f"{db.source}: {unit}s {numbers}; seeds {list(config.seeds)}",
        config,
        table,
        columns,
        tables,
        unit=unit,
        periods=numbers,
        by_period=by_period,
        ap_churn={str(n): c for n, c in churn.items()},
        runs=runs,
    )
    return table


def _by_period_table(by_period: dict, metric: str) -> dict[str, dict[str, float]]:
    return {v: {n: r[metric] for n, r in rows.items()} for v, rows in by_period.items()}

"""GUFU's results: the summary over seeds (Student-t intervals), the per-period tables, the AP
changes beside the churn in the data (Table 5), the per-update diagnostics, and the paired
differences over seeds on which a claim rests: each GUFU variant against each baseline, and the
paper's `gufu` against each other GUFU variant (an ablation or one of ours). A variant whose every
period carries the ISO/IEC 18305 and IPIN fields (runs made before they were scored do not) gets
each as the mean over seeds of its mean over the periods, shown in a table of their own."""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

from jaxfp.eval.iso18305 import STATISTICS, StandardConstants, standard_table
from jaxfp.eval.results import over_seeds, write_results
from jaxfp.eval.results import table as table_of
from jaxfp.eval.stats import paired_rows
from jaxfp.methods.gufu.data import ap_churn
from jaxfp.methods.gufu.variants import BASELINES

# The RSS error in its symmetric parts beside the one-sided one (`scoring`)
RSS_PARTS = ("value_error_db", "false_detection_rate", "missed_detection_rate")
PER_PERIOD = ("rss_error_db", *RSS_PARTS, "location_error_m", "aps", "aps_added", "aps_removed")
# Logged per update: what the batch reaches and what the update does.
DIAGNOSTICS = (
    "initial_error_m",
    "mlp1_from_initial_m",
    "rounds",
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
    "ae_below_floor",
)
PAIRED = ("rss_error_db", *RSS_PARTS, "location_error_m")
STANDARD = (
    *(f"{error}_{s}" for error in ("2d", "3d", "ipin") for s in STATISTICS),
    "floor_hit_rate",
    "building_hit_rate",
)
PAIRED_COLUMNS = ["difference", "difference_ci_low", "difference_ci_high", "n_seeds", "verdict"]

Runs = dict[str, dict[int, list[dict[str, Any]]]]  # variant -> seed -> its rows


def per_seed(rows_by_seed: dict[int, list[dict[str, Any]]], metric: str) -> list[float]:
    """Each seed's mean of `metric` over its periods, in seed order."""
    return [
        float(np.mean([r[metric] for r in rows if metric in r])) for rows in rows_by_seed.values()
    ]


def standard_summary(rows_by_seed: dict[int, list[dict[str, Any]]]) -> dict[str, float]:
    """Each standard field that every period of every seed carries: the mean over seeds of each
    seed's mean over its periods."""
    periods = [r for rows in rows_by_seed.values() for r in rows if r["period"] != 0]
    fields = [f for f in STANDARD if periods and all(f in r for r in periods)]
    return {f: float(np.mean(per_seed(rows_by_seed, f))) for f in fields}


def comparisons(variants: list[str]) -> list[tuple[str, str]]:
    """(A, B) pairs whose paired difference a claim rests on: each GUFU variant against each
    baseline that ran, and `gufu` against every other GUFU variant."""
    ours = [v for v in variants if v not in BASELINES]
    pairs = [(a, b) for a in ours for b in variants if b in BASELINES]
    if "gufu" in ours:
        pairs += [("gufu", v) for v in ours if v != "gufu"]
    return pairs


def paired_tables(runs: Runs) -> dict[str, dict[str, Any]]:
    """Per metric, one row "A - B" per comparison: mean difference over seeds, its t-interval,
    n and the verdict (lower is better)."""
    tables = {}
    pairs = comparisons(list(runs))
    for metric in PAIRED:
        compared = {v: per_seed(runs[v], metric) for v in {x for pair in pairs for x in pair}}
        rows = paired_rows(compared, pairs, "difference")
        if rows:
            name = f"paired differences over seeds, {metric} (A - B, lower is better)"
            tables[name] = table_of(rows, PAIRED_COLUMNS)
    return tables


OFFLINE = ("gnn_seconds", "gnn_loss", "gnn_zero_embeddings", "offline_seconds")


def offline_tables(runs: Runs) -> dict[str, dict[str, Any]]:
    """Table 8: per variant whose offline row carries the GNN's training time, the step by which
    its loss curve settled (mean over seeds, t-interval) and the seconds to it at the run's
    steady rate (the fastest seconds per step of any offline GNN fit in the run: every variant
    trains the same network on the same graph, and the slower first fits pay compilation), the
    fit's seconds, its final loss and the offline stage's seconds; and `gufu` - each other such
    variant's settling step, paired over seeds. Empty where no offline row carries it."""
    first = {
        variant: [rows[0] for rows in by_seed.values() if rows] for variant, by_seed in runs.items()
    }
    first = {
        v: rows for v, rows in first.items() if rows and all("gnn_settled_step" in r for r in rows)
    }
    if not first:
        return {}
    steady = min(r["gnn_seconds_per_step"] for rows in first.values() for r in rows)
    steps = {v: [float(r["gnn_settled_step"]) for r in rows] for v, rows in first.items()}
    table = {
        v: {
            **over_seeds(steps[v], "gnn_settled_step"),
            "gnn_settled_seconds": float(np.mean(steps[v])) * steady,
            **{m: float(np.mean([r.get(m, np.nan) for r in rows])) for m in OFFLINE},
        }
        for v, rows in first.items()
    }
    columns = ["gnn_settled_step", "gnn_settled_step_ci_low", "gnn_settled_step_ci_high"]
    caption = (
        "offline GNN training (Table 8): the step its loss settled by and the seconds to it at "
        f"{1e3 * steady:.2f} ms a step (mean over seeds)"
    )
    tables = {caption: table_of(table, [*columns, "gnn_settled_seconds", *OFFLINE, "n_seeds"])}
    pairs = [("gufu", v) for v in steps if v != "gufu"]
    paired = paired_rows(steps, pairs, "difference")
    if paired:
        name = "paired differences over seeds, gnn_settled_step (A - B, lower is better)"
        tables[name] = table_of(paired, PAIRED_COLUMNS)
    return tables


def write_tables(
    config: ml_collections.ConfigDict,
    workdir: str,
    data: dict[int, tuple[Any, list]],
    runs: Runs,
    unit: str,
) -> dict[str, Any]:
    """results.json and the printed tables of one run of the protocol; returns the summary."""
    first_db, first_periods = next(iter(data.values()))
    numbers = [p.number for p in first_periods]
    scored = (r for by_seed in runs.values() for rows in by_seed.values() for r in rows)
    floors = ("floor_accuracy",) if any("floor_accuracy" in r for r in scored) else ()
    table, by_period = {}, {}
    for variant, by_seed in runs.items():
        summary: dict[str, Any] = {}
        for metric in ("rss_error_db", *RSS_PARTS, "location_error_m", *floors):
            summary.update(over_seeds(per_seed(by_seed, metric), metric))
        summary["seconds_per_update"] = float(np.mean(per_seed(by_seed, "seconds_per_update")))
        offline = [r.get("offline_seconds", 0.0) for rows in by_seed.values() for r in rows[:1]]
        summary["offline_seconds"] = float(np.mean(offline))
        summary.update(standard_summary(by_seed))
        table[variant] = summary
        by_period[variant] = {
            str(n): {
                metric: float(
                    np.mean(
                        [r[metric] for rows in by_seed.values() for r in rows if r["period"] == n]
                    )
                )
                for metric in (*PER_PERIOD, *floors, "seconds_per_update")
            }
            for n in numbers
        }
    columns = [
        "rss_error_db",
        "value_error_db",
        "value_error_db_ci_low",
        "value_error_db_ci_high",
        "false_detection_rate",
        "missed_detection_rate",
        "location_error_m",
        "location_error_m_ci_low",
        "location_error_m_ci_high",
        *floors,
        "seconds_per_update",
        "offline_seconds",
    ]
    tables = {
        f"{metric} by {unit}": table_of(
            {v: {n: r[metric] for n, r in rows.items()} for v, rows in by_period.items()},
            [str(n) for n in numbers],
        )
        for metric in ("rss_error_db", *RSS_PARTS, "location_error_m", *floors)
    }
    churn = {seed: ap_churn(db, periods) for seed, (db, periods) in data.items()}
    mean_churn = {
        str(n): {
            kind: float(np.mean([c[n][kind] for c in churn.values()]))
            for kind in ("new_aps", "gone_aps")
        }
        for n in numbers
    }
    changes = {
        "data: new/gone": {n: f"{c['new_aps']:g}/{c['gone_aps']:g}" for n, c in mean_churn.items()}
    }
    for variant, rows in by_period.items():
        changes[variant] = {
            n: f"{r['aps_added']:.0f}/{r['aps_removed']:.0f}" for n, r in rows.items()
        }
    tables[
        f"AP changes by {unit} (Table 5, mean over seeds): new/gone in the data, "
        "added/removed by each variant"
    ] = table_of(changes, [str(n) for n in numbers])
    diagnostics = {}
    for variant, by_seed in runs.items():
        rows = [r for seed_rows in by_seed.values() for r in seed_rows if r["period"] != 0]
        found = {m: np.array([r[m] for r in rows if m in r], float) for m in DIAGNOSTICS}
        diagnostics[variant] = {
            m: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
            for m, v in found.items()
            if len(v)
        }
    tables[f"diagnostics (mean over {unit}s and seeds)"] = table_of(
        diagnostics, [m for m in DIAGNOSTICS if any(m in d for d in diagnostics.values())]
    )
    tables.update(paired_tables(runs))
    tables.update(offline_tables(runs))
    constants = StandardConstants.from_config(config.eval)
    for caption, standard in standard_table(table, constants).items():
        tables[f"{caption} (mean over {unit}s and seeds)"] = standard
    write_results(
        workdir,
        f"{first_db.source}: {unit}s {numbers}; seeds {list(config.seeds)}",
        config,
        table,
        columns,
        tables,
        unit=unit,
        periods=numbers,
        by_period=by_period,
        ap_churn=mean_churn,
        runs=runs,
        standard_metrics=dataclasses.asdict(constants),
    )
    return table

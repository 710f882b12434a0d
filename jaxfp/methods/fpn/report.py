"""FPN's tables: one row per network or baseline (mean over seeds with its Student-t interval),
paired differences over seeds for the comparisons the paper's claims rest on, and per-point
errors for the figures (Figs. 5–6). Each row also carries the ISO/IEC 18305 and IPIN fields
(`jaxfp.eval.iso18305`) of every step of every test walk: each seed's, then the mean over seeds;
the estimate's floor is that of the reference point (or baseline position) it names."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxfp.data.places import split_floor_code
from jaxfp.eval.iso18305 import StandardConstants, coded_report, standard_table
from jaxfp.eval.plots import per_point_error_plot, plt
from jaxfp.eval.results import over_seeds
from jaxfp.eval.stats import paired_rows

METRIC_COLUMNS = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "p95_m", "floor_hit", "seconds"]
PAIR_COLUMNS = ["diff_m", "diff_m_ci_low", "diff_m_ci_high", "verdict"]
PAIRED_TABLE = "paired differences of the mean error over seeds (A - B, m; lower is better)"


def row_of(scores: dict[str, Any], seeds: Sequence[int], seconds: float | None = None) -> dict:
    """A table row from per-seed scores: the mean error over seeds with its interval, the mean
    95th percentile and floor hit rate, each seed's mean error, and the fine-tune's seconds."""
    row = over_seeds(scores["mean_m"], "mean_m")
    row["p95_m"] = float(np.mean(scores["p95_m"]))
    row["floor_hit"] = float(np.mean(scores["floor_hit"]))
    row["seconds"] = seconds
    row["per_seed_mean_m"] = {
        str(s): float(v) for s, v in zip(seeds, scores["mean_m"], strict=True)
    }
    for field, per_seed in scores.get("standard", {}).items():
        row[field] = float(np.mean(per_seed))
    return row


def standard_scores(
    xy: np.ndarray,
    true_xy: np.ndarray,
    floor: np.ndarray,
    true_floor: np.ndarray,
    constants: StandardConstants,
    buildings: bool = False,
) -> dict[str, np.ndarray]:
    """Each seed's ISO/IEC 18305 and IPIN fields {field: (S,)} of positions (S, ..., 2) and floor
    codes (S, ...) against the truth, every step of every walk a sample."""
    split = functools.partial(split_floor_code, buildings=buildings)
    per_seed = [
        coded_report(xy[s], true_xy[s], floor[s], true_floor[s], split, constants)
        for s in range(len(xy))
    ]
    return {k: np.array([r[k] for r in per_seed]) for k in per_seed[0]}


def per_point(scores: dict[str, Any], n_points: int) -> np.ndarray:
    """Mean error per reference point over every seed's walk steps there, NaN where none went."""
    place, errors = scores["place"].ravel(), scores["errors"].ravel()
    inside = place >= 0
    sums = np.bincount(place[inside], errors[inside], minlength=n_points)
    counts = np.bincount(place[inside], minlength=n_points)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def pooled(
    per_month: Sequence[dict[str, Any]],
    standard_of: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Scores of several months' walks pooled per seed (every month has as many walk steps); with
    `standard_of` (`Study.standard_of`), the standard fields of the pooled steps too."""
    errors = np.concatenate([sc["errors"] for sc in per_month], 1)  # (S, months × W, T)
    out = {
        "mean_m": errors.mean((1, 2)),
        "p95_m": np.percentile(errors.reshape(len(errors), -1), 95, axis=1),
        "floor_hit": np.mean([sc["floor_hit"] for sc in per_month], 0),
        "errors": errors,
    }
    if standard_of is not None and all("estimates" in sc for sc in per_month):
        estimates = {
            k: np.concatenate([sc["estimates"][k] for sc in per_month], 1)
            for k in per_month[0]["estimates"]
        }
        out.update(estimates=estimates, standard=standard_of(estimates))
    return out


def standard_tables(
    rows: dict[str, dict[str, Any]], constants: StandardConstants
) -> dict[str, dict[str, Any]]:
    """The rows' ISO/IEC 18305 and IPIN table, its caption saying each value is a seed mean."""
    return {f"{k} (mean over seeds)": v for k, v in standard_table(rows, constants).items()}


class Evaluation:
    """Rows of the results table and each row's per-seed mean errors."""

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = tuple(seeds)
        self.rows: dict[str, dict[str, Any]] = {}
        self.per_seed: dict[str, np.ndarray] = {}

    def add(self, name: str, scores: dict[str, Any], seconds: float | None = None) -> None:
        self.rows[name] = row_of(scores, self.seeds, seconds)
        self.per_seed[name] = np.asarray(scores["mean_m"], np.float64)
        print(f"[fpn] {name}: {self.rows[name]['mean_m']:.2f} m", flush=True)

    def paired(self, pairs: Sequence[tuple[str, str, str]]) -> dict[str, dict[str, Any]]:
        """{name: paired_difference(A, B)} for each (name, row A, row B) whose rows both exist."""
        return paired_rows(self.per_seed, pairs, "diff_m")


def plots(workdir: str, curves: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """One per-point error figure per network (trained map, untrained map, fine-tuned)."""
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    return [
        per_point_error_plot(
            by_map,
            os.path.join(workdir, "plots", f"per_point_error_{name}.png"),
            title=f"{name}: mean error per reference point (Figs. 5-6)",
        )
        for name, by_map in curves.items()
    ]


def learning_curve(stage_dir: str) -> dict[str, list[float]]:
    """A stage's curves from its metrics.jsonl at each evaluation: the validation cross-entropy
    and the training loss averaged over the steps since the previous evaluation (both means over
    the stacked seeds)."""
    losses: list[tuple[int, float]] = []
    curve: dict[str, list[float]] = {"step": [], "loss": [], "val_ce": []}
    path = os.path.join(stage_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return curve
    with open(path) as f:
        records = [json.loads(line) for line in f]
    losses = [(int(r["step"]), float(r["loss"])) for r in records if "loss" in r]
    previous = 0
    for r in records:
        if "eval/val_ce" in r:
            step = int(r["step"])
            window = [v for s, v in losses if previous < s <= step]
            curve["step"].append(step)
            curve["loss"].append(float(np.mean(window)) if window else float("nan"))
            curve["val_ce"].append(float(r["eval/val_ce"]))
            previous = step
    return curve


def learning_curve_figure(curves: dict[str, dict[str, list[float]]], path: str) -> str:
    """Training loss (dashed) and validation cross-entropy (solid) per stage against the step."""
    fig, ax = plt.subplots(figsize=(8, 4), dpi=120)
    for i, (name, c) in enumerate(curves.items()):
        color = f"C{i % 10}"
        ax.plot(c["step"], c["loss"], color=color, lw=0.7, ls="--")
        ax.plot(c["step"], c["val_ce"], color=color, lw=1.6, label=name)
    ax.set_xlabel("step (batches of walks)")
    ax.set_ylabel("cross-entropy (dashed: training, solid: validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

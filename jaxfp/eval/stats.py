"""Statistics over seeds: Student-t intervals of a mean, paired differences, verdicts.

A seed is one draw of the whole experiment (data split or synthetic world, labelled subset, survey
noise, initialisation), so seeds are independent replicates and the spread over them is the
uncertainty a table reports. With n seeds the 95% interval of the mean is
    mean ± t_{0.975, n-1} · sd / √n      (sd with n - 1 in the denominator),
printed with n. "A beats B" is judged on the paired difference over the same seeds: its interval
must exclude 0, and a verdict needs at least `MIN_SEEDS_FOR_VERDICT` seeds.
(The per-sample bootstrap in `metrics.bootstrap_ci` describes one run's error distribution.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
INTERVAL_KIND = "t95"  # what the `interval` field of a row names
MIN_SEEDS_FOR_VERDICT = 5


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval of the mean of `values`; (nan, nan) for fewer than two values."""
    x = np.asarray(values, np.float64)
    if x.ndim != 1:
        raise ValueError(f"t_interval: expected a 1-D sequence of per-seed values, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"t_interval: non-finite per-seed values {x.tolist()}")
    if x.size < 2:
        return float("nan"), float("nan")
    half = scipy.stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def over_seeds(values: Sequence[float], name: str = "mean") -> dict[str, Any]:
    """{name, name_ci_low, name_ci_high, n_seeds, interval}: the mean over seeds with its
    Student-t 95% interval (nan where n < 2)."""
    x = np.asarray(values, np.float64)
    if x.size == 0:
        raise ValueError(f"over_seeds({name!r}): no per-seed values")
    low, high = t_interval(x)
    return {
        name: float(x.mean()),
        f"{name}_ci_low": low,
        f"{name}_ci_high": high,
        "n_seeds": int(x.size),
        "interval": INTERVAL_KIND,
    }


def paired_difference(
    a: Sequence[float], b: Sequence[float], name: str = "diff", lower_is_better: bool = True
) -> dict[str, Any]:
    """A - B over the same seeds (seed i of `a` paired with seed i of `b`): the mean difference,
    its t-interval, n and a verdict: "A better" / "B better" where the interval excludes 0 (in the
    direction `lower_is_better` says), "no difference shown" where it does not, or
    "no verdict (n < 5)"."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"paired_difference: expected two equal 1-D arrays, got {a.shape}, {b.shape}"
        )
    row = over_seeds(a - b, name)
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    row["verdict"] = verdict(low, high, a.size, lower_is_better)
    return row


def verdict(low: float, high: float, n: int, lower_is_better: bool = True) -> str:
    """The verdict of a paired difference A - B with interval [low, high] over n seeds."""
    if n < MIN_SEEDS_FOR_VERDICT:
        return f"no verdict (n < {MIN_SEEDS_FOR_VERDICT})"
    if high < 0:
        return "A better" if lower_is_better else "B better"
    if low > 0:
        return "B better" if lower_is_better else "A better"
    return "no difference shown"


def paired_rows(
    per_seed: Mapping[str, Sequence[float]],
    pairs: Iterable[tuple[str, str] | tuple[str, str, str]],
    name: str = "diff",
    lower_is_better: bool = True,
) -> dict[str, dict[str, Any]]:
    """A table of `paired_difference` rows over the same seeds: a pair (A, B) gives the row
    "A - B", a triple (row, A, B) names its row; a pair whose rows did not both run is left out."""
    rows = {}
    for pair in pairs:
        row, a, b = pair if len(pair) == 3 else (f"{pair[0]} - {pair[1]}", *pair)
        if a in per_seed and b in per_seed:
            rows[row] = paired_difference(per_seed[a], per_seed[b], name, lower_is_better)
    return rows

"""Positioning and radio-map metrics (numpy: they run once per evaluation, on host results)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.stats

PERCENTILES = (50, 67, 80, 90, 95)


def position_errors(predicted_xy: np.ndarray, true_xy: np.ndarray) -> np.ndarray:
    """Euclidean 2-D error per sample (metres)."""
    predicted_xy, true_xy = np.asarray(predicted_xy, np.float64), np.asarray(true_xy, np.float64)
    if predicted_xy.shape != true_xy.shape or predicted_xy.shape[-1] != 2:
        raise ValueError(
            f"expected two (n, 2) arrays, got {predicted_xy.shape} and {true_xy.shape}"
        )
    return np.linalg.norm(predicted_xy - true_xy, axis=-1)


def error_summary(
    errors: np.ndarray, percentiles: Sequence[int] = PERCENTILES, method: str = "linear"
) -> dict[str, float]:
    """Mean, median, RMSE, max and percentiles (numpy's `method`) of positioning errors."""
    errors = np.asarray(errors, np.float64)
    if errors.size == 0:
        raise ValueError("error_summary: no errors to summarise")
    out = {
        "mean": float(errors.mean()),
        "median": float(np.median(errors)),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "max": float(errors.max()),
    }
    out.update({f"p{q}": float(np.percentile(errors, q, method=method)) for q in percentiles})
    return out


def hit_rate(predicted: np.ndarray, true: np.ndarray) -> float:
    """Share of exact label matches (floor or building)."""
    predicted, true = np.asarray(predicted), np.asarray(true)
    return float(np.mean(predicted == true))


def region_success_rate(
    errors: np.ndarray, radius_m: float, floor_hit: np.ndarray | None = None
) -> float:
    """Share of estimates within `radius_m` of the truth (and on the right floor, if given)."""
    ok = np.asarray(errors) <= radius_m
    if floor_hit is not None:
        ok &= np.asarray(floor_hit, bool)
    return float(np.mean(ok))


def _rss_difference(estimate, truth, mask, name: str) -> np.ndarray:
    diff = np.asarray(estimate, np.float64) - np.asarray(truth, np.float64)
    if mask is not None:
        diff = diff[np.asarray(mask, bool)]
    if diff.size == 0:
        raise ValueError(f"{name}: empty mask")
    return diff


def rss_rmse(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RMSE between RSS maps (dB), over `mask` (e.g. entries detected in the truth)."""
    return float(np.sqrt(np.mean(_rss_difference(estimate, truth, mask, "rss_rmse") ** 2)))


def rss_mae(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error between RSS maps (dB), over `mask`."""
    return float(np.mean(np.abs(_rss_difference(estimate, truth, mask, "rss_mae"))))


def rss_nrmse(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RMSE normalised by the truth's RMS: ||est - true|| / ||true|| over `mask`."""
    truth = np.asarray(truth, np.float64)
    sel = truth[np.asarray(mask, bool)] if mask is not None else truth
    return rss_rmse(estimate, truth, mask) / float(np.sqrt(np.mean(sel**2)))


def bootstrap_ci(
    values: np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of `statistic` over samples (or seeds)."""
    values = np.asarray(values, np.float64)
    if values.size < 2:
        return float(statistic(values)), float(statistic(values))
    result = scipy.stats.bootstrap(
        (values,),
        lambda x, axis: np.apply_along_axis(statistic, axis, x),
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def positioning_report(
    predicted_xy: np.ndarray,
    true_xy: np.ndarray,
    predicted_floor: np.ndarray | None = None,
    true_floor: np.ndarray | None = None,
    predicted_building: np.ndarray | None = None,
    true_building: np.ndarray | None = None,
    success_radius_m: float = 5.0,
    seed: int = 0,
) -> dict[str, float]:
    """The numbers a positioning table reports, with a 95% bootstrap CI of the mean error."""
    errors = position_errors(predicted_xy, true_xy)
    out = error_summary(errors)
    out["mean_ci_low"], out["mean_ci_high"] = bootstrap_ci(errors, seed=seed)
    floor_hit = None
    if predicted_floor is not None and true_floor is not None:
        floor_hit = np.asarray(predicted_floor) == np.asarray(true_floor)
        out["floor_hit_rate"] = float(floor_hit.mean())
    if predicted_building is not None and true_building is not None:
        out["building_hit_rate"] = hit_rate(predicted_building, true_building)
    out[f"success_rate_{success_radius_m:g}m"] = region_success_rate(
        errors, success_radius_m, floor_hit
    )
    out["n"] = int(errors.size)
    return out

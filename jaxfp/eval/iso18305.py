"""The field's reporting conventions: ISO/IEC 18305:2016 accuracy metrics and the IPIN competition's
penalised error (numpy, on host results).

- 2-D error: horizontal Euclidean distance; 3-D error adds the vertical distance between floors,
  z = floor x `floor_height_m` for estimate and truth alike. 3.7 m is the height label of the
  Torres-Sospedra collection (UJI1, TUT1, LIB1, DSI1 store height = 3.7 m x floor).
- Each error is summarised by mean, median, RMSE and the 75th and 95th percentiles (numpy's linear
  interpolation; `percentile_method="hazen"` interpolates at (i - 0.5)/n as MATLAB's `quantile`,
  which the IPIN organisers' scoring script calls).
- IPIN penalised error per sample: 2-D error + `floor_penalty_m` x |floor estimate - true floor|
  + `building_penalty_m` if the building is wrong. The floor term counts every floor of difference
  (the IPIN scoring script adds 15 x abs(floor difference)); 50 m per wrong building is the
  multi-building rule of the EvAAL-ETRI 2015 (IPIN 2015) competition on UJIIndoorLoc.
  The competition's score is the 75th percentile, `ipin_p75`.
- Floor and building hit rates: the share of exact matches.

The constants are `StandardConstants`, read from a config's `eval` section where it has them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import numpy as np

from jaxfp.eval.metrics import error_summary, position_errors
from jaxfp.eval.results import table

FLOOR_HEIGHT_M = 3.7
FLOOR_PENALTY_M = 15.0
BUILDING_PENALTY_M = 50.0
PERCENTILES = (75, 95)
STATISTICS = ("mean", "median", "rmse", *(f"p{q}" for q in PERCENTILES))

# The columns of the table a protocol adds (every field is in the rows; these are the ones shown).
COLUMNS = (
    "2d_mean",
    "2d_rmse",
    "2d_p75",
    "2d_p95",
    "3d_mean",
    "3d_p75",
    "3d_p95",
    "ipin_mean",
    "ipin_p75",
    "floor_hit_rate",
    "building_hit_rate",
)


@dataclasses.dataclass(frozen=True)
class StandardConstants:
    """The metres the standard metrics are computed with."""

    floor_height_m: float = FLOOR_HEIGHT_M
    floor_penalty_m: float = FLOOR_PENALTY_M
    building_penalty_m: float = BUILDING_PENALTY_M
    percentile_method: str = "linear"

    @classmethod
    def from_config(cls, eval_config: Mapping[str, Any] | None) -> StandardConstants:
        """The constants in a config's `eval` section (None or a missing key: the default)."""
        eval_config = eval_config or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: eval_config[k] for k in fields if k in eval_config})

    def caption(self) -> str:
        """One line that names the constants (the caption of the table)."""
        return (
            f"ISO/IEC 18305 and IPIN: 3d_* with {self.floor_height_m:g} m per floor; ipin_* = 2-D "
            f"error + {self.floor_penalty_m:g} m per floor of difference + "
            f"{self.building_penalty_m:g} m per wrong building"
        )


def eval_section(**fields: Any) -> ml_collections.ConfigDict:
    """A config's `eval` section: the standard constants at their defaults (floor height and the
    floor and building penalties, metres) and a protocol's own `fields`, which may override them."""
    defaults = StandardConstants()
    section = dict(
        floor_height_m=defaults.floor_height_m,
        floor_penalty_m=defaults.floor_penalty_m,
        building_penalty_m=defaults.building_penalty_m,
    )
    section.update(fields)
    return ml_collections.ConfigDict(section)


def nearest_floor(located: np.ndarray, floor_height_m: float, floors: np.ndarray) -> np.ndarray:
    """The floor (of `floors`, `floor_height_m` apart) whose height is nearest each (N, 3)
    estimate's height."""
    return floors[np.abs(located[:, 2:3] - floor_height_m * floors[None]).argmin(1)]


def estimated_floors(
    estimate: np.ndarray, floor_height_m: float, floors: np.ndarray
) -> np.ndarray | None:
    """The floor of each estimate of a locator that gives positions, not floors: the nearest
    floor to an (N, 3) estimate's height; with (N, 2) estimates, a one-floor set's floor; None
    where several floors were pooled into 2-D estimates (no floor to score)."""
    if estimate.shape[1] == 3:
        return nearest_floor(estimate, floor_height_m, floors)
    if len(floors) == 1:
        return np.full(len(estimate), floors[0])
    return None


def summary(errors: np.ndarray, percentile_method: str = "linear") -> dict[str, float]:
    """Mean, median, RMSE and the 75th and 95th percentiles of per-sample errors (metres)."""
    full = error_summary(errors, PERCENTILES, percentile_method)
    return {k: full[k] for k in ("mean", "median", "rmse", *(f"p{q}" for q in PERCENTILES))}


def _labels(predicted: np.ndarray, true: np.ndarray, name: str, n: int) -> np.ndarray:
    predicted, true = np.asarray(predicted), np.asarray(true)
    if predicted.shape != (n,) or true.shape != (n,):
        raise ValueError(
            f"{name}: expected two ({n},) label arrays, got {predicted.shape} and {true.shape}"
        )
    return predicted.astype(np.float64) - true.astype(np.float64)


def errors_3d(
    predicted_xy: np.ndarray,
    true_xy: np.ndarray,
    predicted_floor: np.ndarray,
    true_floor: np.ndarray,
    floor_height_m: float = FLOOR_HEIGHT_M,
) -> np.ndarray:
    """3-D error per sample: the 2-D error and floor_height_m x the floor difference, combined."""
    horizontal = position_errors(predicted_xy, true_xy)
    dz = floor_height_m * _labels(predicted_floor, true_floor, "floors", horizontal.size)
    return np.sqrt(horizontal**2 + dz**2)


def penalised_errors(
    predicted_xy: np.ndarray,
    true_xy: np.ndarray,
    predicted_floor: np.ndarray,
    true_floor: np.ndarray,
    predicted_building: np.ndarray | None = None,
    true_building: np.ndarray | None = None,
    floor_penalty_m: float = FLOOR_PENALTY_M,
    building_penalty_m: float = BUILDING_PENALTY_M,
) -> np.ndarray:
    """IPIN error per sample: 2-D error + floor_penalty_m per floor of difference
    + building_penalty_m per wrong building (buildings left out: no building term)."""
    errors = position_errors(predicted_xy, true_xy)
    floors = np.abs(_labels(predicted_floor, true_floor, "floors", errors.size))
    errors = errors + floor_penalty_m * floors
    if predicted_building is not None and true_building is not None:
        wrong = _labels(predicted_building, true_building, "buildings", errors.size) != 0
        errors = errors + building_penalty_m * wrong
    return errors


def standard_report(
    predicted_xy: np.ndarray,
    true_xy: np.ndarray,
    predicted_floor: np.ndarray | None = None,
    true_floor: np.ndarray | None = None,
    predicted_building: np.ndarray | None = None,
    true_building: np.ndarray | None = None,
    constants: StandardConstants = StandardConstants(),
) -> dict[str, float]:
    """2d_*, and where floors are given 3d_*, ipin_* and floor_hit_rate (building_hit_rate where
    buildings are given): each error's mean, median, rmse, p75 and p95."""
    method = constants.percentile_method
    out = {f"2d_{k}": v for k, v in summary(position_errors(predicted_xy, true_xy), method).items()}
    has_floors = predicted_floor is not None and true_floor is not None
    has_buildings = predicted_building is not None and true_building is not None
    if has_floors:
        e3 = errors_3d(predicted_xy, true_xy, predicted_floor, true_floor, constants.floor_height_m)
        out.update({f"3d_{k}": v for k, v in summary(e3, method).items()})
        ipin = penalised_errors(
            predicted_xy,
            true_xy,
            predicted_floor,
            true_floor,
            predicted_building if has_buildings else None,
            true_building if has_buildings else None,
            constants.floor_penalty_m,
            constants.building_penalty_m,
        )
        out.update({f"ipin_{k}": v for k, v in summary(ipin, method).items()})
        out["floor_hit_rate"] = float(np.mean(np.asarray(predicted_floor) == true_floor))
    if has_buildings:
        out["building_hit_rate"] = float(np.mean(np.asarray(predicted_building) == true_building))
    return out


def coded_report(
    predicted_xy: np.ndarray,
    true_xy: np.ndarray,
    predicted_code: np.ndarray,
    true_code: np.ndarray,
    split: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
    constants: StandardConstants = StandardConstants(),
    floors: bool = True,
) -> dict[str, float]:
    """`standard_report` of positions whose floor (and building) come as one code per sample,
    `split` turning codes into (floor, building or None) (`jaxfp.data.places.split_floor_code`,
    passed in: eval does not read data's encodings); 2-D fields only where `floors` is False."""
    predicted_floor, predicted_building = split(np.ravel(predicted_code))
    true_floor, true_building = split(np.ravel(true_code))
    if not floors:
        predicted_floor = true_floor = None
    return standard_report(
        np.reshape(predicted_xy, (-1, 2)),
        np.reshape(true_xy, (-1, 2)),
        predicted_floor,
        true_floor,
        predicted_building,
        true_building,
        constants,
    )


def standard_table(
    rows: Mapping[str, Mapping[str, object]], constants: StandardConstants
) -> dict[str, dict[str, Any]]:
    """{caption: table} of the rows that carry the standard fields, for `write_results(tables=...)`;
    empty when none does (a set without floors)."""
    shown = {name: row for name, row in rows.items() if "ipin_mean" in row}
    if not shown:
        return {}
    columns = [c for c in COLUMNS if any(c in r for r in shown.values())]
    return {constants.caption(): table(shown, columns)}


def majority_label(values: np.ndarray | None, n: int) -> np.ndarray | None:
    """`n` copies of the most common label in `values` (None stays None): the floor or building of
    a model that estimates x, y only."""
    if values is None:
        return None
    labels, counts = np.unique(values, return_counts=True)
    return np.full(n, labels[np.argmax(counts)])

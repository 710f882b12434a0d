"""How GUFU's protocol scores a database and a batch's locations, one line per choice:

- RSS error: per reference point, the mean dBm of the records (database) and of the period's
  training samples (measured) per AP, an AP counting at a point where at least half the samples
  detect it; mean |database - measured| over the (point, AP) pairs the period detects, a database
  without the AP counting as `missing_dbm` (`rss_error`: one-sided, a spurious or departed AP
  costs nothing).
- symmetric RSS error (`detection_errors`), over the union of both AP sets at the shared points:
  the value error on the pairs both detect, the false-detection rate (the database hears, the
  measurement does not; per pair the database hears) and the missed-detection rate (the
  measurement hears, the database does not; per pair the measurement hears).
- a place is (x, y) on a one-floor site and (x, y, `floor_height_m` x floor) on several floors, for
  every method: the UJI library's floors 3 and 5 share their (x, y) points, and the paper keeps one
  database per floor; the location error is horizontal, the floor is the nearest database floor
  to the predicted height.
- drift capture: the records' change against the drift measured at the shared points (cosine),
  on the (point, AP) pairs both databases and the measurement hold.
- the ISO/IEC 18305 and IPIN fields of a batch's places (`located_standard`): the estimate's floor
  is the one `iso18305.estimated_floors` gives (a one-floor database: its floor); no building term (every
  site here is one building).
"""

from __future__ import annotations

import numpy as np

from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants, estimated_floors, standard_report
from jaxfp.eval.metrics import rss_mae


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


def _on_measured_points(
    db_rss: np.ndarray,
    db_ap_ids: np.ndarray,
    db_xy: np.ndarray,
    measured: FingerprintSet,
    db_floor: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(database point means over the measured APs, NaN where the database lacks the AP or does
    not detect it; measured point means), both at the points the two share."""
    db_means, truth = _shared_point_means(db_rss, db_xy, measured, db_floor)
    if not np.isfinite(truth).any():
        raise ValueError(
            f"{measured.source}: nothing to score: no AP detected (by at least half the samples) "
            "at a reference point the database shares"
        )
    column = {ap: i for i, ap in enumerate(db_ap_ids.tolist())}
    at = np.array([column.get(ap, -1) for ap in measured.ap_ids.tolist()], np.int64)
    return np.where(at[None] >= 0, db_means[:, np.maximum(at, 0)], np.nan), truth


def _shared_point_means(
    db_rss: np.ndarray,
    db_xy: np.ndarray,
    measured: FingerprintSet,
    db_floor: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(database point means, measured point means) at the points the two share, each over its
    own AP set."""
    by_floor = db_floor is not None and measured.floor is not None
    db_points, db_means = point_means(db_rss, db_xy, db_floor if by_floor else None)
    m_points, m_means = point_means(measured.rss, measured.xy, measured.floor if by_floor else None)
    index = {tuple(p): i for i, p in enumerate(db_points)}
    shared = [(m, index[tuple(p)]) for m, p in enumerate(m_points) if tuple(p) in index]
    if not shared:
        raise ValueError(f"{measured.source}: nothing to score: no reference point is shared")
    return db_means[[d for _, d in shared]], m_means[[m for m, _ in shared]]


def detection_errors(
    db_rss: np.ndarray,
    db_ap_ids: np.ndarray,
    db_xy: np.ndarray,
    measured: FingerprintSet,
    db_floor: np.ndarray | None = None,
) -> dict[str, float]:
    """The symmetric RSS error at the shared points over both AP sets: `value_error_db` (mean
    |database - measured| where both detect; NaN where no pair is), `false_detection_rate`
    (share of the pairs the database detects that the measurement does not: spurious values and
    departed APs) and `missed_detection_rate` (share of the pairs the measurement detects that
    the database does not)."""
    db_means, m_means = _shared_point_means(db_rss, db_xy, measured, db_floor)
    union = list(dict.fromkeys([*db_ap_ids.tolist(), *measured.ap_ids.tolist()]))

    def over_union(means: np.ndarray, ids: np.ndarray) -> np.ndarray:
        column = {ap: i for i, ap in enumerate(ids.tolist())}
        at = np.array([column.get(ap, -1) for ap in union], np.int64)
        return np.where(at[None] >= 0, means[:, np.maximum(at, 0)], np.nan)

    db, truth = over_union(db_means, db_ap_ids), over_union(m_means, measured.ap_ids)
    db_hears, m_hears = np.isfinite(db), np.isfinite(truth)
    both = db_hears & m_hears
    return {
        "value_error_db": float(np.abs(db - truth)[both].mean()) if both.any() else float("nan"),
        "false_detection_rate": float((db_hears & ~m_hears).sum() / max(db_hears.sum(), 1)),
        "missed_detection_rate": float((m_hears & ~db_hears).sum() / max(m_hears.sum(), 1)),
    }


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
    db_rows, truth = _on_measured_points(db_rss, db_ap_ids, db_xy, measured, db_floor)
    estimate = np.where(np.isfinite(db_rows), db_rows, missing_dbm)
    return rss_mae(estimate, truth, np.isfinite(truth))


def drift_capture(
    before: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    db_xy: np.ndarray,
    measured: FingerprintSet,
    db_floor: np.ndarray | None = None,
) -> dict[str, float]:
    """How an update's change of the records compares with the drift measured at the shared points.

    `before`/`after` are (rss, ap_ids) of the database. Over the (point, AP) pairs where both
    databases and the measurement have a value: mean |change| and mean |drift| (dB), and the
    cosine between the change and the drift (1: the records moved the way the site did; 0: the
    change is unrelated to the drift; NaN where nothing changed). An AP the update adds or drops
    is outside these pairs: the AP counts and the RSS error speak for it.
    """
    old, truth = _on_measured_points(*before, db_xy, measured, db_floor)
    new, _ = _on_measured_points(*after, db_xy, measured, db_floor)
    both = np.isfinite(old) & np.isfinite(new) & np.isfinite(truth)
    change, drift = (new - old)[both], (truth - old)[both]
    norm = float(np.linalg.norm(change) * np.linalg.norm(drift))
    return {
        "record_change_db": float(np.abs(change).mean()) if both.any() else 0.0,
        "measured_drift_db": float(np.abs(drift).mean()) if both.any() else 0.0,
        "drift_alignment": float(change @ drift / norm) if norm > 0 else float("nan"),
    }


def forgetting_check(
    before_ids: np.ndarray, after_ids: np.ndarray, measured: FingerprintSet
) -> dict[str, int]:
    """An update's AP removals checked one by one against the period's measured map: removed
    APs the measurement still hears somewhere (removed wrongly), removed APs it hears nowhere
    (departed and forgotten), and APs the database keeps that it hears nowhere (departed, not
    forgotten: an AP out of range of every measured point counts as departed)."""
    heard = set(measured.ap_ids[measured.detected.any(0)].tolist())
    kept = set(np.asarray(after_ids).tolist())
    removed = set(np.asarray(before_ids).tolist()) - kept
    return {
        "aps_removed_still_heard": len(removed & heard),
        "aps_removed_departed": len(removed - heard),
        "aps_kept_departed": len(kept - heard),
    }


def places(fingerprints: FingerprintSet, floor_height_m: float, floors: np.ndarray) -> np.ndarray:
    """(N, 2) positions on one floor; (N, 3) with the floor's height when `floors` holds several."""
    if len(floors) < 2 or floor_height_m <= 0:
        return fingerprints.xy
    return np.c_[fingerprints.xy, floor_height_m * fingerprints.floor].astype(np.float32)


def located_standard(
    located: np.ndarray,
    batch: FingerprintSet,
    floor_height_m: float,
    floors: np.ndarray | None,
    constants: StandardConstants,
) -> dict[str, float]:
    """The ISO/IEC 18305 and IPIN fields of a batch's located places (N, 2 or 3) against its
    truth; `floors`: the database's floors (None: it has no floor labels). The 2-D fields alone
    where there is no floor to score: no labels, or several floors pooled into 2-D places."""
    xy = located[:, :2]
    floor = None if floors is None else estimated_floors(located, floor_height_m, floors)
    if floor is None or batch.floor is None:
        return standard_report(xy, batch.xy, constants=constants)
    return standard_report(xy, batch.xy, floor, batch.floor, constants=constants)

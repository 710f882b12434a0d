"""The radio map (RP × AP) and the signal scale FPN's networks see.

- §3.2.2: a reading below −95 dBm counts as not received and is −100 dBm, in the map and in every
  measurement; the map is the mean per reference point of the readings after that rule.
- Networks see `(dBm + 100) / 100`, so "not received" is 0 (a choice: the paper gives no scale).
- AP removal (§3.2.1, training only): a removed AP reads "not received" in the map and in the
  signals alike — the AP is gone from the site; shapes never change.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.data.places import ReferencePoints
from jaxfp.data.types import FingerprintSet


def received_dbm(
    rss: np.ndarray, detected: np.ndarray, threshold_dbm: float, missing_dbm: float
) -> np.ndarray:
    """(n, L) dBm with undetected and below-threshold readings set to `missing_dbm`."""
    keep = detected & (np.nan_to_num(rss, nan=missing_dbm) >= threshold_dbm)
    return np.where(keep, rss, missing_dbm).astype(np.float32)


def to_unit(dbm: np.ndarray, missing_dbm: float) -> np.ndarray:
    """dBm → the networks' scale: 0 at `missing_dbm`, +1 per 100 dB above it."""
    return ((dbm - missing_dbm) / 100.0).astype(np.float32)


def radio_map(
    fs: FingerprintSet, points: ReferencePoints, threshold_dbm: float, missing_dbm: float
) -> tuple[np.ndarray, np.ndarray]:
    """((R, L) mean dBm per reference point, (R,) scans per point); a point with no scan in `fs`
    reads `missing_dbm` everywhere and has count 0 (the caller decides what it keeps there)."""
    point = points.locate(fs)
    dbm = received_dbm(fs.rss, fs.detected, threshold_dbm, missing_dbm)
    inside = point >= 0
    sums = np.zeros((len(points), fs.n_aps), np.float64)
    np.add.at(sums, point[inside], dbm[inside])
    counts = np.bincount(point[inside], minlength=len(points))
    mean = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], missing_dbm)
    return mean.astype(np.float32), counts


def removal_mask(key: jax.Array, n_aps: int, rate: float) -> jax.Array:
    """(L,) True for the APs kept; each AP removed with probability `rate`."""
    return jax.random.bernoulli(key, 1.0 - rate, (n_aps,))


def remove_aps(unit_signals: jax.Array, kept: jax.Array) -> jax.Array:
    """Signals (..., L) on the unit scale with the removed APs' columns at 'not received'."""
    return jnp.where(kept, unit_signals, 0.0)

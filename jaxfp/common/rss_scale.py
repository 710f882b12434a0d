"""The RSS + 120 dB scale (GUFU §7.3): a detected reading becomes a positive number, 'not detected'
becomes 0. GUFU's graph weights are RSS + 120; its networks and the `gufu` representation see
(RSS + 120) / 120."""

from __future__ import annotations

import numpy as np

OFFSET_DB = 120.0


def to_unit(rss_dbm: np.ndarray, detected: np.ndarray | None = None) -> np.ndarray:
    """(RSS + 120) / 120 as float32; 0 where not detected (NaN, or `detected` False)."""
    rss_dbm = np.asarray(rss_dbm)
    detected = np.isfinite(rss_dbm) if detected is None else np.asarray(detected, bool)
    detected = np.broadcast_to(detected, rss_dbm.shape)
    # Only the detected entries are converted (in float64, then rounded once): most of a scan's
    # entries are not detected, and whole-array passes cost ~60 ms on 10,000 x 450
    value = np.nan_to_num(rss_dbm[detected].astype(np.float64), nan=-OFFSET_DB)
    out = np.zeros(rss_dbm.shape, np.float32)
    out[detected] = (value + OFFSET_DB) / OFFSET_DB
    return out


def from_unit(x: np.ndarray, floor_dbm: float) -> np.ndarray:
    """Back to dBm (float32); values at or below `floor_dbm` count as not detected (NaN)."""
    dbm = np.asarray(x, np.float64) * OFFSET_DB - OFFSET_DB
    return np.where(dbm > floor_dbm, dbm, np.nan).astype(np.float32)

"""The fingerprint-image transformer (eq. 1) and the AP selection it needs.

One line per choice:
- APs: the `n_aps` APs detected in the most training scans (ties: strongest mean reading); a large
  site's full AP set would make an image of hundreds of thousands of pixels.
- positive scale: f = RSS + 120 dB with a missed AP at `missing_dbm` (-110 dBm -> f = 10), so every
  f_k > 0 and f*_{j,k} = (f_j - f_k) / f_k stays finite (eq. 1 divides by f_k).
- without the transform (the ablation): the vector f / 120 laid out row by row on the smallest
  square that holds it, zero padded (the CNN-localizer reading of a 1-D fingerprint as an image).
"""

from __future__ import annotations

import math

import numpy as np

from jaxfp.common.rss_scale import OFFSET_DB


def select_aps(rss_dbm: np.ndarray, n_aps: int) -> np.ndarray:
    """Indices of the `n_aps` APs detected (finite) in the most rows of `rss_dbm` (n, APs)."""
    detected = np.isfinite(rss_dbm)
    count = detected.sum(0)
    strength = np.where(detected, rss_dbm, -200.0).sum(0) / np.maximum(count, 1)
    order = np.lexsort((-strength, -count))  # most detected first, then strongest
    return np.sort(order[: min(n_aps, rss_dbm.shape[1])])


def positive_rss(rss_dbm: np.ndarray, missing_dbm: float) -> np.ndarray:
    """RSS + 120 with NaN (not detected) at `missing_dbm`; float32, every entry > 0."""
    if missing_dbm <= -OFFSET_DB:
        raise ValueError(f"missing_dbm: expected above {-OFFSET_DB} dBm, got {missing_dbm}")
    filled = np.where(np.isfinite(rss_dbm), rss_dbm, missing_dbm)
    return (np.maximum(filled, missing_dbm) + OFFSET_DB).astype(np.float32)


def fingerprint_image(f: np.ndarray) -> np.ndarray:
    """Eq. 1: (..., N) positive fingerprints -> (..., N, N) images x[j, k] = (f_j - f_k) / f_k."""
    return ((f[..., :, None] - f[..., None, :]) / f[..., None, :]).astype(np.float32)


def vector_image(f: np.ndarray) -> np.ndarray:
    """The ablation's input: (..., N) -> (..., S, S), S = ceil(sqrt(N)), f / 120 row by row."""
    side = math.isqrt(f.shape[-1] - 1) + 1
    padded = np.zeros((*f.shape[:-1], side * side), np.float32)
    padded[..., : f.shape[-1]] = f / OFFSET_DB
    return padded.reshape(*f.shape[:-1], side, side)

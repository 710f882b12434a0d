"""The fingerprint-image transformer (eq. 1) and the AP selection it needs.

One line per choice:
- APs: the `n_aps` APs detected in the most training scans (ties: strongest mean reading); a large
  site's full AP set would make an image of hundreds of thousands of pixels.
- values (`image.values`): "dbm" (the paper: eq. 1 on the readings in dBm, so a device's gain,
  RSS · a, leaves the image unchanged; a dBm reading is never 0, so the division is defined) or
  "positive" (an ablation: RSS + 120 dB, which a gain does change).
- a missed AP (the paper does not say how its N readings are filled): it reads `missing_dbm`
  (-110 dBm, below every detected reading), so a miss is the weakest reading, never a large pixel.
- without the transform (the ablation): the vector (f + 120) / 120 laid out row by row on the
  smallest square that holds it, zero padded (the CNN-localizer reading of a 1-D fingerprint as
  an image).
"""

from __future__ import annotations

import math

import numpy as np

from jaxfp.common.rss_scale import OFFSET_DB

VALUES = ("dbm", "positive")


def select_aps(rss_dbm: np.ndarray, n_aps: int) -> np.ndarray:
    """Indices of the `n_aps` APs detected (finite) in the most rows of `rss_dbm` (n, APs)."""
    detected = np.isfinite(rss_dbm)
    count = detected.sum(0)
    strength = np.where(detected, rss_dbm, -200.0).sum(0) / np.maximum(count, 1)
    order = np.lexsort((-strength, -count))  # most detected first, then strongest
    return np.sort(order[: min(n_aps, rss_dbm.shape[1])])


def filled_dbm(rss_dbm: np.ndarray, missing_dbm: float) -> np.ndarray:
    """Readings in dBm with NaN (not detected) and anything weaker at `missing_dbm`; float32."""
    if not -OFFSET_DB < missing_dbm < 0:
        raise ValueError(f"missing_dbm: expected between {-OFFSET_DB} and 0 dBm, got {missing_dbm}")
    filled = np.where(np.isfinite(rss_dbm), rss_dbm, missing_dbm)
    return np.minimum(np.maximum(filled, missing_dbm), -1.0).astype(np.float32)


def positive_rss(rss_dbm: np.ndarray, missing_dbm: float) -> np.ndarray:
    """RSS + 120 with NaN (not detected) at `missing_dbm`; float32, every entry > 0."""
    return (filled_dbm(rss_dbm, missing_dbm) + OFFSET_DB).astype(np.float32)


def image_values(rss_dbm: np.ndarray, values: str, missing_dbm: float) -> np.ndarray:
    """The f of eq. 1: readings in dBm ("dbm") or RSS + 120 ("positive"), misses filled."""
    if values == "dbm":
        return filled_dbm(rss_dbm, missing_dbm)
    if values == "positive":
        return positive_rss(rss_dbm, missing_dbm)
    raise ValueError(f"image.values: expected one of {VALUES}, got {values!r}")


def fingerprint_image(f: np.ndarray) -> np.ndarray:
    """Eq. 1: (..., N) fingerprints -> (..., N, N) images x[j, k] = (f_j - f_k) / f_k."""
    return ((f[..., :, None] - f[..., None, :]) / f[..., None, :]).astype(np.float32)


def vector_image(rss_dbm: np.ndarray, missing_dbm: float) -> np.ndarray:
    """The ablation's input: (..., N) readings -> (..., S, S), S = ceil(sqrt(N)), (f + 120) / 120
    row by row."""
    f = positive_rss(rss_dbm, missing_dbm)
    side = math.isqrt(f.shape[-1] - 1) + 1
    padded = np.zeros((*f.shape[:-1], side * side), np.float32)
    padded[..., : f.shape[-1]] = f / OFFSET_DB
    return padded.reshape(*f.shape[:-1], side, side)

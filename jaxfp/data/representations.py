"""RSS representations used in the literature; each maps 'not detected' to a defined number.

positive/exponential/powed follow Torres-Sospedra et al., "Comprehensive analysis of distance and
similarity measures for Wi-Fi fingerprinting indoor positioning systems" (ESWA 2015): positive =
RSS - min (0 if not detected), exponential = exp(positive/alpha) / exp(-min/alpha) with alpha = 24,
powed = positive^beta / (-min)^beta with beta = e. gufu = (RSS + 120) / 120 (GUFU §7.3), 0 if not
detected. dbm keeps dBm and puts `min` where not detected.
"""

from __future__ import annotations

import math

import numpy as np

from jaxfp.common.rss_scale import to_unit

KINDS = ("dbm", "positive", "exponential", "powed", "gufu")


def fit_min_rss(rss: np.ndarray, detected: np.ndarray) -> float:
    """One below the weakest detected reading, so every detected value stays above 'not detected'."""
    if not detected.any():
        raise ValueError("fit_min_rss: no detected RSS value to fit on")
    return float(np.min(rss[detected])) - 1.0


def represent(
    rss: np.ndarray,
    detected: np.ndarray,
    kind: str,
    min_rss: float,
    alpha: float = 24.0,
    beta: float = math.e,
) -> np.ndarray:
    """float32 matrix of `kind`; `min_rss` must come from the reference set, not the queries."""
    if kind not in KINDS:
        raise ValueError(f"representation: expected one of {KINDS}, got {kind!r}")
    if min_rss >= 0:
        raise ValueError(f"min_rss: expected a negative dBm value, got {min_rss}")
    dbm = np.where(detected, np.maximum(np.nan_to_num(rss, nan=min_rss), min_rss), min_rss)
    positive = dbm - min_rss
    if kind == "dbm":
        out = dbm
    elif kind == "positive":
        out = positive
    elif kind == "exponential":
        out = np.where(detected, np.exp(positive / alpha) / np.exp(-min_rss / alpha), 0.0)
    elif kind == "powed":
        out = positive**beta / (-min_rss) ** beta
    else:
        out = to_unit(dbm, detected)
    return out.astype(np.float32)

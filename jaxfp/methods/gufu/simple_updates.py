"""The two databases GUFU is compared with besides its ablations: never updated (`static`) and
location-then-average (`wknn_average`), one line per choice:

- locations: WkNN (k = 3) in the normalised-RSS space (RSS + 120 scale) of the database.
- location-then-average: every database record within `radius_m` of a batch sample's estimate
  moves towards that sample's RSS by `blend / (1 + distance)` on the APs both detect; APs only the
  sample detects are added to the records at the same blend.
"""

from __future__ import annotations

import numpy as np

from jaxfp.common.neighbours import idw_average
from jaxfp.common.rss_scale import to_unit


def wknn_locations(
    db_rss: np.ndarray, db_xy: np.ndarray, rss: np.ndarray, k: int = 3
) -> np.ndarray:
    return idw_average(to_unit(rss), to_unit(db_rss), db_xy, k)


def location_then_average(
    db_rss: np.ndarray,
    db_xy: np.ndarray,
    rss: np.ndarray,
    located: np.ndarray,
    radius_m: float,
    blend: float,
) -> np.ndarray:
    """Each sample in turn moves the records within `radius_m` of its location towards itself by
    blend / (1 + distance): shared APs are blended, APs only the sample hears are copied in."""
    out = db_rss.copy()
    for sample, p in zip(rss, located, strict=True):
        d = np.linalg.norm(db_xy - p, axis=1)
        rows = np.flatnonzero(d <= radius_m)
        w = (blend / (1.0 + d[rows]))[:, None]
        block, seen = out[rows], np.isfinite(sample)[None]
        blended = np.where(seen & np.isfinite(block), (1 - w) * block + w * sample, block)
        out[rows] = np.where(seen & ~np.isfinite(block), sample, blended)
    return out

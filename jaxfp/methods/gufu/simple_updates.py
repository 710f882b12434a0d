"""The two databases GUFU is compared with besides its ablations: never updated (`static`) and
location-then-average (`wknn_average`), one line per choice:

- locations: WkNN (k = 3) in the normalised-RSS space (RSS + 120 scale) of the database.
- location-then-average: every database record within `radius_m` of a batch sample's estimate
  moves towards that sample's RSS by `blend / (1 + distance)` on the APs both detect; APs only the
  sample detects are added to the records at the same blend.
- neighbour averaging (GUFU §7.1's update for iToLoc, which updates no records itself): a located
  sample's record is the record nearest its estimate, the most similar one where several share
  the point; it becomes the similarity-weighted mean of itself, its neighbours among the records
  (cosine > `threshold` on the normalised RSS, at most `max_neighbours`) and the sample, per AP
  over those that detect it; the record's detection pattern stays (the baselines of §7.2 add no
  new APs).
"""

from __future__ import annotations

import numpy as np

from jaxfp.common.neighbours import idw_average
from jaxfp.common.rss_scale import to_unit
from jaxfp.graphs.bipartite import similar_pairs


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


def neighbour_average(
    db_rss: np.ndarray,
    db_places: np.ndarray,
    rss: np.ndarray,
    located: np.ndarray,
    threshold: float,
    max_neighbours: int,
) -> np.ndarray:
    """GUFU §7.1's record update for a locator: each sample in turn rewrites the record at its
    estimate as the similarity-weighted mean of that record, its similar records and the sample."""
    out = db_rss.copy()
    unit = to_unit(db_rss)
    norms = np.maximum(np.linalg.norm(unit, axis=1), 1e-12)
    neighbours = similar_pairs(unit, threshold, max_neighbours)
    linked = [[] for _ in range(len(db_rss))]
    for i, j in neighbours:
        linked[i].append(j)
        linked[j].append(i)
    sample_unit = to_unit(rss)
    for sample, unit_sample, place in zip(rss, sample_unit, located, strict=True):
        distance = np.linalg.norm(db_places - place, axis=1)
        nearest = np.flatnonzero(distance <= distance.min() + 1e-6)
        cosine = (
            unit[nearest] @ unit_sample / (norms[nearest] * max(np.linalg.norm(unit_sample), 1e-12))
        )
        record = nearest[np.argmax(cosine)]
        rows = [record, *linked[record]]
        weights = unit[rows] @ unit[record] / (norms[rows] * norms[record])
        values = np.vstack([out[rows], sample])
        w = np.r_[weights, max(float(cosine.max()), 0.0)][:, None] * np.isfinite(values)
        mean = np.nansum(values * w, 0) / np.maximum(w.sum(0), 1e-12)
        out[record] = np.where(np.isfinite(out[record]) & (w.sum(0) > 0), mean, out[record])
    return out

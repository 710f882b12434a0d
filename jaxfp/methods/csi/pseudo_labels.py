"""Pseudo labels for the consistency framework (CSI paper §III-C), one line per choice:

- Two independent sources, neither fitted on the rows it labels (cross-fitting):
  A, `profile_labels`: inverse-distance WkNN over the anchors (labelled rows, later also kept
  pseudo labels) of the same serving sector, in a TA-invariant CSI signature
  (`jaxfp.data.csi.ta_invariant_profile`) — the CSI's own similarity, not a model's;
  B: a structurally different network (another backbone) trained on the anchors only, predicting
  rows it never saw.
- A row is kept where A and B agree within a radius r; its label is their mean (the paper's rule,
  applied to the two sources).
- The kept-label report (`kept_label_report`) gives, per radius, how many rows are kept, their true
  error and the stage-1 model's error on the same rows (the data set's truth: a diagnostic; only
  our oracle-gate variant lets it decide whether stage 3 runs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxfp.common.neighbours import idw_average


def profile_labels(
    signature_query: np.ndarray,
    sector_query: np.ndarray,
    signature_anchor: np.ndarray,
    sector_anchor: np.ndarray,
    xy_anchor: np.ndarray,
    k: int,
) -> np.ndarray:
    """Source A: per query row, the IDW mean position of its k most similar anchors (unit-norm
    signatures, so Euclidean distance ranks as correlation) among the anchors of its own sector;
    a sector without anchors falls back to all anchors."""
    out = np.zeros((len(signature_query), 2))
    for sector in np.unique(sector_query):
        rows = np.flatnonzero(sector_query == sector)
        anchors = np.flatnonzero(sector_anchor == sector)
        if len(anchors) == 0:
            anchors = np.arange(len(xy_anchor))
        out[rows] = idw_average(
            signature_query[rows], signature_anchor[anchors], xy_anchor[anchors], k
        )
    return out


def assert_cross_fitted(fitted_rows: np.ndarray, scored_rows: np.ndarray, what: str) -> None:
    """Cross-fitting's invariant: no source labels a row it was fitted on (anchors of A, training
    rows of B)."""
    both = np.intersect1d(fitted_rows, scored_rows)
    if len(both):
        raise RuntimeError(
            f"{what}: {len(both)} rows are both fitted on and scored (first {both[:5].tolist()}); "
            "the pseudo-label sources must only label rows they never saw with a label"
        )


def agreeing_labels(
    position_a: np.ndarray, position_b: np.ndarray, radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask, mean position): the consistency rule of stage 2."""
    kept = np.linalg.norm(position_a - position_b, axis=-1) < radius_m
    return kept, 0.5 * (position_a + position_b)


def kept_label_report(
    position_a: np.ndarray,
    position_b: np.ndarray,
    truth: np.ndarray,
    model_position: np.ndarray,
    radii_m: Sequence[float],
) -> list[dict[str, float]]:
    """Per radius r: rows kept (count and share), the kept labels' mean true error, and the
    stage-1 model's mean error on the same rows (NaN where nothing is kept)."""
    report = []
    for r in radii_m:
        kept, label = agreeing_labels(position_a, position_b, r)
        label_error = np.linalg.norm(label - truth, axis=-1)
        model_error = np.linalg.norm(model_position - truth, axis=-1)
        any_kept = bool(kept.any())
        report.append(
            {
                "radius_m": float(r),
                "kept": int(kept.sum()),
                "kept_share": float(kept.mean()) if len(kept) else 0.0,
                "label_error_m": float(label_error[kept].mean()) if any_kept else float("nan"),
                "model_error_m": float(model_error[kept].mean()) if any_kept else float("nan"),
            }
        )
    return report

"""Pseudo labels for the consistency framework (CSI paper §III-C), one line per choice:

- A: WkNN in the model's feature space over the labelled rows (L2-normalised features).
- B: the model's position plus the spatial IDW interpolation of its residuals (truth - prediction)
  at the k labelled anchors nearest that position.
- stage 2 keeps a row where A's and B's fine-tuned models agree within a radius; its label is their mean.
"""

from __future__ import annotations

import numpy as np

from jaxfp.common.neighbours import idw_average


def feature_knn_labels(
    features_u: np.ndarray, features_l: np.ndarray, xy_l: np.ndarray, k: int
) -> np.ndarray:
    """Pseudo labels A: inverse-distance WkNN over L2-normalised features of the labelled rows."""
    fu = features_u / np.maximum(np.linalg.norm(features_u, axis=-1, keepdims=True), 1e-12)
    fl = features_l / np.maximum(np.linalg.norm(features_l, axis=-1, keepdims=True), 1e-12)
    return idw_average(fu, fl, xy_l, k)


def spatial_residual_labels(
    predicted_u: np.ndarray, predicted_l: np.ndarray, xy_l: np.ndarray, k: int
) -> np.ndarray:
    """Pseudo labels B: the model's position corrected by the IDW-interpolated residuals of the
    k labelled anchors nearest (in space) to that position."""
    return predicted_u + idw_average(predicted_u, xy_l, xy_l - predicted_l, k)


def agreeing_labels(
    position_a: np.ndarray, position_b: np.ndarray, radius_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(kept mask, mean position): the consistency rule of stage 2."""
    kept = np.linalg.norm(position_a - position_b, axis=-1) < radius_m
    return kept, 0.5 * (position_a + position_b)

"""Pseudo labels for the consistency framework (CSI paper §III-A), one line per choice:

- Two interpolation methods label the unlabelled rows from the anchors (labelled rows, later also
  kept pseudo labels), each an inverse-distance WkNN (`profile_labels`) over the anchors of the
  same serving sector, in two different CSI signatures of the same measurement:
  A, `jaxfp.data.csi.ta_invariant_profile` (per angle bin, the Fourier magnitude of its delay
  profile: TA-invariant, the relative timing between angle bins lost);
  B, `aligned_profile` (the angle-delay amplitude circularly shifted to its strongest delay tap:
  TA removed by alignment, the relative timing between angle bins kept, the delay spectrum's
  fine structure beyond `taps` lost). Their diversity is the signature, not the neighbourhood rule.
- No interpolation labels a row it was given as an anchor (`assert_cross_fitted`).
- A row is kept where the two fine-tuned models agree within a radius r; its label is their mean
  (`agreeing_labels`, the paper's rule).
- The kept-label report (`kept_label_report`) gives, per radius, how many rows are kept, their true
  error and the stage-1 model's error on the same rows: the data set's truth, a diagnostic only.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.common.neighbours import idw_average
from jaxfp.data.csi import angle_delay


def profile_labels(
    signature_query: np.ndarray,
    sector_query: np.ndarray,
    signature_anchor: np.ndarray,
    sector_anchor: np.ndarray,
    xy_anchor: np.ndarray,
    k: int,
) -> np.ndarray:
    """An interpolation: per query row, the IDW mean position of its k most similar anchors
    (unit-norm signatures, so Euclidean distance ranks as correlation) among the anchors of its
    own sector; a sector without anchors falls back to all anchors."""
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


def aligned_profile(csi: jax.Array, taps: int, lead: int) -> jax.Array:
    """Interpolation B's signature: (B, ue, bs, subcarriers) -> (B, bs * taps) float32, unit norm.
    The angle-delay amplitude (summed over UE antennas) from `lead` taps before its strongest tap
    (power summed over angles), `taps` taps long, circular. A timing advance shifts every angle's
    delay profile alike; the alignment removes it to within the fraction of a tap."""
    amplitude = jnp.sqrt(jnp.sum(jnp.abs(angle_delay(csi)) ** 2, axis=1))  # (B, bs, delay taps)
    length = amplitude.shape[-1]
    if not 0 < taps <= length or not 0 <= lead < taps:
        raise ValueError(
            f"aligned_profile: expected 0 <= lead < taps <= {length} delay taps, "
            f"got taps={taps}, lead={lead}"
        )
    peak = jnp.argmax(jnp.sum(amplitude**2, axis=1), axis=-1)  # (B,)
    window = (peak[:, None] - lead + jnp.arange(taps)[None, :]) % length  # (B, taps)
    aligned = jnp.take_along_axis(amplitude, window[:, None, :], axis=-1)
    flat = aligned.reshape(aligned.shape[0], -1)
    norm = jnp.maximum(jnp.linalg.norm(flat, axis=-1, keepdims=True), 1e-30)
    return (flat / norm).astype(jnp.float32)


def assert_cross_fitted(fitted_rows: np.ndarray, scored_rows: np.ndarray, what: str) -> None:
    """Cross-fitting's invariant: no interpolation labels a row it was given as an anchor."""
    both = np.intersect1d(fitted_rows, scored_rows)
    if len(both):
        raise RuntimeError(
            f"{what}: {len(both)} rows are both fitted on and scored (first {both[:5].tolist()}); "
            "an interpolation must only label rows that are not its anchors"
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

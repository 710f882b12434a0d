"""GUFU's feature extractor (§4.1) as a stage: the autoencoder over the database's AP set, trained
to reconstruct the records (eq. 2, and eq. 10 after an update) or to align them with their
updated codes (eq. 10 as alignment, ours), and the encoding and decoding of RSS in dBm.

- RSS normalisation: (dBm + 120) / 120, not detected -> 0 (§7.3); decoded values at or below
  `detect_floor_dbm` count as not detected.
- eq. 2's norm weights a detected entry `ae_detected_weight` against an undetected one's 1 (1 =
  the plain Frobenius norm, whose ~90 % zeros pull the decoded detections under the floor), and
  dropout sits where `ae_dropout_at` says (`nets.Autoencoder`).
- the offline stage is checked (`FeatureExtractor.check`): a decoder that gives the detected
  values back worse than `ae_max_error_db`, or most of them at or below the floor, stops the run
  (`OfflineStageFailed`) instead of rewriting the database with it.
- The AP axis is padded to a budget (`budgets.autoencoder_width`): zero inputs, outputs masked out
  of both losses, so the padding learns nothing and an update that changes the AP set inside the
  budget reuses the compiled step.
- When the AP set changes, the APs kept keep their input rows and output columns
  (`carry_over_aps`); new APs start from a fresh init.
- `feature_method="pca"` (Fig. 16's PCA): codes are the principal components of the database's
  normalised RSS and decoding their inverse (`PcaExtractor`), refitted wherever the autoencoder
  retrains. Fig. 16's t-SNE and UMAP have no out-of-sample encoder or inverse, which GUFU's
  rewrite needs, and its MLP and CNN extractors are not described: not built.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.common.rss_scale import from_unit, to_unit
from jaxfp.methods.gufu import budgets
from jaxfp.methods.gufu.losses import AutoencoderStatic, alignment_loss, autoencoder_loss
from jaxfp.methods.gufu.nets import Autoencoder, carry_over_inputs

__all__ = [
    "Autoencoder",
    "FeatureExtractor",
    "Fit",
    "OfflineStageFailed",
    "PcaExtractor",
    "carry_over_aps",
    "padded_unit",
]


class OfflineStageFailed(RuntimeError):
    """The offline autoencoder cannot give the database back: updating with it would rewrite
    every record with its errors."""


# (name, loss_fn, static, params, data, steps) -> (params, final loss): the study's inner fit,
# which draws the fit's key from its name and the stage it runs in.
Fit = Callable[[str, Callable, Any, Any, Any, int], tuple[Any, float]]


def carry_over_aps(old: Any, old_ids: np.ndarray, fresh: Any, new_ids: np.ndarray) -> Any:
    """Autoencoder params for `new_ids`: every AP both sets share keeps its learned weights."""
    position = {ap: i for i, ap in enumerate(old_ids.tolist())}
    new_at = np.array([i for i, ap in enumerate(new_ids.tolist()) if ap in position], np.int64)
    old_at = np.array([position[new_ids[i]] for i in new_at], np.int64)
    return carry_over_inputs(old, fresh, old_at, new_at)


def padded_unit(rss_dbm: np.ndarray, width: int) -> np.ndarray:
    """Normalised RSS with zero columns up to the autoencoder's padded width."""
    unit = to_unit(rss_dbm)
    return np.pad(unit, ((0, 0), (0, width - unit.shape[1])))


@dataclasses.dataclass
class FeatureExtractor:
    """The autoencoder's settings and state: its params, the AP set its first columns follow and
    its padded input width."""

    code: int
    dropout: float
    batch: int
    detect_floor_dbm: float
    dropout_at: str = "input"
    detected_weight: float = 1.0
    params: Any = None
    ap_ids: np.ndarray | None = None
    width: int = 0

    @classmethod
    def from_settings(cls, g: ml_collections.ConfigDict) -> FeatureExtractor:
        if g.get("feature_method", "autoencoder") == "pca":
            cls = PcaExtractor
        return cls(
            int(g.code),
            float(g.ae_dropout),
            int(g.ae_batch),
            float(g.detect_floor_dbm),
            str(g.ae_dropout_at),
            float(g.ae_detected_weight),
        )

    def model(self, width: int | None = None) -> Autoencoder:
        """The autoencoder over the (padded) AP set it was last trained on, or `width` inputs."""
        width = self.width if width is None else width
        return Autoencoder(width, self.code, dropout=self.dropout, dropout_at=self.dropout_at)

    def train(
        self,
        rss: np.ndarray,
        ap_ids: np.ndarray,
        steps: int,
        fit: Fit,
        init_key: jax.Array,
        align_to: np.ndarray | None = None,
    ) -> float:
        """Eq. (2)/(10): reconstruct the normalised `rss`, or with `align_to` (the records' updated
        codes) align: the encoder maps the RSS to them and the decoder maps them back."""
        width = budgets.autoencoder_width(len(ap_ids), self.width)
        model = self.model(width)
        x = jnp.asarray(padded_unit(rss, width))
        if self.params is None:
            self.params = model.init(init_key, x[:1])
        elif width != self.width or not np.array_equal(self.ap_ids, ap_ids):
            fresh = model.init(init_key, x[:1])
            self.params = carry_over_aps(self.params, self.ap_ids, fresh, ap_ids)
        self.ap_ids, self.width = ap_ids.copy(), width

        static = AutoencoderStatic(model, self.batch, self.detected_weight)
        data = {"x": x, "real_columns": jnp.int32(len(ap_ids))}
        if align_to is None:
            self.params, loss = fit(
                "autoencoder", autoencoder_loss, static, self.params, data, steps
            )
        else:
            data["codes"] = jnp.asarray(align_to)
            self.params, loss = fit(
                "autoencoder_alignment", alignment_loss, static, self.params, data, steps
            )
        return loss

    def encode(self, rss_dbm: np.ndarray) -> np.ndarray:
        if rss_dbm.shape[1] != len(self.ap_ids):  # padding would hide a misaligned AP set
            raise ValueError(
                f"encode: RSS over {rss_dbm.shape[1]} APs, the autoencoder reads {len(self.ap_ids)}"
            )
        x = padded_unit(rss_dbm, self.width)
        return np.asarray(self.model().apply(self.params, jnp.asarray(x), method="encode"))

    def decode_normalised(self, codes: np.ndarray) -> np.ndarray:
        """Decoded RSS on the (RSS + 120) / 120 scale over the real APs."""
        out = self.model().apply(self.params, jnp.asarray(codes), method="decode")
        return np.asarray(out)[:, : len(self.ap_ids)]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return from_unit(self.decode_normalised(codes), self.detect_floor_dbm)

    def reconstruction(self, rss: np.ndarray, codes: np.ndarray) -> dict[str, float]:
        """How well the autoencoder gives `rss` back from `codes`: mean |error| (dB) over the
        detected values and the share of them decoded at or below the detection floor (measured
        on the UJI library's month 1 after 3,000 steps: eq. 2's plain norm with input dropout
        9.6 dB; detections weighted 10, no dropout, 2.3 dB and 0.1 %)."""
        detected = np.isfinite(rss)
        decoded = from_unit(self.decode_normalised(codes), -np.inf)[detected]
        return {
            "ae_error_db": float(np.abs(decoded - rss[detected]).mean()),
            "ae_below_floor": float((decoded <= self.detect_floor_dbm).mean()),
        }

    @staticmethod
    def check(reconstruction: dict[str, float], max_error_db: float, max_below: float) -> None:
        """Stop (`OfflineStageFailed`) when the offline reconstruction misses either bound."""
        error, below = reconstruction["ae_error_db"], reconstruction["ae_below_floor"]
        if not (error <= max_error_db and below <= max_below):  # NaN fails too
            raise OfflineStageFailed(
                f"GUFU's offline stage failed: the autoencoder gives the database's detected "
                f"values back at {error:.1f} dB (bound gufu.ae_max_error_db = {max_error_db:g}) "
                f"with {below:.0%} of them decoded at or below the detection floor (bound "
                f"gufu.ae_max_below_floor = {max_below:.0%}); an update would rewrite every "
                "record with these errors. Train it longer (gufu.ae_steps) or weight the "
                "detections (gufu.ae_detected_weight)."
            )


@dataclasses.dataclass
class PcaExtractor(FeatureExtractor):
    """Fig. 16's PCA in the autoencoder's place: `code` principal components of the normalised
    RSS (centred on the database's mean), decoded by the inverse projection. `params` holds
    {"mean": (A,), "components": (code, A)}; fewer components than `code` pad with zeros."""

    def train(
        self,
        rss: np.ndarray,
        ap_ids: np.ndarray,
        steps: int,
        fit: Fit,
        init_key: jax.Array,
        align_to: np.ndarray | None = None,
    ) -> float:
        """Refit on `rss` (no steps: a PCA is solved); returns its reconstruction MSE."""
        del steps, fit, init_key
        if align_to is not None:
            raise ValueError(
                "feature_method 'pca': eq. 10 as alignment needs a trained encoder; use "
                "gufu.autoencoder_retrain='reconstruct'"
            )
        x = to_unit(rss).astype(np.float64)
        mean = x.mean(0)
        _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
        components = np.zeros((self.code, x.shape[1]))
        components[: min(self.code, len(vt))] = vt[: self.code]
        self.params = {"mean": mean, "components": components}
        self.ap_ids, self.width = ap_ids.copy(), x.shape[1]
        codes = (x - mean) @ components.T
        return float(np.mean((codes @ components + mean - x) ** 2))

    def encode(self, rss_dbm: np.ndarray) -> np.ndarray:
        if rss_dbm.shape[1] != len(self.ap_ids):
            raise ValueError(
                f"encode: RSS over {rss_dbm.shape[1]} APs, the PCA reads {len(self.ap_ids)}"
            )
        x = to_unit(rss_dbm).astype(np.float64)
        codes = (x - self.params["mean"]) @ self.params["components"].T
        return codes.astype(np.float32)

    def decode_normalised(self, codes: np.ndarray) -> np.ndarray:
        out = np.asarray(codes, np.float64) @ self.params["components"] + self.params["mean"]
        return out.astype(np.float32)

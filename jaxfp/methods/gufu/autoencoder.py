"""GUFU's feature extractor (§4.1) as a stage: the autoencoder over the database's AP set, trained
to reconstruct the records (eq. 2, and eq. 10 after an update) or to align them with their
updated codes (eq. 10 as alignment, ours), and the encoding and decoding of RSS in dBm.

- RSS normalisation: (dBm + 120) / 120, not detected -> 0 (§7.3); decoded values at or below
  `detect_floor_dbm` count as not detected.
- The AP axis is padded to a budget (`budgets.autoencoder_width`): zero inputs, outputs masked out
  of both losses, so the padding learns nothing and an update that changes the AP set inside the
  budget reuses the compiled step.
- When the AP set changes, the APs kept keep their input rows and output columns
  (`carry_over_aps`); new APs start from a fresh init.
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

__all__ = ["Autoencoder", "FeatureExtractor", "Fit", "carry_over_aps", "padded_unit"]

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
    params: Any = None
    ap_ids: np.ndarray | None = None
    width: int = 0

    @classmethod
    def from_settings(cls, g: ml_collections.ConfigDict) -> FeatureExtractor:
        return cls(int(g.code), float(g.ae_dropout), int(g.ae_batch), float(g.detect_floor_dbm))

    def model(self) -> Autoencoder:
        """The autoencoder over the (padded) AP set it was last trained on."""
        return Autoencoder(inputs=self.width, code=self.code, dropout=self.dropout)

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
        model = Autoencoder(inputs=width, code=self.code, dropout=self.dropout)
        x = jnp.asarray(padded_unit(rss, width))
        if self.params is None:
            self.params = model.init(init_key, x[:1])
        elif width != self.width or not np.array_equal(self.ap_ids, ap_ids):
            fresh = model.init(init_key, x[:1])
            self.params = carry_over_aps(self.params, self.ap_ids, fresh, ap_ids)
        self.ap_ids, self.width = ap_ids.copy(), width

        static = AutoencoderStatic(model, self.batch)
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
        detected values and the share of them decoded at or below the detection floor (measured:
        after 300 steps on the UJI library's month 1, 36 dB and 93 % -- a decoder that says 'not
        heard' everywhere; after 700, 7.3 dB and 6 %)."""
        detected = np.isfinite(rss)
        decoded = from_unit(self.decode_normalised(codes), -np.inf)[detected]
        return {
            "ae_error_db": float(np.abs(decoded - rss[detected]).mean()),
            "ae_below_floor": float((decoded <= self.detect_floor_dbm).mean()),
        }

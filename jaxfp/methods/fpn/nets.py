"""FPN's networks (Fig. 2): the radio-map encoder and the two-layer LSTM positioning network.

One line per choice the paper leaves open:
- The encoder is fully connected and applied to each reference point's map row: V_r (size L, the
  input signal's size) = m_r + FC(m_r), the last layer zero-initialised so V starts as the map.
- S and V are combined by comparison: d_tr = mean_l (S_tl − V_rl)², and the LSTM reads the
  log-softmax of −d_t / τ over the R points (τ learned), layer-normalised; `combine=
  "compare_and_signal"` also
  feeds S itself. The output is a softmax over the R points: Dense(h_t) + κ · that log-softmax
  (κ learned), so the map comparison reaches the output directly and the LSTM adds the past.
- `use_map=False` is the plain 2-layer LSTM on raw signals (no map): it must hold the map in its
  weights. `use_encoder=False` compares with the raw map (the encoder's ablation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

COMBINES = ("compare", "compare_and_signal")


class MapEncoder(nn.Module):
    hidden: Sequence[int]

    @nn.compact
    def __call__(self, radio_map: jax.Array) -> jax.Array:
        h = radio_map
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return radio_map + nn.Dense(radio_map.shape[-1], kernel_init=nn.initializers.zeros)(h)


class Recurrent(nn.Module):
    """Stacked LSTM layers (Flax's cells, `nn.RNN` = `lax.scan` over time) over (B, T, F)."""

    features: int
    layers: int = 2

    @nn.compact
    def __call__(self, xs: jax.Array, carry: Sequence[Any] | None = None) -> tuple[jax.Array, Any]:
        carries = []
        for i in range(self.layers):
            cell = nn.OptimizedLSTMCell(self.features, name=f"lstm{i}")
            rnn = nn.RNN(cell, return_carry=True)
            c, xs = rnn(xs, initial_carry=None if carry is None else carry[i])
            carries.append(c)
        return xs, tuple(carries)


def map_distances(signals: jax.Array, encoded_map: jax.Array) -> jax.Array:
    """(B, T, R) mean squared difference between each signal (B, T, L) and each map row (R, L)."""
    cross = jnp.einsum("btl,rl->btr", signals, encoded_map)
    sq = jnp.sum(signals**2, -1, keepdims=True) - 2 * cross + jnp.sum(encoded_map**2, -1)
    return jnp.maximum(sq, 0.0) / signals.shape[-1]


class Positioner(nn.Module):
    n_points: int
    features: int = 128
    layers: int = 2
    encoder_hidden: Sequence[int] = (256, 256)
    use_map: bool = True
    use_encoder: bool = True
    combine: str = "compare"

    @nn.compact
    def __call__(
        self, signals: jax.Array, radio_map: jax.Array, carry: Sequence[Any] | None = None
    ) -> tuple[jax.Array, Any]:
        """Logits (B, T, R) over the reference points and the LSTM carry, from signals (B, T, L)
        and the radio map (R, L), both on the unit scale."""
        if not self.use_map:
            h, carry = Recurrent(self.features, self.layers)(signals, carry)
            return nn.Dense(self.n_points)(h), carry
        if self.combine not in COMBINES:
            raise ValueError(f"combine: expected one of {COMBINES}, got {self.combine!r}")
        encoded = (
            MapEncoder(tuple(self.encoder_hidden))(radio_map) if self.use_encoder else radio_map
        )
        log_tau = self.param("log_temperature", nn.initializers.constant(jnp.log(1e-3)), ())
        match = jax.nn.log_softmax(-map_distances(signals, encoded) / jnp.exp(log_tau))
        # Log-probabilities run to -100s; normalised per step so the LSTM's gates do not saturate.
        inputs = nn.LayerNorm()(match)
        if self.combine == "compare_and_signal":
            inputs = jnp.concatenate([inputs, signals], -1)
        h, carry = Recurrent(self.features, self.layers)(inputs, carry)
        skip = self.param("match_weight", nn.initializers.ones, ())
        return nn.Dense(self.n_points)(h) + skip * match, carry

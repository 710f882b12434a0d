"""FPN's networks (Fig. 2): the paper's map encoder and two-layer LSTM, and our comparator.

`model.network="paper"` (§3.2, the default), one line per choice the paper leaves open:
- Encoding network: FC layers over the whole radio map (R × L, flattened) → one vector V of the
  signal's size L (§3.2.1); ReLU hidden layers of `encoder_hidden`, a linear output.
- S and V are joined by concatenation [S_t, V] at every step (`model.join="concat"`; "add" gives
  S_t + V): "V is encoded in the same size as the input Wi-Fi signal, [so] the two ... can be
  combined" (§3.2.1). The map reaches the positioning network only through V.
- Positioning network: two LSTM layers, then a dense layer → logits over the R points (§3.2.2).

`model.network="compare"` is ours, not the paper's: each map row is encoded (V_r = m_r + FC(m_r),
the last layer zero-initialised), S is compared with every V_r (log-softmax of −mean (S − V_r)²
/ τ, τ learned, layer-normalised) and that comparison feeds the LSTM and is added to the logits
through a learned skip (κ): a nearest-row classifier on any map from the first step.
`combine="compare_and_signal"` also feeds S; `use_encoder=False` compares with the raw map.

`use_map=False` is the plain 2-layer LSTM on raw signals (no map): it must hold the map in its
weights (Table 1's LSTM row).

`lstm="fused"` (the default) runs each LSTM layer as `jaxfp.methods.fpn.lstm.LSTM`, Flax's cell
with a hand-written gradient; `lstm="flax"` as `nn.RNN(nn.OptimizedLSTMCell)`. The two share their
parameters and differ only in rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxfp.methods.fpn.lstm import LSTM

NETWORKS = ("paper", "compare")
LSTMS = ("fused", "flax")
JOINS = ("concat", "add")
COMBINES = ("compare", "compare_and_signal")


class MapVectorEncoder(nn.Module):
    """§3.2.1: the whole radio map (R, L) → V (L,) through fully connected layers."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, radio_map: jax.Array) -> jax.Array:
        h = radio_map.reshape(-1)
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return nn.Dense(radio_map.shape[-1])(h)


class MapEncoder(nn.Module):
    """Ours (`network="compare"`): each map row m_r (R, L) → V_r = m_r + FC(m_r)."""

    hidden: Sequence[int]

    @nn.compact
    def __call__(self, radio_map: jax.Array) -> jax.Array:
        h = radio_map
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        return radio_map + nn.Dense(radio_map.shape[-1], kernel_init=nn.initializers.zeros)(h)


class Recurrent(nn.Module):
    """Stacked LSTM layers over (B, T, F); `impl`: "fused" (`lstm.LSTM`) or "flax" (`nn.RNN` of
    `nn.OptimizedLSTMCell`, autodiff through `lax.scan`), with the same parameters."""

    features: int
    layers: int = 2
    impl: str = "fused"

    @nn.compact
    def __call__(self, xs: jax.Array, carry: Sequence[Any] | None = None) -> tuple[jax.Array, Any]:
        if self.impl not in LSTMS:
            raise ValueError(f"model.lstm: expected one of {LSTMS}, got {self.impl!r}")
        carries = []
        for i in range(self.layers):
            initial = None if carry is None else carry[i]
            if self.impl == "fused":
                c, xs = LSTM(self.features, name=f"lstm{i}")(xs, initial)
            else:
                cell = nn.OptimizedLSTMCell(self.features, name=f"lstm{i}")
                c, xs = nn.RNN(cell, return_carry=True)(xs, initial_carry=initial)
            carries.append(c)
        return xs, tuple(carries)


class PositioningNetwork(nn.Module):
    """§3.2.2: the scans S (B, T, L) and V (L,) → logits (B, T, R) through two LSTM layers."""

    n_points: int
    features: int = 128
    layers: int = 2
    join: str = "concat"
    lstm: str = "fused"

    @nn.compact
    def __call__(
        self, signals: jax.Array, v: jax.Array, carry: Sequence[Any] | None = None
    ) -> tuple[jax.Array, Any]:
        if self.join == "concat":
            inputs = jnp.concatenate([signals, jnp.broadcast_to(v, signals.shape)], -1)
        elif self.join == "add":
            inputs = signals + v
        else:
            raise ValueError(f"model.join: expected one of {JOINS}, got {self.join!r}")
        h, carry = Recurrent(self.features, self.layers, self.lstm, name="lstm")(inputs, carry)
        return nn.Dense(self.n_points, name="head")(h), carry


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
    network: str = "paper"
    join: str = "concat"
    combine: str = "compare"
    lstm: str = "fused"

    @nn.compact
    def __call__(
        self, signals: jax.Array, radio_map: jax.Array, carry: Sequence[Any] | None = None
    ) -> tuple[jax.Array, Any]:
        """Logits (B, T, R) over the reference points and the LSTM carry, from signals (B, T, L)
        and the radio map (R, L), both on the unit scale."""
        if not self.use_map:
            h, carry = Recurrent(self.features, self.layers, self.lstm)(signals, carry)
            return nn.Dense(self.n_points)(h), carry
        if self.network == "paper":
            v = MapVectorEncoder(tuple(self.encoder_hidden), name="encoder")(radio_map)
            positioning = PositioningNetwork(
                self.n_points,
                self.features,
                self.layers,
                self.join,
                self.lstm,
                name="positioning",
            )
            return positioning(signals, v, carry)
        if self.network != "compare":
            raise ValueError(f"model.network: expected one of {NETWORKS}, got {self.network!r}")
        if self.combine not in COMBINES:
            raise ValueError(f"model.combine: expected one of {COMBINES}, got {self.combine!r}")
        encoded = (
            MapEncoder(tuple(self.encoder_hidden))(radio_map) if self.use_encoder else radio_map
        )
        log_tau = self.param("log_temperature", nn.initializers.constant(jnp.log(1e-3)), ())
        match = jax.nn.log_softmax(-map_distances(signals, encoded) / jnp.exp(log_tau))
        # Log-probabilities run to -100s; normalised per step so the LSTM's gates do not saturate.
        inputs = nn.LayerNorm()(match)
        if self.combine == "compare_and_signal":
            inputs = jnp.concatenate([inputs, signals], -1)
        h, carry = Recurrent(self.features, self.layers, self.lstm)(inputs, carry)
        skip = self.param("match_weight", nn.initializers.ones, ())
        return nn.Dense(self.n_points)(h) + skip * match, carry

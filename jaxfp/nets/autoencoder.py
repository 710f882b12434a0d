"""GUFU's feature extractor (§4.1): an autoencoder from normalised RSS to a 32-d code and back."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax


class Autoencoder(nn.Module):
    """`encode(x)` -> code, `decode(code)` -> RSS in [0, 1]; dropout on the input (rate 0.5 as
    the paper). `__call__` returns (reconstruction, code)."""

    inputs: int
    code: int = 32
    hidden: Sequence[int] = (128,)
    dropout: float = 0.5

    def setup(self) -> None:
        self.encoder_layers = [nn.Dense(w, name=f"enc{i}") for i, w in enumerate(self.hidden)]
        self.code_layer = nn.Dense(self.code, name="code")
        self.decoder_layers = [
            nn.Dense(w, name=f"dec{i}") for i, w in enumerate(reversed(self.hidden))
        ]
        self.output_layer = nn.Dense(self.inputs, name="out")
        self.drop = nn.Dropout(self.dropout)

    def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = self.drop(x, deterministic=not train)
        for layer in self.encoder_layers:
            x = nn.relu(layer(x))
        return self.code_layer(x)

    def decode(self, code: jax.Array) -> jax.Array:
        x = code
        for layer in self.decoder_layers:
            x = nn.relu(layer(x))
        return nn.sigmoid(self.output_layer(x))

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        code = self.encode(x, train)
        return self.decode(code), code

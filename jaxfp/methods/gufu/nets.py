"""GUFU's networks: the autoencoder (§4.1), the GraphSAGE with edge features (Algorithm 1, in
`sage`) and the update module's two MLPs (§5.2)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxfp.methods.gufu.sage import EdgeSAGE
from jaxfp.nets import MLP

__all__ = ["MLP", "Autoencoder", "EdgeSAGE", "carry_over_inputs", "update_module_nets"]


class Autoencoder(nn.Module):
    """`encode(x)` -> code, `decode(code)` -> RSS in [0, 1]; dropout at rate 0.5 (the paper) on
    the input (`dropout_at="input"`) or after the encoder's hidden layers ("hidden": the paper
    does not say where; on vectors ~90 % zeros input dropout erases half the few detections).
    `__call__` returns (reconstruction, code)."""

    inputs: int
    code: int = 32
    hidden: Sequence[int] = (128,)
    dropout: float = 0.5
    dropout_at: str = "input"

    def setup(self) -> None:
        self.encoder_layers = [nn.Dense(w, name=f"enc{i}") for i, w in enumerate(self.hidden)]
        self.code_layer = nn.Dense(self.code, name="code")
        self.decoder_layers = [
            nn.Dense(w, name=f"dec{i}") for i, w in enumerate(reversed(self.hidden))
        ]
        self.output_layer = nn.Dense(self.inputs, name="out")
        self.drop = nn.Dropout(self.dropout)

    def encode(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.dropout_at == "input":
            x = self.drop(x, deterministic=not train)
        for layer in self.encoder_layers:
            x = nn.relu(layer(x))
            if self.dropout_at == "hidden":
                x = self.drop(x, deterministic=not train)
        return self.code_layer(x)

    def decode(self, code: jax.Array) -> jax.Array:
        x = code
        for layer in self.decoder_layers:
            x = nn.relu(layer(x))
        return nn.sigmoid(self.output_layer(x))

    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        code = self.encode(x, train)
        return self.decode(code), code


def carry_over_inputs(old: Any, fresh: Any, old_at: np.ndarray, new_at: np.ndarray) -> Any:
    """Params for a new input set: `fresh` (an init for the new width) with the old input rows of the
    layer that reads the inputs and the old output columns, for inputs `old_at` (old positions) that
    now sit at `new_at`; the inner layers are kept whole."""
    out = jax.tree.map(np.array, fresh)
    p, q = out["params"], old["params"]
    first = "enc0" if "enc0" in p else "code"  # the layer that reads the inputs
    for name in p:
        if name not in (first, "out"):
            p[name] = jax.tree.map(np.array, q[name])
    p[first]["kernel"][new_at] = np.asarray(q[first]["kernel"])[old_at]
    p[first]["bias"] = np.asarray(q[first]["bias"])
    p["out"]["kernel"][:, new_at] = np.asarray(q["out"]["kernel"])[:, old_at]
    p["out"]["bias"][new_at] = np.asarray(q["out"]["bias"])[old_at]
    return jax.tree.map(jnp.asarray, out)


def update_module_nets(hidden: int, location_dims: int, code_dims: int) -> tuple[MLP, MLP]:
    """§5.2's MLP1 (embedding -> location) and MLP2 (location -> feature), one hidden layer each
    (the paper gives no widths; `hidden` is config)."""
    return MLP(hidden=(hidden,), out=location_dims), MLP(hidden=(hidden,), out=code_dims)

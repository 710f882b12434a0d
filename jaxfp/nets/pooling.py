"""Max pooling as the maximum of shifted strided views where JAX runs on a CPU
(`jaxfp.nets.backend.cpu_paths()`); XLA's `reduce_window` (`nn.max_pool`) on a GPU or TPU.

`nn.max_pool` lowers to `reduce_window`, whose gradient on XLA:CPU (jaxlib 0.10) is a
select-and-scatter 8× slower than the backward of the same maximum written over the window's
kh·kw strided views (ResNet's 3×3/2 stem pool at batch 32: 24 ms against 3 ms; measured in
`experiments/bench/conv_paths.py`). The values are the same; the gradient differs only where two
inputs of a window tie for the maximum (split between them instead of given to one), which after a
ReLU happens only at zeros, whose gradient the ReLU drops anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxfp.nets.backend import cpu_paths
from jaxfp.nets.conv import shifted_views


def max_pool(
    x: jax.Array,
    window: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]] = "VALID",
) -> jax.Array:
    """`nn.max_pool` over the two spatial axes of (B, H, W, C)."""
    if not cpu_paths():
        return nn.max_pool(x, tuple(window), tuple(strides), padding)
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
    views = shifted_views(x, window, strides, padding, pad_value=-jnp.inf)
    return functools.reduce(jnp.maximum, views)

"""Max pooling as the maximum of shifted strided views.

`nn.max_pool` lowers to `reduce_window`, whose gradient on XLA:CPU (jaxlib 0.10) is a
select-and-scatter 8× slower than the backward of the same maximum written over the window's
kh·kw strided views (ResNet's 3×3/2 stem pool at batch 32: 24 ms against 3 ms; measured in
`experiments/bench/conv_paths.py`). The values are the same; the gradient differs only where two
inputs of a window tie for the maximum (split between them instead of given to one), which after a
ReLU happens only at zeros, whose gradient the ReLU drops anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def max_pool(
    x: jax.Array,
    window: Sequence[int],
    strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]] = "VALID",
) -> jax.Array:
    """`nn.max_pool` over the two spatial axes of (B, H, W, C)."""
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], window, strides, padding)
    x = jnp.pad(x, ((0, 0), *map(tuple, padding), (0, 0)), constant_values=-jnp.inf)
    batch, height, width, channels = x.shape
    out_h = (height - window[0]) // strides[0] + 1
    out_w = (width - window[1]) // strides[1] + 1
    pooled = None
    for i in range(window[0]):
        for j in range(window[1]):
            view = lax.slice(
                x,
                (0, i, j, 0),
                (
                    batch,
                    i + (out_h - 1) * strides[0] + 1,
                    j + (out_w - 1) * strides[1] + 1,
                    channels,
                ),
                (1, strides[0], strides[1], 1),
            )
            pooled = view if pooled is None else jnp.maximum(pooled, view)
    return pooled

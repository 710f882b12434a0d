"""Convolution for `nn.Conv` that avoids XLA:CPU's slow path on images smaller than the kernel.

jaxlib 0.10's CPU convolution runs 30–60× below its usual rate when the input has fewer pixels
than the kernel (a 3×3 kernel on the 2×4 and 1×2 maps of a ResNet's last stages on the 32×64
angle-delay input: 55–88 ms forward against ~2 ms as a matrix product; measured on both sides of
the boundary with `experiments/bench/conv_paths.py`). There the convolution is computed as what it
is, one matrix product of the image patches (gathered by static slices) with the kernel, whose
gradients autodiff turns into matrix products and pads. Everywhere else `lax.conv_general_dilated`.
The parameters are `nn.Conv`'s own, so checkpoints do not depend on the path taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_NHWC = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)


def patches_matmul_applies(
    image_hw: Sequence[int], kernel_hw: Sequence[int], dimension_numbers: Any, groups: int
) -> bool:
    """Whether `conv_general_dilated` takes the patch-matrix path for these shapes."""
    if groups != 1 or len(image_hw) != 2:
        return False
    dims = lax.conv_dimension_numbers((1, 1, *image_hw), (*kernel_hw, 1, 1), dimension_numbers)
    return dims == _NHWC and image_hw[0] * image_hw[1] < kernel_hw[0] * kernel_hw[1]


def patches_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]
) -> jax.Array:
    """NHWC × HWIO convolution as one matrix product of the image patches with the kernel."""
    kh, kw, cin, cout = kernel.shape
    x = jnp.pad(x, ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0)))
    batch, height, width, _ = x.shape
    out_h = (height - kh) // strides[0] + 1
    out_w = (width - kw) // strides[1] + 1
    columns = [
        lax.slice(
            x,
            (0, i, j, 0),
            (batch, i + (out_h - 1) * strides[0] + 1, j + (out_w - 1) * strides[1] + 1, cin),
            (1, strides[0], strides[1], 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.concatenate(columns, axis=-1)  # features ordered (i, j, c) like the kernel
    return jnp.dot(patches, kernel.reshape(kh * kw * cin, cout))


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers: Any = None,
    feature_group_count: int = 1,
    precision: Any = None,
    **kwargs: Any,
) -> jax.Array:
    """`lax.conv_general_dilated`, by a patch matrix product where XLA:CPU's convolution is slow."""
    undilated = all(d == 1 for d in (lhs_dilation or ())) and all(
        d == 1 for d in (rhs_dilation or ())
    )
    if (
        undilated
        and not kwargs
        and lhs.ndim == 4
        and patches_matmul_applies(
            lhs.shape[1:3], rhs.shape[:2], dimension_numbers, feature_group_count
        )
    ):
        if isinstance(padding, str):
            padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
        return patches_conv(lhs, rhs, window_strides, padding)
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kwargs,
    )


Conv = partial(nn.Conv, conv_general_dilated=conv_general_dilated)

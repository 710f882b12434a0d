"""Convolution for `nn.Conv` that avoids XLA:CPU's slow paths (jaxlib 0.10), taken only where
`jaxfp.nets.backend.cpu_paths()` says so (JAX on a CPU, or `JAXFP_PATHS=cpu`); on a GPU or TPU
every convolution is XLA's own.

Measured per layer shape with `experiments/bench/conv_paths.py` (docs/performance.md):
- Where the output image has no more pixels than the kernel (a 3×3 kernel giving the 2×4 and 1×2
  maps of a ResNet's last stages on the 32×64 angle-delay input) XLA's convolution runs 10–60×
  below its usual rate (forward 55–88 ms, or a backward of 42 ms, against ~2 ms): there it is one
  matrix product of the image patches (gathered by static slices) with the kernel.
- Depthwise convolutions (one filter per channel: MobileNetV2, ShuffleNetV2) run 10–100× slower
  through XLA's grouped convolution than as a sum of kh·kw shifted slices times per-channel
  weights, which XLA fuses into one elementwise loop: that is the depthwise path, at every size.
Autodiff turns both paths into matrix products, slices and pads. Vmapped over stacked seeds with a
kernel per seed, the remaining (`lax`) convolutions run as one dense convolution per seed
(`dense_per_member`) instead of the grouped convolution JAX's own batching rule makes. Everywhere else
`lax.conv_general_dilated`, 1×1 convolutions included: as matrix products they are 1.5–4× faster
alone without the flag of `jaxfp.xla_flags`, but no faster in a ResNet50 step with it. The
parameters are `nn.Conv`'s own, so checkpoints do not depend on the path taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxfp.nets.backend import cpu_paths

_NHWC = lax.ConvDimensionNumbers(
    lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2)
)


def conv_path(
    lhs_shape: Sequence[int],
    rhs_shape: Sequence[int],
    out_hw: Sequence[int],
    dimension_numbers: Any,
    groups: int,
) -> str:
    """'patches', 'depthwise' or 'lax': how `conv_general_dilated` computes a
    convolution of these shapes whose output image is `out_hw`."""
    if len(lhs_shape) != 4:
        return "lax"
    dims = lax.conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    if dims != _NHWC:
        return "lax"
    channels, (kh, kw, _, features) = lhs_shape[-1], rhs_shape
    if groups == 1 and out_hw[0] * out_hw[1] <= kh * kw:
        return "patches"
    if groups > 1 and groups == channels == features:
        return "depthwise"
    return "lax"


def shifted_views(
    x: jax.Array,
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    pad_value: float = 0.0,
) -> list[jax.Array]:
    """The kh·kw strided views of the padded image (B, H', W', C), one per window position."""
    kh, kw = kernel_hw
    pads = ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0))
    x = jnp.pad(x, pads, constant_values=pad_value)
    batch, height, width, channels = x.shape
    out_h = (height - kh) // strides[0] + 1
    out_w = (width - kw) // strides[1] + 1
    return [
        lax.slice(
            x,
            (0, i, j, 0),
            (batch, i + (out_h - 1) * strides[0] + 1, j + (out_w - 1) * strides[1] + 1, channels),
            (1, strides[0], strides[1], 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def patches_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]
) -> jax.Array:
    """NHWC × HWIO convolution as one matrix product of the image patches with the kernel."""
    kh, kw, cin, cout = kernel.shape
    # features ordered (i, j, c), like the kernel's reshape
    patches = jnp.concatenate(shifted_views(x, (kh, kw), strides, padding), axis=-1)
    return jnp.dot(patches, kernel.reshape(kh * kw * cin, cout))


def depthwise_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]
) -> jax.Array:
    """Depthwise NHWC convolution (kernel (kh, kw, 1, C)) as a sum of weighted shifted views."""
    kh, kw = kernel.shape[:2]
    views = shifted_views(x, (kh, kw), strides, padding)
    taps = kernel.reshape(kh * kw, -1)
    return sum(view * taps[t] for t, view in enumerate(views))


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
    """`lax.conv_general_dilated`, by the paths above where XLA:CPU's convolution is slow and JAX
    runs on a CPU."""
    undilated = all(d == 1 for d in (lhs_dilation or ())) and all(
        d == 1 for d in (rhs_dilation or ())
    )
    plain = partial(
        lax.conv_general_dilated,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kwargs,
    )
    if not cpu_paths():
        return plain(lhs, rhs)
    out = jax.eval_shape(plain, lhs, rhs).shape
    path = conv_path(lhs.shape, rhs.shape, out[1:3], dimension_numbers, feature_group_count)
    if undilated and not kwargs and path != "lax":
        if isinstance(padding, str):
            padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
        conv = patches_conv if path == "patches" else depthwise_conv
        return conv(lhs, rhs, window_strides, padding)
    return dense_per_member(plain)(lhs, rhs)


def _per_member(fn: Any) -> Any:
    """`fn(lhs, rhs, ...)` whose vmap over a batched kernel `rhs` calls it once per member (an
    unrolled loop in one program): XLA:CPU runs the grouped convolution that vmapping a kernel
    otherwise makes 1.5-2x slower than the members' dense convolutions one after the other
    (`experiments/bench/itoloc.py`). A vmap that leaves the kernel unbatched (per-sample
    functions, an input batch) keeps JAX's own batching."""
    wrapped = jax.custom_batching.custom_vmap(fn)

    @wrapped.def_vmap
    def rule(axis_size: int, in_batched: Sequence[bool], *args: Any) -> tuple[Any, Any]:
        if not in_batched[1]:
            axes = [0 if b else None for b in in_batched]
            out = jax.vmap(fn, in_axes=axes)(*args)
        else:
            members = [
                wrapped(*[a[m] if b else a for a, b in zip(args, in_batched, strict=True)])
                for m in range(axis_size)
            ]
            out = jax.tree.map(lambda *o: jnp.stack(o), *members)
        return out, jax.tree.map(lambda _: True, out)

    return wrapped


def dense_per_member(plain: Any) -> Any:
    """`plain(lhs, rhs)` (a convolution) whose vmap over a batched kernel stays one dense
    convolution per member, its gradients too (`_per_member`)."""
    forward = _per_member(plain)

    def grads(lhs: jax.Array, rhs: jax.Array, cotangent: jax.Array) -> tuple[jax.Array, ...]:
        return jax.vjp(plain, lhs, rhs)[1](cotangent)

    backward = _per_member(grads)

    @jax.custom_vjp
    def conv(lhs: jax.Array, rhs: jax.Array) -> jax.Array:
        return forward(lhs, rhs)

    def conv_fwd(lhs: jax.Array, rhs: jax.Array) -> tuple[jax.Array, Any]:
        return forward(lhs, rhs), (lhs, rhs)

    def conv_bwd(saved: Any, cotangent: jax.Array) -> tuple[jax.Array, ...]:
        return backward(*saved, cotangent)

    conv.defvjp(conv_fwd, conv_bwd)
    return conv


Conv = partial(nn.Conv, conv_general_dilated=conv_general_dilated)

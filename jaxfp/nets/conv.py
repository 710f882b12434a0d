"""Convolution for `nn.Conv` that avoids XLA:CPU's slow paths (jaxlib 0.10), taken only where
`jaxfp.nets.backend.cpu_paths()` says so (JAX on a CPU, or `JAXFP_PATHS=cpu`); on a GPU or TPU
every convolution is XLA's own.

Measured per layer shape with `experiments/bench/conv_paths.py` (docs/performance.md):
- Where the output image has no more pixels than the kernel (a 3×3 kernel giving the 2×4 and 1×2
  maps of a ResNet's last stages on the 32×64 angle-delay input) XLA's convolution runs 10–60×
  below its usual rate (forward 55–88 ms, or a backward of 42 ms, against ~2 ms): there it is
  matrix products of the image patches (gathered by static slices) with the kernel, one per block
  of output positions that meet the image with the same window positions, each leaving out the
  window positions that meet only padding (on these maps most of them: 2/9 of a 3×3 kernel's
  products remain on a 1×2 map, 5/9 on a 2×4 one).
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


def _live(size: int, kernel: int, stride: int, pad: Sequence[int], outputs: range) -> list[int]:
    """The kernel offsets that meet the image (not its padding) at some position of `outputs`."""
    return [k for k in range(kernel) if any(0 <= o * stride + k - pad[0] < size for o in outputs)]


def _runs(size: int, kernel: int, stride: int, pad: Sequence[int]) -> list[tuple[range, list[int]]]:
    """Output positions in runs that read the image with the same kernel offsets: (the run, its
    offsets)."""
    outputs = (size + pad[0] + pad[1] - kernel) // stride + 1
    runs: list[tuple[range, list[int]]] = []
    for o in range(outputs):
        live = _live(size, kernel, stride, pad, range(o, o + 1))
        if runs and runs[-1][1] == live:
            runs[-1] = (range(runs[-1][0].start, o + 1), live)
        else:
            runs.append((range(o, o + 1), live))
    return runs


def live_taps(
    in_hw: Sequence[int],
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
) -> tuple[list[int], list[int]]:
    """The kernel rows and columns that meet the image rather than its padding at some output
    position: the others only ever multiply padding."""
    return tuple(
        _live(n, k, s, p, range((n + p[0] + p[1] - k) // s + 1))
        for n, k, s, p in zip(in_hw, kernel_hw, strides, padding, strict=True)
    )


def _pick(x: jax.Array, axis: int, index: Sequence[int]) -> jax.Array:
    """x at the static `index` along `axis`, by one slice when it is a run."""
    if list(index) == list(range(index[0], index[-1] + 1)):
        return lax.slice_in_dim(x, index[0], index[-1] + 1, axis=axis)
    return jnp.concatenate([lax.slice_in_dim(x, i, i + 1, axis=axis) for i in index], axis)


def _views(
    padded: jax.Array,
    strides: Sequence[int],
    rows: range,
    cols: range,
    taps: Sequence[tuple[int, int]],
) -> list[jax.Array]:
    """The strided views of a padded image (B, H', W', C) for output `rows` × `cols`, one per
    window position in `taps`."""
    batch, _, _, channels = padded.shape
    sh, sw = strides
    return [
        lax.slice(
            padded,
            (0, rows.start * sh + i, cols.start * sw + j, 0),
            (batch, (rows.stop - 1) * sh + i + 1, (cols.stop - 1) * sw + j + 1, channels),
            (1, sh, sw, 1),
        )
        for i, j in taps
    ]


def shifted_views(
    x: jax.Array,
    kernel_hw: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    pad_value: float = 0.0,
    taps: Sequence[tuple[int, int]] | None = None,
) -> list[jax.Array]:
    """The strided views of the padded image (B, H', W', C), one per window position: all kh·kw
    row-major, or those of `taps`."""
    kh, kw = kernel_hw
    pads = ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0))
    x = jnp.pad(x, pads, constant_values=pad_value)
    out_h = (x.shape[1] - kh) // strides[0] + 1
    out_w = (x.shape[2] - kw) // strides[1] + 1
    if taps is None:
        taps = [(i, j) for i in range(kh) for j in range(kw)]
    return _views(x, strides, range(out_h), range(out_w), taps)


def patches_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]
) -> jax.Array:
    """NHWC × HWIO convolution as matrix products of the image patches with the kernel. Output
    positions are taken in blocks that meet the image with the same window positions, and each
    block's product leaves out the window positions that meet only padding there: on a 1×2 map a
    3×3 kernel's top and bottom rows never meet the image, on a 2×4 map its top row only meets
    it from the second output row."""
    kh, kw, cin, cout = kernel.shape
    pads = ((0, 0), tuple(padding[0]), tuple(padding[1]), (0, 0))
    padded = jnp.pad(x, pads)
    row_runs = _runs(x.shape[1], kh, strides[0], padding[0])
    col_runs = _runs(x.shape[2], kw, strides[1], padding[1])
    blocks = []
    for rows, live_rows in row_runs:
        row = []
        for cols, live_cols in col_runs:
            taps = [(i, j) for i in live_rows for j in live_cols]
            if not taps:  # every window position of this block meets only padding
                shape = (x.shape[0], len(rows), len(cols), cout)
                row.append(jnp.zeros(shape, jnp.result_type(x, kernel)))
                continue
            # features ordered (tap, c), like the kernel's reshape
            patches = jnp.concatenate(_views(padded, strides, rows, cols, taps), axis=-1)
            weights = _pick(_pick(kernel, 0, live_rows), 1, live_cols)
            row.append(jnp.dot(patches, weights.reshape(len(taps) * cin, cout)))
        blocks.append(jnp.concatenate(row, 2) if len(row) > 1 else row[0])
    return jnp.concatenate(blocks, 1) if len(blocks) > 1 else blocks[0]


def depthwise_conv(
    x: jax.Array, kernel: jax.Array, strides: Sequence[int], padding: Sequence[tuple[int, int]]
) -> jax.Array:
    """Depthwise NHWC convolution (kernel (kh, kw, 1, C)) as a sum of weighted shifted views, over
    the window positions that meet the image (`live_taps`)."""
    kh, kw = kernel.shape[:2]
    rows, cols = live_taps(x.shape[1:3], (kh, kw), strides, padding)
    taps = [(i, j) for i in rows for j in cols]
    if not taps:  # every window position meets only padding
        out_hw = [
            (n + p[0] + p[1] - k) // s + 1
            for n, k, s, p in zip(x.shape[1:3], (kh, kw), strides, padding, strict=True)
        ]
        return jnp.zeros((x.shape[0], *out_hw, x.shape[3]), jnp.result_type(x, kernel))
    views = shifted_views(x, (kh, kw), strides, padding, taps=taps)
    return sum(view * kernel[i, j, 0] for (i, j), view in zip(taps, views, strict=True))


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

"""Per layer shape: XLA's convolution against the path `jaxfp.nets.conv` takes for it (forward,
and forward + both gradients), on the layer shapes of the CSI backbones at batch 32 on the
4×32×64 angle-delay input; and ResNet's stem max pool, Flax's against `jaxfp.nets.pooling`.
Prints a table, writes JSON with the machine it ran on.

    python experiments/bench/conv_paths.py [--repeats 20] [--out runs/bench/conv_paths.json]
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxfp.common.atomic_files import write_json
from jaxfp.eval.bench import machine_info, median_seconds
from jaxfp.eval.results import format_table
from jaxfp.nets.conv import conv_general_dilated, conv_path
from jaxfp.nets.pooling import max_pool

NHWC = ("NHWC", "HWIO", "NHWC")
# (height, width, in channels, out channels, kernel, stride, groups) at batch 32
SHAPES = (
    (32, 64, 4, 64, 7, 2, 1),  # ResNet stem
    (8, 16, 64, 64, 3, 1, 1),  # ResNet stage 1
    (4, 8, 128, 128, 3, 1, 1),  # stage 2
    (2, 4, 256, 256, 3, 1, 1),  # stage 3: fewer pixels than the kernel
    (1, 2, 512, 512, 3, 1, 1),  # stage 4
    (4, 8, 128, 256, 3, 2, 1),  # stage 3's first block: a 2x4 output
    (2, 4, 256, 512, 3, 2, 1),  # stage 4's first block
    (8, 16, 256, 64, 1, 1, 1),  # a bottleneck's 1x1
    (16, 32, 32, 32, 3, 1, 32),  # MobileNetV2 depthwise
    (8, 16, 144, 144, 3, 2, 144),
    (2, 4, 576, 576, 3, 1, 576),
    (1, 2, 960, 960, 3, 1, 960),
)


def time_op(apply, x, repeats: int) -> tuple[float, float]:
    """(forward ms, forward + gradient ms) of `apply(x)`."""
    forward = jax.jit(apply)
    dy = jnp.cos(forward(x))
    both = jax.jit(lambda x, dy: jax.vjp(apply, x)[1](dy))
    return (
        1e3 * median_seconds(lambda: forward(x), repeats),
        1e3 * median_seconds(lambda: both(x, dy), repeats),
    )


def time_path(conv, x, w, stride: int, groups: int, repeats: int) -> tuple[float, float]:
    """(forward ms, forward + both gradients ms) of one convolution function."""
    k = w.shape[0]
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)

    def apply(xw):
        pad = ((k // 2, k // 2),) * 2
        return conv(*xw, (stride,) * 2, pad, dimension_numbers=dims, feature_group_count=groups)

    return time_op(apply, (x, w), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default="runs/bench/conv_paths.json")
    args = parser.parse_args()
    rows = {}
    for height, width, cin, cout, k, stride, groups in SHAPES:
        x = jax.random.normal(jax.random.key(0), (32, height, width, cin))
        w = jax.random.normal(jax.random.key(1), (k, k, cin // groups, cout)) * 0.05
        dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
        out_hw = ((height - 1) // stride + 1, (width - 1) // stride + 1)  # 'SAME'-sized output
        row = {"path": conv_path(x.shape, w.shape, out_hw, dims, groups)}
        for name, conv in (("xla", lax.conv_general_dilated), ("jaxfp", conv_general_dilated)):
            row[f"{name}_fwd_ms"], row[f"{name}_fwd_bwd_ms"] = time_path(
                conv, x, w, stride, groups, args.repeats
            )
        row["speedup"] = row["xla_fwd_bwd_ms"] / row["jaxfp_fwd_bwd_ms"]
        rows[f"{height}x{width}x{cin}->{cout} k{k} s{stride} g{groups}"] = row
    x = jax.random.normal(jax.random.key(2), (32, 16, 32, 64))
    row = {"path": "shifted max"}
    pools = (("xla", nn.max_pool), ("jaxfp", max_pool))
    for name, pool in pools:
        row[f"{name}_fwd_ms"], row[f"{name}_fwd_bwd_ms"] = time_op(
            lambda x, pool=pool: pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1))),
            x,
            args.repeats,
        )
    row["speedup"] = row["xla_fwd_bwd_ms"] / row["jaxfp_fwd_bwd_ms"]
    rows["16x32x64 max pool 3x3 s2"] = row
    result = {"batch": 32, "machine": machine_info(), "rows": rows}
    write_json(args.out, result)
    print(result["machine"])
    print(format_table(rows))


if __name__ == "__main__":
    main()

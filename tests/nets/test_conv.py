"""The patch-matrix and depthwise paths equal XLA's convolution, in value and gradients, where
they are taken; everything else stays with XLA."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxfp.nets.conv import Conv, _runs, conv_general_dilated, conv_path, live_taps

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize(
    ("path", "image", "kernel", "strides", "padding"),
    [
        ("patches", (2, 4), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ("patches", (1, 2), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ("patches", (2, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),
        ("patches", (3, 2), (5, 5), (1, 1), "SAME"),
        ("patches", (1, 3), (3, 3), (1, 2), ((0, 2), (1, 0))),
        ("patches", (4, 8), (3, 3), (2, 2), ((1, 1), (1, 1))),
        ("patches", (1, 1), (3, 3), (2, 2), ((2, 2), (1, 1))),  # rows 0 and 2 meet the image
        ("patches", (1, 2), (3, 3), (1, 1), ((3, 0), (1, 1))),  # the first output: padding only
        ("depthwise", (1, 2), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ("depthwise", (1, 1), (3, 3), (5, 5), ((4, 4), (4, 4))),  # padding only: zeros
        ("depthwise", (6, 9), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ("depthwise", (7, 8), (3, 3), (2, 2), ((1, 1), (1, 1))),
        ("depthwise", (2, 3), (5, 5), (1, 1), "SAME"),
    ],
)
def test_fast_paths_match_lax_in_value_and_gradients(path, image, kernel, strides, padding) -> None:
    channels = 5
    groups = channels if path == "depthwise" else 1
    x = jax.random.normal(jax.random.key(0), (3, *image, channels))
    w = jax.random.normal(jax.random.key(1), (*kernel, channels // groups, 5 if groups > 1 else 7))
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    out_hw = jax.eval_shape(
        lambda x, w: lax.conv_general_dilated(
            x, w, strides, padding, dimension_numbers=dims, feature_group_count=groups
        ),
        x,
        w,
    ).shape[1:3]
    assert conv_path(x.shape, w.shape, out_hw, dims, groups) == path

    def plain(x, w):
        return lax.conv_general_dilated(
            x, w, strides, padding, dimension_numbers=dims, feature_group_count=groups
        )

    def ours(x, w):
        return conv_general_dilated(
            x, w, strides, padding, dimension_numbers=dims, feature_group_count=groups
        )

    y = plain(x, w)
    assert ours(x, w).shape == y.shape
    np.testing.assert_allclose(ours(x, w), y, rtol=1e-5, atol=1e-5)
    cotangent = jnp.cos(y)
    for got, want in zip(
        jax.vjp(ours, x, w)[1](cotangent), jax.vjp(plain, x, w)[1](cotangent), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_window_positions_that_meet_only_padding_are_left_out() -> None:
    # A 3x3 kernel, padding 1, on a 1x2 map: only its middle row meets the image; along the
    # width, the first output reads columns -1..1 (offsets 1, 2 live), the second 0..2 (0, 1).
    assert live_taps((1, 2), (3, 3), (1, 1), ((1, 1), (1, 1))) == ([1], [0, 1, 2])
    assert _runs(2, 3, 1, (1, 1)) == [(range(0, 1), [1, 2]), (range(1, 2), [0, 1])]
    assert _runs(4, 3, 1, (1, 1)) == [
        (range(0, 1), [1, 2]),
        (range(1, 3), [0, 1, 2]),
        (range(3, 4), [0, 1]),
    ]
    # stride 2 over one pixel padded by 2: the outputs read offsets 2 and 0, never 1
    assert live_taps((1, 1), (3, 3), (2, 2), ((2, 2), (1, 1))) == ([0, 2], [1])
    assert _runs(1, 3, 2, (2, 2)) == [(range(0, 1), [2]), (range(1, 2), [0])]

    # The products on a 1x2 map contract 2 window positions x 8 channels, not 9 x 8.
    x, w = jnp.ones((2, 1, 2, 8)), jnp.ones((3, 3, 8, 4))
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    jaxpr = jax.make_jaxpr(
        lambda x, w: conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dims)
    )(x, w)
    dots = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    assert [e.invars[1].aval.shape for e in dots] == [(16, 4), (16, 4)]


def test_large_images_grouped_and_nchw_convolutions_stay_with_lax() -> None:
    def path(lhs, rhs, out_hw, groups=1, layout=NHWC):
        dims = lax.conv_dimension_numbers(lhs, rhs, layout)
        return conv_path(lhs, rhs, out_hw, dims, groups)

    assert path((1, 8, 8, 4), (3, 3, 4, 4), (8, 8)) == "lax"
    assert path((1, 8, 8, 4), (1, 1, 4, 4), (8, 8)) == "lax"  # 1x1: XLA's own
    assert path((1, 8, 8, 4), (3, 3, 4, 4), (3, 3)) == "patches"  # a small output decides
    assert path((1, 2, 2, 4), (3, 3, 2, 4), (2, 2), groups=2) == "lax"  # grouped, not depthwise
    assert path((1, 2, 2, 4), (3, 3, 1, 8), (2, 2), groups=4) == "lax"  # channel multiplier 2
    assert path((1, 4, 2, 2), (4, 1, 3, 3), (2, 2), layout=None) == "lax"  # NCHW


def test_module_has_nn_conv_parameters_and_vmaps_over_members() -> None:
    import flax.linen as nn

    x = jax.random.normal(jax.random.key(2), (4, 2, 4, 6))
    ours, plain = Conv(8, (3, 3), padding=1), nn.Conv(8, (3, 3), padding=1)
    keys = jax.random.split(jax.random.key(3), 2)
    params = jax.vmap(lambda k: ours.init(k, x))(keys)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(
        jnp.shape, jax.vmap(lambda k: plain.init(k, x))(keys)
    )
    got = jax.vmap(lambda p: ours.apply(p, x))(params)
    want = jax.vmap(lambda p: plain.apply(p, x))(params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _grouped_convolutions(fn, *args) -> list[int]:
    """The feature_group_count of every convolution in fn's jaxpr (sub-jaxprs included)."""
    import jax.extend.core

    found: list[int] = []

    def walk(jaxpr) -> None:
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                found.append(int(eqn.params["feature_group_count"]))
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_a_kernel_per_member_stays_dense_under_vmap_in_value_and_gradients(monkeypatch) -> None:
    """Three members, each its own 3×3 kernel on its own images: the vmapped loss and both
    gradients equal lax's, and no convolution is grouped; with one shared kernel (a per-sample
    vmap) the input gradient is lax's too."""
    monkeypatch.delenv("JAXFP_PATHS", raising=False)  # the CPU paths of this CPU backend
    dims = ("NHWC", "HWIO", "NHWC")
    x = jax.random.normal(jax.random.key(0), (3, 4, 8, 8, 5))
    w = jax.random.normal(jax.random.key(1), (3, 3, 3, 5, 6))

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.tanh(conv(x, w, (1, 1), "SAME", dimension_numbers=dims)))

    ours = jax.vmap(jax.value_and_grad(loss(conv_general_dilated), argnums=(0, 1)))
    plain = jax.vmap(jax.value_and_grad(loss(lax.conv_general_dilated), argnums=(0, 1)))
    for a, b in zip(
        jax.tree.leaves(jax.jit(ours)(x, w)), jax.tree.leaves(plain(x, w)), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert _grouped_convolutions(ours, x, w) and set(_grouped_convolutions(ours, x, w)) == {1}
    assert 3 in _grouped_convolutions(plain, x, w)  # what JAX's own rule does
    shared = jax.vmap(jax.grad(loss(conv_general_dilated)), in_axes=(0, None))(x, w[0])
    expected = jax.vmap(jax.grad(loss(lax.conv_general_dilated)), in_axes=(0, None))(x, w[0])
    np.testing.assert_allclose(shared, expected, rtol=1e-4, atol=1e-4)

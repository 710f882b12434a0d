"""The patch-matrix convolution equals XLA's, in value and gradients, where it is taken."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxfp.nets.conv import Conv, conv_general_dilated, patches_matmul_applies

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize(
    ("image", "kernel", "strides", "padding"),
    [
        ((2, 4), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ((1, 2), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ((2, 4), (3, 3), (2, 2), ((1, 1), (1, 1))),
        ((3, 2), (5, 5), (1, 1), "SAME"),
        ((1, 3), (3, 3), (1, 2), ((0, 2), (1, 0))),
    ],
)
def test_patches_path_matches_lax_in_value_and_gradients(image, kernel, strides, padding) -> None:
    x = jax.random.normal(jax.random.key(0), (3, *image, 5))
    w = jax.random.normal(jax.random.key(1), (*kernel, 5, 7))
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    assert patches_matmul_applies(image, kernel, dims, 1)

    def plain(x, w):
        return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dims)

    def ours(x, w):
        return conv_general_dilated(x, w, strides, padding, dimension_numbers=dims)

    y = plain(x, w)
    assert ours(x, w).shape == y.shape
    np.testing.assert_allclose(ours(x, w), y, rtol=1e-5, atol=1e-5)
    cotangent = jnp.cos(y)
    for got, want in zip(
        jax.vjp(ours, x, w)[1](cotangent), jax.vjp(plain, x, w)[1](cotangent), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_large_images_grouped_and_nchw_convolutions_stay_with_lax() -> None:
    nhwc = lax.conv_dimension_numbers((1, 8, 8, 1), (3, 3, 1, 1), NHWC)
    assert not patches_matmul_applies((8, 8), (3, 3), nhwc, 1)
    assert not patches_matmul_applies((2, 2), (3, 3), nhwc, groups=4)
    nchw = lax.conv_dimension_numbers((1, 1, 2, 2), (1, 1, 3, 3), None)
    assert not patches_matmul_applies((2, 2), (3, 3), nchw, 1)


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

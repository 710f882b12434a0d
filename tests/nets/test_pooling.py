"""Shifted-view max pooling equals Flax's in value and (on inputs without ties) in gradient."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.nets.pooling import max_pool


@pytest.mark.parametrize(
    ("shape", "window", "strides", "padding"),
    [
        ((2, 9, 12, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's stem pool
        ((2, 7, 5, 3), (2, 2), (2, 2), "SAME"),  # iToLoc's, odd sides
        ((2, 6, 6, 3), (2, 2), (1, 1), "VALID"),
    ],
)
def test_max_pool_matches_flax(shape, window, strides, padding) -> None:
    x = jax.random.normal(jax.random.key(0), shape)  # continuous: no ties

    def ours(x):
        return max_pool(x, window, strides, padding)

    def flax_pool(x):
        return nn.max_pool(x, window, strides=strides, padding=padding)

    np.testing.assert_array_equal(ours(x), flax_pool(x))
    cotangent = jnp.cos(flax_pool(x))
    np.testing.assert_allclose(
        jax.vjp(ours, x)[1](cotangent)[0], jax.vjp(flax_pool, x)[1](cotangent)[0], rtol=1e-6
    )

"""The fused LSTM layer against Flax's cell: parameters, values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.methods.fpn.lstm import LSTM, lstm_sequence
from jaxfp.methods.fpn.nets import Positioner, Recurrent


def test_parameters_are_flax_cells_names_shapes_and_initial_values():
    xs = jax.random.normal(jax.random.key(0), (3, 4, 5))
    fused = Recurrent(6, 2, "fused").init(jax.random.key(1), xs)
    flax = Recurrent(6, 2, "flax").init(jax.random.key(1), xs)
    assert jax.tree.structure(fused) == jax.tree.structure(flax)
    jax.tree.map(np.testing.assert_array_equal, fused, flax)


def _loss(apply, params, xs, carry, weights):
    (c, h), ys = apply(params, xs, carry)
    return jnp.sum(ys * weights) + jnp.sum(jnp.sin(c)) + 2.0 * jnp.sum(h**2)


@pytest.mark.parametrize("with_carry", [False, True])
def test_outputs_carries_and_gradients_equal_flax_cell(with_carry):
    keys = jax.random.split(jax.random.key(2), 6)
    xs = jax.random.normal(keys[0], (3, 7, 5))
    carry = None
    if with_carry:
        carry = (jax.random.normal(keys[1], (3, 4)), jax.random.normal(keys[2], (3, 4)))
    params = Recurrent(4, 1, "fused").init(keys[3], xs)
    # A non-zero bias, so its gradient and place in the gates are checked too.
    params = jax.tree.map(lambda p: p + 0.3 * jax.random.normal(keys[4], p.shape), params)
    weights = jax.random.normal(keys[5], (3, 7, 4))

    def layer(impl):
        def apply(p, x, c):
            ys, (carry,) = Recurrent(4, 1, impl).apply(p, x, None if c is None else (c,))
            return carry, ys

        return apply

    fused, flax = layer("fused"), layer("flax")

    for got, want in zip(
        jax.tree.leaves(fused(params, xs, carry)),
        jax.tree.leaves(flax(params, xs, carry)),
        strict=True,
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    argnums = (0, 1, 2) if with_carry else (0, 1)
    got = jax.grad(lambda *a: _loss(fused, *a, weights), argnums)(params, xs, carry)
    want = jax.grad(lambda *a: _loss(flax, *a, weights), argnums)(params, xs, carry)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), got, want)


def test_one_step_by_hand():
    """T = 1 from a given carry: the gates in the order i, f, g, o, the bias on every gate."""
    x, c, h = jnp.array([[1.0, -2.0]]), jnp.array([[0.5]]), jnp.array([[-1.0]])
    wx = jnp.array([[0.1, 0.2, 0.3, 0.4], [0.0, -0.1, 0.2, 0.0]])
    wh = jnp.array([[1.0, -1.0, 0.5, 2.0]])
    b = jnp.array([0.0, 1.0, -0.5, 0.25])
    z = np.array([0.1 - 1.0, 0.2 + 0.2 + 1.0 + 1.0, 0.3 - 0.4 - 0.5 - 0.5, 0.4 - 2.0 + 0.25])
    sig = 1 / (1 + np.exp(-z))
    c_new = sig[1] * 0.5 + sig[0] * np.tanh(z[2])
    h_new = sig[3] * np.tanh(c_new)
    (c1, h1), hs = lstm_sequence(wx, wh, b, x[None], c, h)
    np.testing.assert_allclose(
        [float(c1[0, 0]), float(h1[0, 0]), float(hs[0, 0, 0])], [c_new, h_new, h_new], rtol=1e-6
    )
    # d h_new / d c0 = o (1 - tanh² c_new) f
    dc0 = jax.grad(lambda c0: lstm_sequence(wx, wh, b, x[None], c0, h)[0][1].sum())(c)
    np.testing.assert_allclose(
        float(dc0[0, 0]), sig[3] * (1 - np.tanh(c_new) ** 2) * sig[1], rtol=1e-6
    )


def test_vmapped_over_members_equals_one_by_one():
    xs = jax.random.normal(jax.random.key(3), (2, 3, 5, 4))
    params = jax.vmap(lambda k: LSTM(3).init(k, xs[0]))(jax.random.split(jax.random.key(4), 2))

    def loss(p, x):
        return jnp.sum(LSTM(3).apply(p, x)[1] ** 2)

    stacked = jax.vmap(jax.grad(loss))(params, xs)
    for m in range(2):
        member = jax.tree.map(lambda a, m=m: a[m], stacked)
        one = jax.grad(loss)(jax.tree.map(lambda a, m=m: a[m], params), xs[m])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), member, one
        )


def test_positioner_runs_either_lstm_and_refuses_an_unknown_one():
    signals = jax.random.uniform(jax.random.key(5), (2, 3, 4))
    radio = jax.random.uniform(jax.random.key(6), (5, 4))
    outs = {}
    for impl in ("fused", "flax"):
        net = Positioner(5, features=6, encoder_hidden=(8,), lstm=impl)
        params = net.init(jax.random.key(7), signals, radio)
        outs[impl] = net.apply(params, signals, radio)[0]
    np.testing.assert_allclose(outs["fused"], outs["flax"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="model.lstm"):
        Positioner(5, features=6, lstm="cudnn").init(jax.random.key(7), signals, radio)
    with pytest.raises(ValueError, match=r"\(batch, time, features\)"):
        LSTM(3).init(jax.random.key(0), jnp.zeros((4, 5)))

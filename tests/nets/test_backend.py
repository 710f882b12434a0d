"""The nets' CPU paths (patch-matrix and depthwise convolutions, shifted-view pooling) are taken on
a CPU backend only, XLA's own operations on any other, `JAXFP_PATHS` forces either, and both give
the same values and gradients."""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.nets import backend
from jaxfp.nets.conv import Conv
from jaxfp.nets.pooling import max_pool


class Block(nn.Module):
    """One of each CPU path: a depthwise convolution, a small-output one, a max pool."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv(6, (3, 3), padding=1, feature_group_count=6, name="depthwise")(x)
        x = max_pool(x, (3, 3), (2, 2), ((1, 1), (1, 1)))
        return Conv(5, (3, 3), (2, 2), padding=1, name="small_output")(jnp.tanh(x))


X = jax.random.normal(jax.random.key(0), (2, 4, 6, 6))
PARAMS = Block().init(jax.random.key(1), X)


def primitives(on: str, monkeypatch) -> set[str]:
    """The primitives of one traced forward and backward pass with the backend query saying `on`."""
    monkeypatch.setattr(backend.jax, "default_backend", lambda: on)

    def loss(params, x):  # a fresh function per call: JAX keeps traces per function
        return jnp.sum(Block().apply(params, x) ** 2)

    jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(PARAMS, X)
    found: set[str] = set()

    def walk(jaxpr) -> None:
        for eqn in jaxpr.eqns:
            found.add(eqn.primitive.name)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                walk(sub)

    walk(jaxpr.jaxpr)
    return found


@pytest.mark.parametrize("accelerator", ["gpu", "tpu", "cuda"])
def test_an_accelerator_gets_xla_convolution_and_reduce_window(accelerator, monkeypatch) -> None:
    monkeypatch.delenv(backend.PATHS_ENV, raising=False)
    ops = primitives(accelerator, monkeypatch)
    assert "conv_general_dilated" in ops
    assert any(op.startswith("reduce_window") or op == "select_and_scatter_add" for op in ops)


def test_a_cpu_gets_matrix_products_and_shifted_views(monkeypatch) -> None:
    monkeypatch.delenv(backend.PATHS_ENV, raising=False)
    ops = primitives("cpu", monkeypatch)
    assert "conv_general_dilated" not in ops
    assert not any(op.startswith("reduce_window") for op in ops)
    assert {"dot_general", "max"} <= ops


def test_the_override_forces_either_path(monkeypatch) -> None:
    monkeypatch.setenv(backend.PATHS_ENV, "cpu")
    assert "conv_general_dilated" not in primitives("gpu", monkeypatch)
    monkeypatch.setenv(backend.PATHS_ENV, "xla")
    assert "conv_general_dilated" in primitives("cpu", monkeypatch)
    monkeypatch.setenv(backend.PATHS_ENV, "AUTO")
    assert backend.cpu_paths()  # the cpu backend of the last call
    monkeypatch.setenv(backend.PATHS_ENV, "gpu")
    with pytest.raises(ValueError, match=r"JAXFP_PATHS='gpu': expected one of auto, cpu, xla"):
        backend.cpu_paths()


def test_both_paths_give_the_same_values_and_gradients(monkeypatch) -> None:
    def run(mode: str):
        monkeypatch.setenv(backend.PATHS_ENV, mode)

        def loss(params, x):
            y = Block().apply(params, x)
            return jnp.sum(jnp.sin(y)), y

        (value, y), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(PARAMS, X)
        return value, y, grads

    cpu, xla = run("cpu"), run("xla")
    np.testing.assert_allclose(cpu[1], xla[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cpu[0], xla[0], rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(cpu[2]), jax.tree.leaves(xla[2]), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert float(jnp.abs(xla[1]).max()) > 0.1  # a real output, not zeros on both sides


@pytest.mark.parametrize(
    ("platforms", "plugin", "paths", "added"),
    [
        ("cpu", "cuda", None, True),  # JAX_PLATFORMS decides over an installed plugin
        ("cuda,cpu", None, None, False),
        ("tpu", None, None, False),
        (None, "cuda", None, False),  # a CUDA plugin and no JAX_PLATFORMS: the GPU
        (None, None, None, True),
        ("cuda", "cuda", "cpu", True),  # forced either way
        ("cpu", None, "xla", False),
    ],
)
def test_the_cpu_xla_flags_follow_the_platform(platforms, plugin, paths, added, monkeypatch):
    from jaxfp import xla_flags

    for name, value in (("JAX_PLATFORMS", platforms), (xla_flags.PATHS_ENV, paths)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("JAX_PLATFORM_NAME", raising=False)
    monkeypatch.delenv("JAXFP_XLA_DEFAULTS", raising=False)
    monkeypatch.setattr(xla_flags, "accelerator_plugin", lambda: plugin)
    monkeypatch.setattr(xla_flags, "jaxlib_version", lambda: xla_flags.MEASURED_ON + "9")
    monkeypatch.setenv("XLA_FLAGS", "--user_flag=1")
    xla_flags.apply()
    want = xla_flags.with_defaults("--user_flag=1") if added else "--user_flag=1"
    assert os.environ["XLA_FLAGS"] == want
    monkeypatch.setenv("JAXFP_XLA_DEFAULTS", "0")
    assert not xla_flags.wanted()


def test_the_nets_and_the_flags_read_one_switch() -> None:
    from jaxfp import xla_flags

    assert (xla_flags.PATHS_ENV, xla_flags.MODES) == (backend.PATHS_ENV, backend.MODES)


def test_an_installed_cuda_plugin_is_found_without_importing_jax(tmp_path, monkeypatch) -> None:
    from jaxfp import xla_flags

    monkeypatch.setattr(xla_flags, "jaxlib_version", lambda: "0.10.2")
    (tmp_path / "jax_plugins" / "xla_cuda13").mkdir(parents=True)
    (tmp_path / "jax_plugins" / "xla_cuda13" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert xla_flags.accelerator_plugin() == "cuda"
    monkeypatch.setattr(xla_flags, "jaxlib_version", lambda: "0.4.30+cuda12.cudnn91")
    monkeypatch.setattr(os, "listdir", lambda folder: [])
    assert xla_flags.accelerator_plugin() == "cuda"  # a jaxlib built with CUDA inside

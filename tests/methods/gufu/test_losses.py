"""GUFU's losses against hand-computed values on tiny cases: eq. 5-9 (the update module) with
MLPs that pass their input through, eq. 2/10 (reconstruction) and eq. 10 as alignment with an
autoencoder whose outputs are constants."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxfp.methods.gufu.losses import (
    AutoencoderStatic,
    UpdateModuleStatic,
    alignment_loss,
    autoencoder_loss,
    update_module_loss,
)
from jaxfp.methods.gufu.nets import MLP, Autoencoder


def identity_mlp() -> tuple[MLP, dict]:
    """A 2 -> 2 -> 2 MLP with identity kernels and zero biases: on inputs >= 0 it returns them."""
    eye, zero = jnp.eye(2), jnp.zeros(2)
    params = {
        "params": {"dense_0": {"kernel": eye, "bias": zero}, "head": {"kernel": eye, "bias": zero}}
    }
    return MLP(hidden=(2,), out=2), params


def update_data():
    """Records 0-1, batch samples 0-1; pairs (record 0, sample 0), (record 1, sample 1) and one
    padding pair (weight 0)."""
    f = np.float32
    return {
        "z": np.array([[1, 0], [0, 2], [3, 1], [1, 1]], f),  # records then batch
        "loc": np.array([[1, 1], [0, 0]], f),
        "codes_old": np.array([[1, 0], [2, 2]], f),
        "codes_new": np.array([[0, 1], [2, 0]], f),
        "old_end": np.array([0, 1, 0], np.int32),
        "new_end": np.array([0, 1, 0], np.int32),
        "cross_weight": np.array([1, 1, 0], f),
        "num_pairs": np.int32(2),
    }


@pytest.mark.parametrize("lam", [0.0, 0.5, 2.0])
def test_the_update_module_loss_is_eq_5_plus_6_plus_lambda_times_7_plus_8(lam):
    mlp, p = identity_mlp()
    params = {"mlp1": p, "mlp2": p}
    static = UpdateModuleStatic(
        mlp, mlp, records=2, has_pairs=True, consistency_weight=lam, batch=0
    )
    # MLP1(z) = z, MLP2(loc) = loc. Squared norms summed over coordinates, averaged over rows:
    eq5 = (1 + 4) / 2  # |[1,0]-[1,1]|^2 = 1, |[0,2]-[0,0]|^2 = 4
    eq6 = (1 + 8) / 2  # |[1,1]-[1,0]|^2 = 1, |[0,0]-[2,2]|^2 = 8
    eq7 = (4 + 2) / 2  # |z_new0 - loc_0|^2 = |[3,1]-[1,1]|^2 = 4, |[1,1]-[0,0]|^2 = 2
    eq8 = (1 + 4) / 2  # |loc_0 - codes_new0|^2 = |[1,1]-[0,1]|^2 = 1, |[0,0]-[2,0]|^2 = 4
    loss = update_module_loss(static, params, update_data(), jax.random.key(0))
    np.testing.assert_allclose(float(loss), eq5 + eq6 + lam * (eq7 + eq8), rtol=1e-6)


def test_without_old_new_pairs_the_update_module_loss_is_eq_5_plus_6():
    mlp, p = identity_mlp()
    static = UpdateModuleStatic(mlp, mlp, 2, has_pairs=False, consistency_weight=0.5, batch=0)
    loss = update_module_loss(static, {"mlp1": p, "mlp2": p}, update_data(), jax.random.key(0))
    np.testing.assert_allclose(float(loss), 2.5 + 4.5, rtol=1e-6)


def constant_autoencoder():
    """3 input columns (the last one padding), a 2-d code: every kernel 0, so the code is the
    code layer's bias [0.5, -1] and the output sigmoid(out bias) = [0.5, 0.75, 0.25]."""
    model = Autoencoder(inputs=3, code=2, hidden=(2,), dropout=0.0)
    params = jax.tree.map(jnp.zeros_like, model.init(jax.random.key(0), jnp.zeros((1, 3))))
    params["params"]["code"]["bias"] = jnp.array([0.5, -1.0])
    params["params"]["out"]["bias"] = jnp.array([0.0, np.log(3.0), -np.log(3.0)])
    return model, params


X = np.array([[0.5, 0.25, 0.0], [1.0, 0.75, 0.0]], np.float32)  # 2 real APs, 1 padding column


def test_reconstruction_is_the_mean_square_over_the_real_columns():
    model, params = constant_autoencoder()
    data = {"x": X, "real_columns": np.int32(2)}
    loss = autoencoder_loss(AutoencoderStatic(model, 0), params, data, jax.random.key(0))
    # errors [0, 0.5] and [-0.5, 0] on the real columns: (0.25 + 0.25) / (2 rows x 2 columns);
    # the padding column (0.25 against 0) is not counted
    np.testing.assert_allclose(float(loss), 0.5 / 4, rtol=1e-6)


def test_alignment_is_code_regression_plus_reconstruction_from_the_codes():
    model, params = constant_autoencoder()
    codes = np.array([[0.5, 0.0], [1.5, -1.0]], np.float32)
    data = {"x": X, "real_columns": np.int32(2), "codes": codes}
    loss = alignment_loss(AutoencoderStatic(model, 0), params, data, jax.random.key(0))
    # encoder: [0.5, -1] against the codes: squared errors 0, 1, 1, 0 -> mean 0.5;
    # decoder: the constant output against x, as above: 0.125
    np.testing.assert_allclose(float(loss), 0.5 + 0.125, rtol=1e-6)

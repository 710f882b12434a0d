"""Optimisers by name: each matches optax's own build on one step, and bad fields are refused."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.config import ConfigError
from jaxfp.train.optimisers import optimizer, optimizer_from_config

PARAMS = {"w": jnp.array([1.0, -2.0])}
GRADS = {"w": jnp.array([0.5, 0.25])}


def _update(tx, steps=2, **extra):
    state = tx.init(PARAMS)
    params = PARAMS
    for _ in range(steps):
        upd, state = tx.update(GRADS, state, params, **extra)
        params = optax.apply_updates(params, upd)
    return np.asarray(params["w"])


def test_sgd_with_coupled_weight_decay_by_hand():
    # one step: w - lr * (g + wd * w) (no momentum on the first step's buffer)
    tx = optimizer("sgd", 0.1, momentum=0.9, weight_decay=0.01)
    got = _update(tx, steps=1)
    np.testing.assert_allclose(got, [1.0 - 0.1 * (0.5 + 0.01), -2.0 - 0.1 * (0.25 - 0.02)], 1e-6)


@pytest.mark.parametrize(
    "section, reference",
    [
        (dict(name="adam", learning_rate=1e-2, b1=0.0, b2=0.9), optax.adam(1e-2, b1=0.0, b2=0.9)),
        (
            dict(name="adamw", learning_rate=1e-2, weight_decay=0.1),
            optax.adamw(1e-2, weight_decay=0.1),
        ),
        (
            dict(name="adamw", learning_rate=1e-2, schedule="cosine", steps=4),
            optax.adamw(optax.cosine_decay_schedule(1e-2, 4), weight_decay=1e-4),
        ),
    ],
)
def test_built_by_name_as_optax_builds_it(section, reference):
    np.testing.assert_allclose(
        _update(optimizer_from_config(section)), _update(reference), rtol=1e-6
    )


def test_plateau_divides_the_rate():
    tx = optimizer("sgd", 1.0, plateau_patience=1, plateau_steps=1, plateau_factor=0.1)
    state = tx.init(PARAMS)
    for _ in range(4):  # a loss that never improves: the scale drops
        _, state = tx.update(GRADS, state, PARAMS, value=jnp.asarray(1.0))
    assert float(state[-1].scale) < 1.0


@pytest.mark.parametrize(
    "section, message",
    [
        (dict(name="rmsprop", learning_rate=1e-3), "expected one of"),
        (dict(name="adam", learning_rate=1e-3, momentum=0.9), "unknown fields \\['momentum'\\]"),
        (dict(name="adam", learning_rate=0.0), "learning_rate: expected > 0"),
        (dict(name="adam", learning_rate=1e-3, schedule="cosine"), "steps must be > 0"),
        (dict(name="adam", learning_rate=1e-3, schedule="step"), "schedule: expected one of"),
        (dict(learning_rate=1e-3), "expected fields 'name' and 'learning_rate'"),
    ],
)
def test_bad_sections_are_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        optimizer_from_config(section)

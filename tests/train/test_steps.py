"""`apply_gradients`: the update by hand, and the finite guard as a `cond` and as a `where` (alone,
jitted with the state donated, and vmapped over members of which one goes bad)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.train import apply_gradients, make_train_step, regression_loss, steps
from jaxfp.train.state import TrainState

from . import small_problem as sp


@pytest.fixture(params=["cond", "where"])
def guard(request, monkeypatch):
    """Each test runs with the guard jaxfp takes by size forced to one kind."""
    monkeypatch.setattr(steps, "COND_GUARD_MIN_PARAMS", 0 if request.param == "cond" else 10**12)
    return request.param


def test_the_guard_follows_the_parameter_count(monkeypatch):
    state = _state()  # 3 parameters
    grads = {"w": jnp.ones(2), "b": jnp.array(1.0)}
    for threshold, kind in ((3, "cond"), (4, "where")):
        monkeypatch.setattr(steps, "COND_GUARD_MIN_PARAMS", threshold)
        fresh = jax.jit(lambda *args: apply_gradients(*args))  # a new trace per threshold
        text = fresh.lower(state, grads, jnp.array(1.0)).as_text()
        assert ("stablehlo.case" in text) == (kind == "cond")
    with pytest.raises(ValueError, match="guard 'if'"):
        apply_gradients(state, grads, jnp.array(1.0), guard="if")


def _state() -> TrainState:
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    return TrainState.create(
        apply_fn=None, params=params, tx=optax.sgd(0.1, momentum=0.5), batch_stats={"m": 3.0}
    )


def test_a_finite_step_is_the_optimiser_update_by_hand(guard):
    state = _state()
    grads = {"w": jnp.array([3.0, 4.0]), "b": jnp.array(0.0)}
    new, norms = apply_gradients(state, grads, jnp.array(1.0), batch_stats={"m": 4.0})
    # SGD with momentum from a zero trace: trace = g, update = -0.1 g.
    np.testing.assert_allclose(new.params["w"], [1.0 - 0.3, -2.0 - 0.4], rtol=1e-6)
    np.testing.assert_allclose(new.params["b"], 0.5)
    np.testing.assert_allclose(new.opt_state[0].trace["w"], [3.0, 4.0])
    assert float(new.batch_stats["m"]) == 4.0 and int(new.step) == 1
    np.testing.assert_allclose(norms["grad_norm"], 5.0, rtol=1e-6)
    np.testing.assert_allclose(norms["update_norm"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(norms["param_norm"], np.sqrt(0.7**2 + 2.4**2 + 0.25), rtol=1e-6)
    assert float(norms["finite"]) == 1.0


def test_a_non_finite_loss_or_gradient_keeps_the_state_and_moves_the_step(guard):
    state = _state()
    state, _ = apply_gradients(state, {"w": jnp.ones(2), "b": jnp.array(1.0)}, jnp.array(1.0))
    for loss, grad in ((jnp.nan, 1.0), (1.0, jnp.inf), (jnp.inf, 1.0)):
        grads = {"w": jnp.array([grad, 1.0]), "b": jnp.array(1.0)}
        new, norms = apply_gradients(state, grads, jnp.array(loss), batch_stats={"m": 9.0})
        chex.assert_trees_all_equal(new.params, state.params)
        chex.assert_trees_all_equal(new.opt_state, state.opt_state)
        chex.assert_trees_all_equal(new.batch_stats, state.batch_stats)
        assert int(new.step) == int(state.step) + 1
        assert float(norms["finite"]) == 0.0 and float(norms["update_norm"]) == 0.0


def test_the_jitted_donated_step_keeps_the_state_on_a_nan_batch(guard):
    data = sp.dataset()
    batch_at = sp.batch_at_factory(data, 16, 0, nan_at=1)
    step = make_train_step(regression_loss(sp.model().apply))
    state, _ = step(sp.initial_state(), batch_at(0), jax.random.key(0))
    before = jax.tree.map(np.array, (state.params, state.opt_state, state.batch_stats))
    state, metrics = step(state, batch_at(1), jax.random.key(0))
    chex.assert_trees_all_equal((state.params, state.opt_state, state.batch_stats), before)
    assert float(metrics["finite"]) == 0.0 and int(state.step) == 2
    state, metrics = step(state, batch_at(2), jax.random.key(0))
    assert float(metrics["finite"]) == 1.0 and float(metrics["update_norm"]) > 0.0


def test_vmapped_members_guard_each_member_alone(guard):
    data = sp.dataset()
    good = sp.batch_at_factory(data, 16, 0)(0)
    bad = sp.batch_at_factory(data, 16, 0, nan_at=0)(0)
    batches = jax.tree.map(lambda a, b: jnp.stack([a, b]), good, bad)
    states = jax.vmap(sp.initial_state)(jnp.arange(2))
    step = jax.jit(jax.vmap(make_train_step(regression_loss(sp.model().apply), jit=False)))
    new, metrics = step(states, batches, jax.random.split(jax.random.key(0), 2))
    np.testing.assert_array_equal(metrics["finite"], [1.0, 0.0])
    assert float(metrics["update_norm"][1]) == 0.0 < float(metrics["update_norm"][0])
    member = lambda tree, m: jax.tree.map(lambda a: a[m], tree)  # noqa: E731
    chex.assert_trees_all_equal(member(new.params, 1), member(states.params, 1))
    chex.assert_trees_all_equal(member(new.opt_state, 1), member(states.opt_state, 1))
    chex.assert_trees_all_equal(member(new.batch_stats, 1), member(states.batch_stats, 1))
    one, _ = make_train_step(regression_loss(sp.model().apply), donate=False)(
        member(states, 0), good, jax.random.split(jax.random.key(0), 2)[0]
    )
    chex.assert_trees_all_close(member(new.params, 0), one.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(new.step, [1, 1])

"""Short in-memory fits: losses logged once per step, a non-finite loss stops with its step, and a
compiled step is reused exactly when the static settings and shapes match."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxfp.train import MetricWriter, NonFiniteError, StepLog, optimise
from jaxfp.train.optimise import _steps


def quadratic(static, params, data, key):
    scale = static
    return scale * jnp.sum((params["w"] - data) ** 2)


def test_logs_every_nth_and_the_last_step_once(tmp_path):
    writer = MetricWriter(str(tmp_path))
    log = StepLog(writer, log_every=2)
    log.record("a", np.arange(4.0))
    log.record("b", np.arange(3.0))
    writer.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    assert lines == [
        {"step": 2, "a/loss": 1.0},
        {"step": 4, "a/loss": 3.0},
        {"step": 6, "b/loss": 1.0},
        {"step": 7, "b/loss": 2.0},
    ]
    with pytest.raises(NonFiniteError, match="c: non-finite loss nan at step 2 of 2"):
        log.record("c", np.array([1.0, np.nan]))


def test_optimise_converges_and_reuses_its_compiled_step():
    target = jnp.array([1.0, -2.0])
    before = _steps._cache_size()
    params, loss = optimise(
        quadratic, 1.0, {"w": jnp.zeros(2)}, target, jax.random.key(0), 300, 0.1, "q"
    )
    np.testing.assert_allclose(params["w"], target, atol=1e-2)
    assert loss < 1e-3
    optimise(quadratic, 1.0, {"w": jnp.ones(2)}, -target, jax.random.key(1), 100, 0.1, "q")
    assert _steps._cache_size() == before + 1  # same static, shapes and rate: one compile
    optimise(quadratic, 1.0, {"w": jnp.ones(2)}, -target, jax.random.key(1), 3, 0.1, "q")
    assert _steps._cache_size() == before + 2  # a partial chunk: its own compile, once
    optimise(quadratic, 1.0, {"w": jnp.ones(2)}, target, jax.random.key(2), 53, 0.1, "q")
    assert _steps._cache_size() == before + 2
    optimise(quadratic, 2.0, {"w": jnp.ones(2)}, target, jax.random.key(1), 3, 0.1, "q")
    assert _steps._cache_size() == before + 3  # another static: its own compile


def test_a_partial_chunk_takes_exactly_the_steps_asked_for():
    """53 steps = a whole chunk and 3 of the next: the same parameters as 53 plain Adam steps."""
    target = jnp.array([1.0, -2.0])
    params, _ = optimise(
        quadratic, 1.0, {"w": jnp.zeros(2)}, target, jax.random.key(0), 53, 0.1, "q"
    )
    w, opt = {"w": jnp.zeros(2)}, optax.adam(0.1)
    state = opt.init(w)
    for key in jax.random.split(jax.random.key(0), 53):
        grads = jax.grad(lambda p, k: quadratic(1.0, p, target, k))(w, key)
        updates, state = opt.update(grads, state, w)
        w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(params["w"], w["w"], rtol=1e-5, atol=1e-6)


def climbing(static, params, data, key):
    """-sum(w): Adam raises w by its learning rate a step; the loss turns NaN once w passes
    `static` (0.35 at a rate of 0.1: step 5)."""
    w = params["w"]
    return jnp.where(w[0] > static, jnp.nan, -jnp.sum(w))


@pytest.mark.parametrize(
    "threshold, steps, rate, where",
    [(0.35, 7, 0.1, "step 5 of 7"), (0.3525, 120, 0.005, "step 72 of 120")],  # a later chunk
)
def test_a_non_finite_step_inside_a_chunk_stops_the_fit_naming_it(threshold, steps, rate, where):
    with pytest.raises(NonFiniteError, match=f"climb: non-finite loss nan at {where}; stopped"):
        optimise(
            climbing, threshold, {"w": jnp.zeros(1)}, None, jax.random.key(0), steps, rate, "climb"
        )


def test_an_optimiser_section_by_name_and_its_checks():
    import pytest

    from jaxfp.config import ConfigError
    from jaxfp.train.optimise import optimizer_spec

    assert optimizer_spec(3e-3) == ("adam", 3e-3, ())
    assert optimizer_spec({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}) == (
        "sgd",
        0.1,
        (("momentum", 0.9),),
    )
    with pytest.raises(ConfigError, match="unknown fields"):
        optimizer_spec({"name": "adam", "learning_rate": 0.1, "momentum": 0.9})
    with pytest.raises(ValueError, match="reduce_on_plateau"):
        optimizer_spec({"name": "sgd", "learning_rate": 0.1, "plateau_patience": 2})


def test_settled_step_is_where_the_running_mean_stops_moving():
    from jaxfp.train.optimise import settled_step

    # 50 steps at 10, then 1: the first 50-step window wholly at 1 ends at step 100
    assert settled_step(np.r_[np.full(50, 10.0), np.ones(100)]) == 100
    # flat from the start: the first full window
    assert settled_step(np.ones(80)) == 50
    # a curve still falling at its end settles only at its end
    assert settled_step(np.linspace(10.0, 1.0, 200)) == 200
    # within the tolerance counts as settled: 1 % of the final mean
    wobble = np.r_[np.full(50, 10.0), np.tile([0.995, 1.005], 50)]
    assert settled_step(wobble) == 100
    assert settled_step(np.ones(10)) == 10  # shorter than a window
    # the log keeps each fit's latest curve
    log = StepLog()
    log.record("gnn", np.arange(3.0))
    log.record("gnn", np.arange(2.0))
    np.testing.assert_array_equal(log.curves["gnn"], [0.0, 1.0])

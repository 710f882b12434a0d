"""Early stopping: each member keeps its best parameters; the run stops, and stays stopped."""

import jax.numpy as jnp
import numpy as np
import optax

from jaxfp.train.early_stopping import best_state, patience_exhausted, record, track, tracking_step
from jaxfp.train.loop import fit
from jaxfp.train.options import LoopOptions
from jaxfp.train.state import TrainState


def _state(value: float) -> TrainState:
    params = {"w": jnp.full((2, 3), value)}
    return TrainState.create(apply_fn=None, params=params, tx=optax.sgd(1.0))


def test_each_member_keeps_its_own_best_and_stops_when_all_are_stale():
    tracked = track(_state(1.0), members=2)
    tracked = record("val")(tracked, {"val": jnp.array([3.0, 2.0])})
    tracked = tracked.replace(state=tracked.state.replace(params={"w": jnp.full((2, 3), 5.0)}))
    tracked = record("val")(tracked, {"val": jnp.array([1.0, 4.0])})  # member 0 improves
    np.testing.assert_allclose(tracked.best_params["w"], [[5.0] * 3, [1.0] * 3])
    np.testing.assert_array_equal(tracked.stale_evals, [0, 1])
    stop = patience_exhausted(2)
    assert not stop(tracked)
    tracked = record("val")(tracked, {"val": jnp.array([9.0, 9.0])})
    assert not stop(tracked)  # member 0 is one evaluation stale
    tracked = record("val")(tracked, {"val": jnp.array([9.0, 9.0])})
    assert stop(tracked)
    np.testing.assert_allclose(best_state(tracked).params["w"][1], 1.0)


def test_fit_stops_early_keeps_the_best_and_a_rerun_stays_stopped(tmp_path):
    def step_fn(state, batch, rng):  # the parameter walks up by one per step
        del batch, rng
        return state.replace(params={"w": state.params["w"] + 1.0}, step=state.step + 1), {
            "loss": jnp.float32(0.0)
        }

    def eval_fn(tracked):  # best at w == 3, then worse
        return {"val": jnp.abs(tracked.state.params["w"][0, 0] - 3.0)}

    options = LoopOptions(num_steps=50, eval_every=1, checkpoint_every=1, log_every=1)
    kwargs = dict(after_eval=record("val"), stop_when=patience_exhausted(2))
    step = tracking_step(step_fn)
    tracked, history = fit(
        options, str(tmp_path), track(_state(0.0)), step, lambda s: None, eval_fn, **kwargs
    )
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(best_state(tracked).params["w"], 3.0)
    again, history = fit(
        options, str(tmp_path), track(_state(0.0)), step, lambda s: None, eval_fn, **kwargs
    )
    assert history == [] and int(again.state.step) == 5
    np.testing.assert_allclose(best_state(again).params["w"], 3.0)

"""Train states: Flax's TrainState with batch statistics; several players are a dict of them."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """`batch_stats` is None for networks without batch norm."""

    batch_stats: Any = None


def create_train_state(
    module: nn.Module, rng: jax.Array, sample_input: Any, tx: optax.GradientTransformation
) -> TrainState:
    """Initialise `module` on `sample_input` (its `train=False` path) and wrap it with `tx`."""
    params_key, dropout_key = jax.random.split(rng)
    variables = module.init(
        {"params": params_key, "dropout": dropout_key}, sample_input, train=False
    )
    return TrainState.create(
        apply_fn=module.apply,
        params=variables["params"],
        tx=tx,
        batch_stats=variables.get("batch_stats"),
    )


class TeacherState(TrainState):
    """A student with an exponential-moving-average teacher (Mean Teacher): the teacher's
    parameters and batch statistics follow the student's after every step."""

    teacher_params: Any = None
    teacher_batch_stats: Any = None

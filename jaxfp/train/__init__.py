"""Shared training machinery: states, steps, the loop, checkpoints, logs, many runs at once.

Takes small typed options (`LoopOptions`, `EpochOptions`), never an experiment config."""

from jaxfp.train.checkpoint import Checkpointer
from jaxfp.train.distributed import maybe_initialize_distributed
from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.logging import MetricWriter, read_metrics
from jaxfp.train.loop import NonFiniteError, fit
from jaxfp.train.members import fit_members, init_members, member_step
from jaxfp.train.optimise import StepLog, optimise
from jaxfp.train.options import EpochOptions, LoopOptions
from jaxfp.train.state import TeacherState, TrainState, create_train_state
from jaxfp.train.steps import apply_gradients, make_train_step, regression_loss
from jaxfp.train.whole_run import (
    WholeRun,
    data_parallel_step,
    make_train,
    member_mesh,
    train_members,
)
from jaxfp.train.workdir import prepare_workdir

__all__ = [
    "Checkpointer",
    "EpochOptions",
    "LoopOptions",
    "MetricWriter",
    "NonFiniteError",
    "StepLog",
    "TeacherState",
    "TrainState",
    "WholeRun",
    "apply_gradients",
    "create_train_state",
    "data_parallel_step",
    "fit",
    "fit_members",
    "init_members",
    "make_train",
    "make_train_step",
    "maybe_initialize_distributed",
    "member_mesh",
    "member_step",
    "named_int",
    "named_key",
    "named_seed",
    "optimise",
    "prepare_workdir",
    "read_metrics",
    "regression_loss",
    "train_members",
]

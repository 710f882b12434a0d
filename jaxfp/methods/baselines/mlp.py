"""An MLP that regresses x, y from a fingerprint, trained for several seeds as one program.

The first learned baseline and the training core's end-to-end path: data from `config.data` (as the
kNN experiments), inputs in `config.representation`, targets standardised with the reference set's
mean and spread (in float64, then float32), MSE loss, Adam. All seeds in `config.seeds` train at once
(vmapped, sharded over devices) and are checkpointed after every `train.epochs_per_call` epochs.
The table reports each seed, the mean over seeds with its Student-t interval (n shown), and the seeds' averaged output.
The ISO/IEC 18305 and IPIN metrics (`eval.iso18305`) score its x, y with the reference set's most common
floor and building, a model without a floor estimate (exact on a one-floor set such as DSI1).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.data.registry import load_parts
from jaxfp.data.representations import fit_min_rss, represent
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants, majority_label, standard_report, standard_table
from jaxfp.eval.metrics import position_errors, positioning_report
from jaxfp.eval.plots import cdf_plot
from jaxfp.eval.results import over_seeds, write_results
from jaxfp.nets.mlp import MLP
from jaxfp.train.members import fit_members
from jaxfp.train.optimisers import optimizer
from jaxfp.train.options import EpochOptions
from jaxfp.train.state import create_train_state
from jaxfp.train.steps import make_train_step, regression_loss
from jaxfp.train.whole_run import make_train


def build(config: ml_collections.ConfigDict, x_train: np.ndarray, y_train: np.ndarray):
    """(WholeRun, model) for standardised training arrays."""
    model = MLP(hidden=tuple(config.model.hidden), out=2, dropout=config.model.dropout)
    tx = optimizer("adamw", config.train.learning_rate, weight_decay=config.train.weight_decay)

    def init_fn(key: jax.Array):
        return create_train_state(model, key, jnp.zeros((1, x_train.shape[1])), tx)

    step = make_train_step(regression_loss(model.apply), jit=False)
    data = {"x": jnp.asarray(x_train), "y": jnp.asarray(y_train)}
    run = make_train(
        init_fn,
        step,
        data,
        config.train.batch_size,
        config.train.num_epochs,
        config.train.epochs_per_call,
    )
    return run, model


def fit_predict(
    config: ml_collections.ConfigDict,
    reference: FingerprintSet,
    queries: FingerprintSet,
    workdir: str,
) -> np.ndarray:
    """Train every seed of `config.seeds` on `reference` (one vmapped program, checkpointed and
    resumed in `workdir`) and return each seed's x, y for `queries`: (seeds, n, 2) float64 metres."""
    os.makedirs(workdir, exist_ok=True)
    queries = queries.aligned_to(reference)
    min_rss = fit_min_rss(reference.rss, reference.detected)
    x_train = represent(reference.rss, reference.detected, config.representation, min_rss)
    x_test = represent(queries.rss, queries.detected, config.representation, min_rss)
    mean, scale = reference.xy.mean(0), reference.xy.std(0).mean()
    y_train = ((reference.xy - mean) / scale).astype(np.float32)

    run, model = build(config, x_train, y_train)
    x_test_j = jnp.asarray(x_test)

    def predict(params: object) -> jax.Array:
        return model.apply({"params": params}, x_test_j, train=False)

    true_j = jnp.asarray(((queries.xy - mean) / scale).astype(np.float32))

    def eval_fn(states) -> dict[str, jax.Array]:
        out = jax.vmap(predict)(states.params)
        err = jnp.linalg.norm(out - true_j[None], axis=-1) * scale
        return {"mean_error_m": err.mean(-1)}

    rngs = jax.vmap(jax.random.key)(jnp.asarray(config.seeds, jnp.uint32))
    options = EpochOptions.from_config(config.train, seed=config.seed)
    # `eval` (the standard metrics' constants) only scores the outputs: not part of the shaping,
    # nor is the command line's record of setting it.
    shaping = {k: v for k, v in config.to_dict().items() if k != "eval"}
    given = tuple(k for k in shaping.pop("command_line", ()) if not k.startswith("eval."))
    if given:
        shaping["command_line"] = given
    states, _ = fit_members(options, workdir, run, rngs, eval_fn, "mlp seeds", shaping=shaping)
    outputs = np.asarray(jax.device_get(jax.vmap(predict)(states.params)), np.float64)
    return outputs * scale + mean


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, dict]:
    os.makedirs(workdir, exist_ok=True)
    reference = load_parts(config.data.path, list(config.data.train), config.data.format)
    queries = load_parts(config.data.path, list(config.data.test), config.data.format)
    queries = queries.aligned_to(reference)
    xy_by_seed = fit_predict(config, reference, queries, workdir)
    constants = StandardConstants.from_config(config.get("eval"))
    # x, y only: the standard metrics score the reference set's most common floor and building.
    floor = majority_label(reference.floor, queries.n) if queries.floor is not None else None
    building = (
        majority_label(reference.building, queries.n) if queries.building is not None else None
    )

    def standard(xy: np.ndarray) -> dict[str, float]:
        return standard_report(
            xy, queries.xy, floor, queries.floor, building, queries.building, constants
        )

    rows, errors = {}, {}
    for seed, xy in zip(config.seeds, xy_by_seed, strict=True):
        rows[f"seed {seed}"] = positioning_report(xy, queries.xy, seed=config.seed)
        errors[f"seed {seed}"] = position_errors(xy, queries.xy)
        if queries.floor is not None:
            rows[f"seed {seed}"].update(standard(xy))
    averaged = xy_by_seed.mean(0)
    rows["averaged output"] = positioning_report(averaged, queries.xy, seed=config.seed)
    errors["averaged output"] = position_errors(averaged, queries.xy)
    if queries.floor is not None:
        rows["averaged output"].update(standard(averaged))
    rows["over seeds"] = over_seeds([rows[f"seed {s}"]["mean"] for s in config.seeds])
    cdf_plot(errors, os.path.join(workdir, "cdf.png"), title="MLP regressor")
    title = (
        f"{config.data.path}: {reference.n} references, {queries.n} queries, seeds "
        f"{list(config.seeds)}"
    )
    columns = ["mean", "mean_ci_low", "mean_ci_high", "p50", "p80", "p90"]
    varies = "the initialisation, dropout and batch order (the set's train/test split is fixed)"
    write_results(
        workdir,
        title,
        config,
        rows,
        columns,
        standard_table(rows, constants),
        seed_varies=varies,
        standard_metrics=dataclasses.asdict(constants),
    )
    return rows

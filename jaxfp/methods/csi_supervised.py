"""CSI positioning, supervised: a backbone regresses x, y from angle-delay CSI of the labelled receivers.

The first part of the CSI positioning paper's §III-IV: the backbone comparison (Table I: parameters,
FLOPs from XLA's cost analysis, mean distance error) and the supervised baseline on the 10% labelled
receivers. Timing advance and AWGN are drawn inside the jitted step from the step key, so every epoch
sees fresh perturbations of the same traced CSI; evaluation uses a fixed key. Targets are positions
relative to the BS scaled by `target_scale_m` (a choice: the paper does not say how it normalises).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.data.csi import preprocess, splits
from jaxfp.data.csi_store import CsiDataset
from jaxfp.eval.metrics import PERCENTILES, position_errors, positioning_report
from jaxfp.eval.plots import cdf_plot, percentile_bar_plot
from jaxfp.eval.report import format_table, write_json
from jaxfp.nets import BACKBONES
from jaxfp.train.loop import fit
from jaxfp.train.state import TrainState, create_train_state
from jaxfp.train.steps import make_train_step


def make_preprocess(config: ml_collections.ConfigDict, dataset: CsiDataset):
    spacing = dataset.config["subcarrier_spacing_hz"] * dataset.config["srs_comb"]
    p = config.preprocess

    def run(csi: jax.Array, key: jax.Array) -> jax.Array:
        return preprocess(csi, key, p.snr_db, p.max_ta_s, spacing, p.crop_taps)

    return run


def make_loss(model, prep, origin: jax.Array, scale: float):
    def loss_fn(params, state: TrainState, batch, key):
        prep_key, dropout_key = jax.random.split(key)
        x = prep(batch["csi"], prep_key)
        out, updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats},
            x,
            train=True,
            rngs={"dropout": dropout_key},
            mutable=["batch_stats"],
        )
        target = (batch["xy"] - origin) / scale
        mse = jnp.mean(jnp.sum((out - target) ** 2, -1))
        distance = jnp.mean(jnp.linalg.norm(out - target, axis=-1)) * scale
        return mse, ({"mse": mse, "distance_m": distance}, updates["batch_stats"])

    return loss_fn


def make_predict(model, prep, origin: jax.Array, scale: float):
    @jax.jit
    def predict(state: TrainState, csi: jax.Array, key: jax.Array) -> jax.Array:
        x = prep(csi, key)
        out = model.apply(
            {"params": state.params, "batch_stats": state.batch_stats}, x, train=False
        )
        return out * scale + origin

    return predict


def predict_rows(
    predict, state, dataset: CsiDataset, rows: np.ndarray, batch: int, key
) -> np.ndarray:
    """Positions for `rows`, read from disk in fixed-size batches (the last one padded)."""
    out = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        csi = dataset.csi(chunk)
        if len(chunk) < batch:
            csi = np.concatenate([csi, np.zeros((batch - len(chunk), *csi.shape[1:]), csi.dtype)])
        out.append(
            np.asarray(predict(state, jnp.asarray(csi), jax.random.fold_in(key, start)))[
                : len(chunk)
            ]
        )
    return np.concatenate(out).astype(np.float64)


def model_cost(model, state: TrainState, input_shape: tuple[int, ...]) -> dict[str, float]:
    """Parameters (M) and forward FLOPs per sample (G) from XLA's cost analysis."""

    def forward(x):
        return model.apply({"params": state.params, "batch_stats": state.batch_stats}, x)

    compiled = jax.jit(forward).lower(jnp.zeros((1, *input_shape), jnp.float32)).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return {
        "params_m": sum(p.size for p in jax.tree.leaves(state.params)) / 1e6,
        "gflops": float(cost.get("flops", float("nan"))) / 1e9,
    }


def train_backbone(config, workdir: str, dataset: CsiDataset, labelled: np.ndarray, name: str):
    """Train backbone `name` on the labelled rows with the shared loop; returns (state, model, helpers)."""
    model = BACKBONES[name](**({"dropout": config.model.dropout} if name == "mobilenet_v2" else {}))
    prep = make_preprocess(config, dataset)
    origin = jnp.asarray(config.bs_xy, jnp.float32)
    scale = config.target_scale_m
    sample = prep(jnp.asarray(dataset.csi(labelled[:1])), jax.random.key(0))
    tx = optax.adamw(
        optax.cosine_decay_schedule(config.train.learning_rate, config.train.num_steps),
        weight_decay=config.train.weight_decay,
    )
    state = create_train_state(model, jax.random.key(config.seed), sample, tx)
    csi_l = dataset.csi(labelled)
    xy_l = dataset.xy[labelled].astype(np.float32)
    batch = config.train.batch_size
    per_epoch = max(len(labelled) // batch, 1)

    def batch_at(step: int) -> dict[str, np.ndarray]:
        epoch, i = divmod(step, per_epoch)
        order = np.random.default_rng([config.seed, epoch]).permutation(len(labelled))
        pick = order[i * batch : (i + 1) * batch]
        return {"csi": csi_l[pick], "xy": xy_l[pick]}

    step = make_train_step(make_loss(model, prep, origin, scale))
    state, _ = fit(config, os.path.join(workdir, name), state, step, batch_at, desc=name)
    return state, model, make_predict(model, prep, origin, scale), sample.shape[1:]


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, dict]:
    """Train every backbone in config.backbones on the labelled split; Table I plus percentiles."""
    os.makedirs(workdir, exist_ok=True)
    dataset = CsiDataset(config.data.path)
    # Receivers no traced path reaches carry all-zero CSI (22% of the full LoS + specular set).
    usable = (
        np.flatnonzero(dataset.num_paths > 0)
        if config.data.drop_pathless
        else np.arange(len(dataset))
    )
    parts = {
        name: usable[rows]
        for name, rows in splits(
            dataset.xy[usable],
            config.data.labelled_fraction,
            config.data.test_fraction,
            config.data.split_seed,
        ).items()
    }
    rows, errors = {}, {}
    for name in config.backbones:
        start = time.perf_counter()
        state, model, predict, input_shape = train_backbone(
            config, workdir, dataset, parts["labelled"], name
        )
        seconds = time.perf_counter() - start
        xy = predict_rows(
            predict, state, dataset, parts["test"], config.eval_batch, jax.random.key(1)
        )
        report = positioning_report(xy, dataset.xy[parts["test"]], seed=config.seed)
        rows[name] = {**model_cost(model, state, input_shape), **report, "train_s": seconds}
        errors[name] = position_errors(xy, dataset.xy[parts["test"]])
    cdf_plot(errors, os.path.join(workdir, "cdf.png"), title="CSI positioning, supervised")
    percentile_bar_plot(errors, os.path.join(workdir, "percentiles.png"), title="error percentiles")
    write_json(
        os.path.join(workdir, "results.json"),
        {
            "config": config.to_dict(),
            "split_sizes": {k: len(v) for k, v in parts.items()},
            "receivers_without_path_dropped": int(len(dataset) - len(usable)),
            "results": rows,
        },
    )
    columns = ["params_m", "gflops", "mean", *(f"p{q}" for q in PERCENTILES if q != 95), "train_s"]
    print(
        f"{config.data.path}: {len(dataset)} receivers; labelled {len(parts['labelled'])}, "
        f"test {len(parts['test'])}"
    )
    print(format_table(rows, columns))
    return rows

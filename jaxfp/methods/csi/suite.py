"""The shared machinery of the CSI paper's experiments (Table I, Table II, Fig. 4): the split, the
in-memory CSI, stacked-seed states, training stages and prediction.

All seeds in config.seeds train at once: states carry a leading member axis, sharded over devices
by `member_step` (each device its own members, no collective); each member draws its own batches,
noise and pseudo labels. The labelled, (unlabelled) and test CSI are read into memory once (the
small etoile set: ~0.9 GB; the full set: ~6.6 GB). Every training stage is a `fit` run with its own
workdir, checkpoints and metrics, keyed by the part of the config that shapes it: a restart with
the same settings resumes or reuses the stage, changed settings recompute it (and say so). Keys,
batch orders and bootstrap samples come from the stage's name. The site (BS position, sector
boresights) is read from the data set's header, never from the experiment config.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxfp.common.chunks import map_chunks
from jaxfp.common.geometry import SiteFrame
from jaxfp.data.csi import preprocess, splits
from jaxfp.data.csi_store import CsiDataset
from jaxfp.data.types import DataFormatError
from jaxfp.methods.csi.heads import PositionHeads
from jaxfp.nets import BACKBONES
from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.loop import fit
from jaxfp.train.members import init_members, member_step
from jaxfp.train.options import LoopOptions
from jaxfp.train.state import TeacherState, TrainState
from jaxfp.train.whole_run import member_mesh

# Config sections that belong to one method each; a stage's shaping config drops the others.
METHOD_SECTIONS = ("mean_teacher", "fixmatch", "consistency", "finetune", "ensemble", "sector")
# Config keys that never change a trained stage.
NOT_SHAPING = ("methods", "backbones", "command_line", "eval_batch")


def site_frame(dataset: CsiDataset, scale_m: float) -> SiteFrame:
    """The BS position and sector boresights from the data set's header (datagen wrote them)."""
    missing = [k for k in ("bs_position", "sector_azimuths_deg") if k not in dataset.config]
    if missing:
        raise DataFormatError(
            f"{dataset.root}/dataset.json: config lacks {missing}; expected the site's "
            "bs_position (x, y, z) and sector_azimuths_deg, as datagen writes them"
        )
    bs = dataset.config["bs_position"]
    azimuths = dataset.config["sector_azimuths_deg"]
    return SiteFrame(
        (float(bs[0]), float(bs[1])), float(scale_m), tuple(math.radians(a) for a in azimuths)
    )


class Suite:
    """The split, the in-memory CSI, the stacked-seed training and prediction helpers."""

    def __init__(
        self, config: ml_collections.ConfigDict, workdir: str, with_unlabelled: bool = True
    ) -> None:
        self.config, self.workdir = config, workdir
        dataset = CsiDataset(config.data.path)
        usable = (
            np.flatnonzero(dataset.num_paths > 0)
            if config.data.drop_pathless
            else np.arange(len(dataset))
        )
        parts = splits(
            dataset.xy[usable],
            config.data.labelled_fraction,
            config.data.test_fraction,
            config.data.split_seed,
        )
        self.rows = {name: usable[idx] for name, idx in parts.items()}
        train_rows = self.rows["labelled"]
        if with_unlabelled:
            train_rows = np.concatenate([train_rows, self.rows["unlabelled"]])
        self.n_labelled = len(self.rows["labelled"])
        self.train_csi = dataset.csi(train_rows)
        self.train_xy = dataset.xy[train_rows].astype(np.float32)  # unlabelled: scoring only
        self.train_sector = dataset.sector[train_rows].astype(np.int32)
        self.test_csi = dataset.csi(self.rows["test"])
        self.test_xy = dataset.xy[self.rows["test"]].astype(np.float64)
        self.test_sector = dataset.sector[self.rows["test"]].astype(np.int32)
        self.geometry = site_frame(dataset, config.target_scale_m)
        spacing = dataset.config["subcarrier_spacing_hz"] * dataset.config["srs_comb"]
        p = config.preprocess

        def prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(csi, key, p.snr_db, p.max_ta_s, spacing, p.crop_taps)

        def strong_prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(
                csi,
                key,
                p.snr_db - p.strong_snr_drop_db,
                p.max_ta_s * p.strong_ta_factor,
                spacing,
                p.crop_taps,
            )

        self.prep, self.strong_prep = prep, strong_prep
        self.seeds = tuple(config.seeds)
        self.n = len(self.seeds)
        self.mesh = member_mesh(self.n)
        self.sharded = NamedSharding(self.mesh, P("members"))
        self.sample = prep(jnp.asarray(self.train_csi[:1]), jax.random.key(0))
        self.dataset_size = len(dataset)
        self._compiled: dict[Callable, Callable] = {}
        self.shaping_base = {
            k: v
            for k, v in config.to_dict().items()
            if k not in METHOD_SECTIONS and k not in NOT_SHAPING
        }
        self._forwards: dict[int, tuple[Any, Callable]] = {}

    # --- models and states ------------------------------------------------------------------
    def model(self, backbone: str, width: int = 0, heads: int = 1, cells: int = 0) -> PositionHeads:
        kwargs: dict[str, Any] = {"outputs": None}
        if width:
            kwargs["width"] = width
        if backbone == "mobilenet_v2":
            kwargs["dropout"] = self.config.model.dropout
        return PositionHeads(BACKBONES[backbone](**kwargs), num_heads=heads, num_cells=cells)

    def optimizer(self, learning_rate: float, steps: int) -> optax.GradientTransformation:
        return optax.adamw(
            optax.cosine_decay_schedule(learning_rate, steps),
            weight_decay=self.config.train.weight_decay,
        )

    def new_states(
        self, model, tx, stage: str, teacher: bool = False, init_from: TrainState | None = None
    ) -> TrainState:
        """Stacked states, one per seed: fresh weights (keyed by seed and `stage`), or
        `init_from`'s with a fresh optimizer."""
        keys = jnp.stack([named_key(seed, stage, "init") for seed in self.seeds])
        cls = TeacherState if teacher else TrainState

        def make(params, batch_stats) -> TrainState:
            extra = (
                {"teacher_params": params, "teacher_batch_stats": batch_stats} if teacher else {}
            )
            return cls.create(
                apply_fn=model.apply, params=params, tx=tx, batch_stats=batch_stats, **extra
            )

        if init_from is not None:
            return jax.jit(jax.vmap(make), out_shardings=self.sharded)(
                init_from.params, init_from.batch_stats
            )

        def init(key: jax.Array) -> TrainState:
            params_key, dropout_key = jax.random.split(key)
            variables = model.init({"params": params_key, "dropout": dropout_key}, self.sample)
            return make(variables["params"], variables["batch_stats"])

        return init_members(init, keys, self.mesh)

    # --- training -----------------------------------------------------------------------------
    def train(
        self,
        name: str,
        state: TrainState,
        step_fn: Callable,
        num_steps: int,
        targets: np.ndarray,
        weights: np.ndarray,
        pools: list[np.ndarray],
        sections: Sequence[str] = (),
        unlabelled: bool = False,
        upstream: Any = None,
    ) -> TrainState:
        """`num_steps` of `step_fn` (un-jitted) for every member under workdir/name.

        targets (members, rows, 2) metres and weights (members, rows) index the train table;
        pools[m] lists the rows member m draws from (labelled, pseudo-labelled, bootstrapped).
        The stage is keyed by the shared settings, the config `sections` it uses and `upstream`
        (what it was started from, e.g. the previous round's stage name).
        """
        t = self.config.train
        stage_seed = named_seed(self.config.seed, name)
        options = LoopOptions.from_config(
            t, seed=named_int(self.config.seed, name), num_steps=int(num_steps)
        )
        shaping = {
            **self.shaping_base,
            **{k: self.config[k].to_dict() for k in sections},
            "stage": {"name": name, "num_steps": int(num_steps), "upstream": upstream},
        }
        batch, ubatch = t.batch_size, t.get("unlabelled_batch_size", 0)
        unlabelled_rows = np.arange(self.n_labelled, len(self.train_csi))
        member = np.arange(self.n)[:, None]

        def draw(pool: np.ndarray, size: int, step: int, m: int, stream: int) -> np.ndarray:
            per_epoch = max(len(pool) // size, 1)
            epoch, i = divmod(step, per_epoch)
            order = np.random.default_rng([*stage_seed, stream, m, epoch]).permutation(pool)
            if len(order) < size:  # tiny test sets: wrap around
                order = np.resize(order, size)
            return order[i * size : (i + 1) * size]

        def batch_at(step: int) -> dict[str, np.ndarray]:
            idx = np.stack([draw(pools[m], batch, step, m, 0) for m in range(self.n)])
            out = {
                "csi": self.train_csi[idx],
                "xy": targets[member, idx].astype(np.float32),
                "weight": weights[member, idx].astype(np.float32),
                "sector": self.train_sector[idx],
            }
            if unlabelled:
                uidx = np.stack([draw(unlabelled_rows, ubatch, step, m, 1) for m in range(self.n)])
                out["ucsi"] = self.train_csi[uidx]
                out["usector"] = self.train_sector[uidx]
            return out

        # Stages that share a step function (the consistency fine-tunes) share its compilation.
        if step_fn not in self._compiled:
            self._compiled[step_fn] = member_step(step_fn, self.n, self.mesh)
        step = self._compiled[step_fn]
        workdir = os.path.join(self.workdir, name)
        state, _ = fit(options, workdir, state, step, batch_at, desc=name, shaping=shaping)
        return state

    def split_summary(self) -> dict[str, Any]:
        """The split's sizes and how many receivers without a traced path were dropped."""
        sizes = {name: int(len(r)) for name, r in self.rows.items()}
        dropped = int(self.dataset_size - sum(sizes.values()))
        return {"split_sizes": sizes, "receivers_without_path_dropped": dropped}

    def labelled_targets(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        rows = len(self.train_csi)
        targets = np.zeros((self.n, rows, 2), np.float32)
        targets[:, : self.n_labelled] = self.train_xy[: self.n_labelled]
        weights = np.zeros((self.n, rows), np.float32)
        weights[:, : self.n_labelled] = 1.0
        return targets, weights, [np.arange(self.n_labelled)] * self.n

    # --- prediction ---------------------------------------------------------------------------
    def predict(self, model, state: TrainState, csi: np.ndarray) -> dict[str, np.ndarray]:
        """xy (members, rows, heads, 2) in metres and features (members, rows, F); a fixed key
        draws the same TA and noise for every model, so predictions are repeatable."""
        run = self._forward(model)

        def chunk(block: np.ndarray, start: int) -> dict[str, jax.Array]:
            x = self.prep(jnp.asarray(block), jax.random.fold_in(jax.random.key(1), start))
            return run(state, x)

        out = map_chunks(chunk, csi, self.config.eval_batch, axis=1)
        return {k: v.astype(np.float64) for k, v in out.items()}

    def _forward(self, model) -> Callable:
        """The jitted stacked forward pass of `model`, compiled once per model."""
        key = id(model)
        if key not in self._forwards:
            origin = jnp.asarray(self.geometry.origin, jnp.float32)
            scale = self.geometry.scale

            @jax.jit
            def run(state: TrainState, x: jax.Array) -> dict[str, jax.Array]:
                def one(params, batch_stats):
                    variables = {"params": params, "batch_stats": batch_stats}
                    out = model.apply(variables, x, train=False)
                    return {"xy": out["xy"] * scale + origin, "features": out["features"]}

                return jax.vmap(one)(state.params, state.batch_stats)

            self._forwards[key] = (model, run)  # the model is kept so its id stays unique
        return self._forwards[key][1]

    def test_positions(self, model, state: TrainState) -> np.ndarray:
        """(members, test rows, 2): each test row from its own sector's head."""
        xy = self.predict(model, state, self.test_csi)["xy"]
        if xy.shape[2] == 1:
            return xy[:, :, 0]
        return xy[:, np.arange(len(self.test_xy)), self.test_sector]

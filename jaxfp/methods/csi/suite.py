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

import functools
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

from jaxfp.common.chunks import map_chunks, pad_rows
from jaxfp.common.geometry import SiteFrame
from jaxfp.config import ConfigError, choice
from jaxfp.data.csi import (
    LogPower,
    angle_delay,
    awgn,
    los_delay_s,
    los_safe_crop,
    preprocess,
    splits,
    ta_invariant_profile,
    tap_duration_s,
    timing_advance,
)
from jaxfp.data.csi_store import CsiDataset
from jaxfp.data.types import DataFormatError
from jaxfp.methods.csi.heads import PositionHeads
from jaxfp.nets import BACKBONES
from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.loop import fit
from jaxfp.train.members import (
    SEED_EXECUTION,
    init_members,
    member_slices,
    member_step,
    stack_members,
)
from jaxfp.train.options import LoopOptions
from jaxfp.train.state import TeacherState, TrainState
from jaxfp.train.whole_run import member_mesh

# Config sections that belong to one method each; a stage's shaping config drops the others.
METHOD_SECTIONS = ("mean_teacher", "fixmatch", "consistency", "finetune", "ensemble", "sector")
# Config keys that never change a trained stage.
NOT_SHAPING = ("methods", "backbones", "command_line", "eval_batch", "seed_execution")


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
        sampling = config.data.get("labelled_sampling", "uneven")
        if sampling not in ("uneven", "uniform"):
            raise ConfigError(
                f"data.labelled_sampling: expected 'uneven' or 'uniform', got {sampling!r}"
            )
        parts = splits(
            dataset.xy[usable],
            config.data.labelled_fraction,
            config.data.test_fraction,
            config.data.split_seed,
            unevenness=3.0 if sampling == "uneven" else 0.0,
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
        self.geometry = site_frame(dataset, config.target_scale_m)._replace(
            sector_frame=bool(config.get("sector_frame", False))
        )
        spacing = dataset.config["subcarrier_spacing_hz"] * dataset.config["srs_comb"]
        self.spacing_hz = spacing
        p = config.preprocess
        longest_ta_s = p.max_ta_s * max(p.strong_ta_factor, 1.0)
        self.crop_taps = crop_for(dataset, p.crop_taps, longest_ta_s, spacing)
        self.log_power = (
            LogPower(reference_level_db(self.train_csi[: self.n_labelled], self.crop_taps))
            if p.get("log_power", False)
            else None
        )
        crop, log_power = self.crop_taps, self.log_power

        def prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(csi, key, p.snr_db, p.max_ta_s, spacing, crop, log_power)

        def strong_prep(csi: jax.Array, key: jax.Array) -> jax.Array:
            return preprocess(
                csi,
                key,
                p.snr_db - p.strong_snr_drop_db,
                p.max_ta_s * p.strong_ta_factor,
                spacing,
                crop,
                log_power,
            )

        self.prep, self.strong_prep = prep, strong_prep

        # Built once: `signatures` is called per method and per round (one compile per shape).
        @functools.partial(jax.jit, static_argnames="bins")
        def signature(block: jax.Array, key: jax.Array, bins: int) -> jax.Array:
            ta_key, noise_key = jax.random.split(key)
            if p.max_ta_s > 0:
                block = timing_advance(block, ta_key, p.max_ta_s, spacing)
            if p.snr_db is not None:
                block = awgn(block, noise_key, p.snr_db)
            return ta_invariant_profile(block, bins)

        self._signature = signature
        self.seeds = tuple(config.seeds)
        self.n = len(self.seeds)
        self.mesh = member_mesh(self.n)
        # One vmapped program for all seeds, or a jitted step per seed in turn (README
        # "Performance": for ResNetTiny on XLA:CPU 0.92-1.23x idle, 1.65x beside other jobs).
        self.seed_execution = choice(config, "seed_execution", SEED_EXECUTION, "vmap")
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
            self._compiled[step_fn] = member_step(step_fn, self.n, self.mesh, self.seed_execution)
        step = self._compiled[step_fn]
        workdir = os.path.join(self.workdir, name)
        state, _ = fit(options, workdir, state, step, batch_at, desc=name, shaping=shaping)
        return state

    def ssl_steps(self, section: str) -> int:
        """A semi-supervised method's own budget (`<section>.num_steps`), else train.num_steps."""
        return int(self.config[section].get("num_steps", 0) or self.config.train.num_steps)

    def unlabelled_passes(self) -> dict[str, float]:
        """How many times each method that draws unlabelled batches sees the unlabelled pool."""
        pool = len(self.train_csi) - self.n_labelled
        batch = self.config.train.get("unlabelled_batch_size", 0)
        if not pool or not batch:
            return {}
        fixmatch = self.ssl_steps("fixmatch") * batch / pool
        passes = {
            "mean_teacher": self.ssl_steps("mean_teacher") * batch / pool,
            "fixmatch": fixmatch,
            "fixmatch_distance": fixmatch,
        }
        if self.config.sector.consistency_weight > 0:
            passes["sector_heads"] = self.config.train.num_steps * batch / pool
        return passes

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
    def predict(
        self, model, state: TrainState, csi: np.ndarray, sector: np.ndarray, view: int = 1
    ) -> dict[str, np.ndarray]:
        """xy (members, rows, heads, 2) in metres (rotated back from each row's sector frame when
        the frame is on), features (members, rows, F) and, for a model with cell logits, the top
        cell probability (members, rows); a fixed key (`view`) draws the same TA and noise for
        every model, so predictions are repeatable."""
        run = self._forward(model)
        sector = np.asarray(sector, np.int32)

        def chunk(block: np.ndarray, start: int) -> dict[str, jax.Array]:
            x = self.prep(jnp.asarray(block), jax.random.fold_in(jax.random.key(view), start))
            rows = pad_rows(sector[start : start + len(block)], len(block))
            return run(state, x, jnp.asarray(rows))

        out = map_chunks(chunk, csi, self.config.eval_batch, axis=1)
        return {k: v.astype(np.float64) for k, v in out.items()}

    def _forward(self, model) -> Callable:
        """The jitted stacked forward pass of `model`, compiled once per model."""
        key = id(model)
        if key not in self._forwards:
            geometry = self.geometry

            def one(params, batch_stats, x: jax.Array, sector: jax.Array) -> dict[str, jax.Array]:
                variables = {"params": params, "batch_stats": batch_stats}
                out = model.apply(variables, x, train=False)
                xy = geometry.positions(out["xy"], sector[:, None])
                found = {"xy": xy, "features": out["features"]}
                if "logits" in out:
                    found["cell_confidence"] = jnp.max(jax.nn.softmax(out["logits"]), -1)
                return found

            @jax.jit
            def vmapped(state: TrainState, x: jax.Array, sector: jax.Array) -> dict[str, jax.Array]:
                return jax.vmap(one, in_axes=(0, 0, None, None))(
                    state.params, state.batch_stats, x, sector
                )

            one_seed, slices = jax.jit(one), jax.jit(member_slices, static_argnums=1)

            def looped(state: TrainState, x: jax.Array, sector: jax.Array) -> dict[str, jax.Array]:
                seeds = slices((state.params, state.batch_stats), self.n)
                return stack_members([one_seed(*seed, x, sector) for seed in seeds])

            run = looped if self.seed_execution == "loop" else vmapped
            self._forwards[key] = (model, run)  # the model is kept so its id stays unique
        return self._forwards[key][1]

    def positions(
        self, model, state: TrainState, csi: np.ndarray, sector: np.ndarray
    ) -> np.ndarray:
        """(members, rows, 2) metres: each row from its own sector's head."""
        xy = self.predict(model, state, csi, sector)["xy"]
        if xy.shape[2] == 1:
            return xy[:, :, 0]
        return xy[:, np.arange(len(sector)), np.asarray(sector)]

    def test_positions(self, model, state: TrainState) -> np.ndarray:
        """(members, test rows, 2): the held-out receivers."""
        return self.positions(model, state, self.test_csi, self.test_sector)

    def unlabelled_positions(self, model, state: TrainState) -> np.ndarray:
        """(members, unlabelled rows, 2): the transductive score's receivers (the unlabelled pool
        the semi-supervised methods trained on without its positions)."""
        n_l = self.n_labelled
        return self.positions(model, state, self.train_csi[n_l:], self.train_sector[n_l:])

    def scored_positions(self, model, state: TrainState) -> dict[str, np.ndarray]:
        """{'test': held-out positions, 'unlabelled': the unlabelled pool's (transductive)}."""
        out = {"test": self.test_positions(model, state)}
        if len(self.train_csi) > self.n_labelled:
            out["unlabelled"] = self.unlabelled_positions(model, state)
        return out

    def signatures(self, csi: np.ndarray, bins: int) -> np.ndarray:
        """TA-invariant CSI signatures (`ta_invariant_profile`) of rows that carry a random timing
        advance and noise, as a real measurement would (fixed keys: repeatable)."""

        def chunk(block: np.ndarray, start: int) -> jax.Array:
            key = jax.random.fold_in(jax.random.key(2), start)
            return self._signature(jnp.asarray(block), key, bins)

        return map_chunks(chunk, csi, self.config.eval_batch)

    @property
    def unlabelled_xy(self) -> np.ndarray:
        return self.train_xy[self.n_labelled :].astype(np.float64)


def crop_for(dataset: CsiDataset, crop_taps: int, longest_ta_s: float, spacing_hz: float) -> int:
    """`crop_taps`, or with 0 the fewest taps that keep every receiver's LoS tap under the longest
    timing advance (`los_safe_crop`). An explicit crop that would cut some receiver's LoS tap is an
    error. Data sets without the receiver height (not traced by datagen) keep the crop unchecked."""
    subcarriers = dataset.csi_shape[-1]
    tap_s = tap_duration_s(subcarriers, spacing_hz)
    if "ue_height" not in dataset.config:
        if not crop_taps:
            raise ConfigError(
                f"preprocess.crop_taps=0 (LoS-safe crop) needs ue_height in {dataset.root}"
                "/dataset.json to place each receiver's LoS tap; set preprocess.crop_taps"
            )
        return int(crop_taps)
    bs = tuple(float(v) for v in dataset.config["bs_position"])
    farthest_s = float(los_delay_s(dataset.xy, float(dataset.config["ue_height"]), bs).max())
    needed = los_safe_crop(farthest_s, longest_ta_s, tap_s)
    if not crop_taps:
        return min(needed, subcarriers)
    if crop_taps < needed:
        raise ConfigError(
            f"preprocess.crop_taps={crop_taps} cuts the LoS tap of receivers in {dataset.root}: the "
            f"farthest LoS path arrives after {farthest_s * 1e9:.0f} ns, plus {longest_ta_s * 1e9:.0f}"
            f" ns of timing advance, needs {needed} taps of {tap_s * 1e9:.1f} ns; set 0 (LoS-safe) "
            "or a shorter max_ta_s"
        )
    return int(crop_taps)


def reference_level_db(csi: np.ndarray, crop_taps: int, chunk: int = 256) -> float:
    """The log-power channel's reference: the median over `csi` rows of their strongest pixel
    (dB of |x|^2 summed over UE antennas, clean CSI)."""

    @jax.jit
    def peak_db(block: jax.Array) -> jax.Array:
        power = jnp.sum(jnp.abs(angle_delay(block, crop_taps)) ** 2, axis=1)
        return 10.0 * jnp.log10(jnp.max(power, axis=(1, 2)) + 1e-30)

    peaks = map_chunks(lambda block, _: peak_db(jnp.asarray(block)), csi, chunk)
    return float(np.median(peaks))

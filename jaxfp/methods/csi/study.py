"""The CSI experiments on the one trainer: every seed's split of the CSI table, the preprocessing,
stacked-seed stages trained through `SeedStages.stage`, and prediction.

All seeds in config.seeds train at once: states carry a leading member axis, sharded over devices;
seed m trains on its own labelled (and unlabelled) receivers, draws its own batches (named by its
seed, the stage and the step), noise and pseudo labels, and is scored on its own test receivers
(`data.seed_splits`). Every training stage has its own workdir, checkpoints and metrics, keyed by
the config that shapes it (the shared settings, the sections the stage uses, its step count and
what it started from): a restart with the same settings resumes or reuses the stage, changed
settings recompute it (and say so). The site (BS position, sector boresights) is read from the
data set's header, never from the experiment config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.common.chunks import map_chunks
from jaxfp.config import choice
from jaxfp.data.csi import LogPower, awgn, ta_invariant_profile, timing_advance
from jaxfp.data.csi_store import CsiDataset
from jaxfp.methods.csi.budget import row_steps
from jaxfp.methods.csi.data import (
    PARTS,
    crop_for,
    load_table,
    preprocessors,
    reference_level_db,
    reference_sample,
    seed_splits,
    site_frame,
    table_index,
    usable_rows,
)
from jaxfp.methods.csi.nets import PositionHeads
from jaxfp.methods.csi.pseudo_labels import aligned_profile
from jaxfp.nets import BACKBONES
from jaxfp.train.keys import named_int, named_key
from jaxfp.train.members import SEED_EXECUTION, member_slices, stack_members
from jaxfp.train.optimisers import optimizer_from_config
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages, with_fresh_optimizer
from jaxfp.train.state import TeacherState, TrainState

# Config sections that belong to one method each; a stage's shaping config drops the others.
METHOD_SECTIONS = ("mean_teacher", "fixmatch", "consistency", "finetune", "ensemble", "sector")
# Config keys that never change a trained stage.
NOT_SHAPING = ("methods", "backbones", "command_line", "eval_batch", "seed_execution")


class Study:
    """Each seed's parts of the CSI table, the preprocessing, the stages and the predictions."""

    def __init__(
        self, config: ml_collections.ConfigDict, workdir: str, with_unlabelled: bool = True
    ) -> None:
        self.config, self.workdir = config, workdir
        self.seeds = tuple(int(s) for s in config.seeds)
        self.n = len(self.seeds)
        dataset = CsiDataset(config.data.path)
        usable = usable_rows(dataset, config.data.drop_pathless)
        split = seed_splits(dataset.xy, usable, self.seeds, config.data)
        self.sizes = {name: int(rows.shape[1]) for name, rows in split.items()}
        self.dataset_size = len(dataset)
        loaded = PARTS if with_unlabelled else ("labelled", "test")
        self.table = load_table(dataset, np.concatenate([split[p].ravel() for p in loaded]))
        self.parts = {p: table_index(self.table, split[p]) for p in loaded}
        self.geometry = site_frame(dataset, config.target_scale_m)._replace(
            sector_frame=bool(config.get("sector_frame", False))
        )
        spacing = dataset.config["subcarrier_spacing_hz"] * dataset.config["srs_comb"]
        self.spacing_hz = spacing
        p = config.preprocess
        longest_ta_s = p.max_ta_s * max(p.strong_ta_factor, 1.0)
        self.crop_taps = crop_for(dataset, p.crop_taps, longest_ta_s, spacing)
        self.log_power = None
        if p.get("log_power", False):
            sample = reference_sample(usable, config.seed, self.sizes["labelled"])
            self.log_power = LogPower(reference_level_db(dataset.csi(sample), self.crop_taps))
        prep, strong_prep = preprocessors(p, spacing, self.crop_taps, self.log_power)
        self.prep, self.strong_prep = prep, strong_prep
        self._prep_members = jax.jit(jax.vmap(prep))  # each seed its own noise key

        # Built once: `signatures` is called per seed and per method (one compile per shape).
        k = config.get("consistency", ml_collections.ConfigDict())
        bins = k.get("signature_bins", 0)
        aligned = (k.get("aligned_taps", 0), k.get("aligned_lead", 0))

        def measured(block: jax.Array, key: jax.Array) -> jax.Array:
            ta_key, noise_key = jax.random.split(key)
            if p.max_ta_s > 0:
                block = timing_advance(block, ta_key, p.max_ta_s, spacing)
            if p.snr_db is not None:
                block = awgn(block, noise_key, p.snr_db)
            return block

        # Two signatures of the same measurement (one TA and noise draw per row and seed).
        self._signature_fns = {
            "profile": jax.jit(lambda b, key: ta_invariant_profile(measured(b, key), bins)),
            "aligned": jax.jit(lambda b, key: aligned_profile(measured(b, key), *aligned)),
        }
        self._signatures: dict[tuple[int, str], np.ndarray] = {}
        self.region = dataset.config.get("region")  # the surveyed area, where datagen wrote it
        # One vmapped program for all seeds, or a jitted step per seed in turn (for the tiny
        # ResNet on XLA:CPU the loop is up to 1.65x faster; docs/performance.md).
        self.execution = choice(config, "seed_execution", SEED_EXECUTION, "vmap")
        shared = {
            k: v
            for k, v in config.to_dict().items()
            if k not in METHOD_SECTIONS and k not in NOT_SHAPING
        }
        self.stages = SeedStages(workdir, self.seeds, shared, self.execution)
        # One preprocessed row: the shape models are initialised on (its values are unused).
        self.sample = prep(jnp.asarray(self.table.csi[:1]), jax.random.key(0))
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
        """config.optimizer (adamw, cosine decay) at a stage's own rate and length."""
        return optimizer_from_config(
            self.config.optimizer, learning_rate=float(learning_rate), steps=int(steps)
        )

    def initial(self, model, tx, teacher: bool = False) -> Callable[[jax.Array], TrainState]:
        """A fresh state of `model` for one seed's key (`SeedStages` names the key by seed and
        stage); with `teacher`, the EMA teacher starts as the student."""
        cls = TeacherState if teacher else TrainState

        def init(key: jax.Array) -> TrainState:
            params_key, dropout_key = jax.random.split(key)
            variables = model.init({"params": params_key, "dropout": dropout_key}, self.sample)
            params, batch_stats = variables["params"], variables["batch_stats"]
            extra = (
                {"teacher_params": params, "teacher_batch_stats": batch_stats} if teacher else {}
            )
            return cls.create(
                apply_fn=model.apply, params=params, tx=tx, batch_stats=batch_stats, **extra
            )

        return init

    # --- training -----------------------------------------------------------------------------
    def train(
        self,
        name: str,
        init: Callable[[jax.Array], TrainState] | TrainState,
        step_fn: Callable,
        num_steps: int,
        targets: np.ndarray,
        weights: np.ndarray,
        pools: Sequence[np.ndarray],
        sections: Sequence[str] = (),
        unlabelled: bool = False,
        upstream: Any = None,
    ) -> TrainState:
        """`num_steps` of `step_fn` (un-jitted, one seed's step) for every seed under
        workdir/name, from `init` (`initial(...)`, or stacked states with a fresh optimizer for a
        fine-tune: `finetune_from`).

        targets (seeds, table rows, 2) metres and weights (seeds, table rows) index the table;
        pools[m] lists the table rows seed m draws its labelled batches from (labelled,
        pseudo-labelled, bootstrapped); with `unlabelled`, each batch adds rows of seed m's
        unlabelled part. The stage is keyed by the shared settings, the config `sections` it uses,
        its steps and `upstream` (what it started from, e.g. the previous round's stage name).
        """
        t = self.config.train
        options = LoopOptions.from_config(
            t, seed=named_int(self.config.seed, name), num_steps=int(num_steps)
        )
        shaping = {
            **{k: self.config[k].to_dict() for k in sections},
            "num_steps": int(num_steps),
            "upstream": upstream,
        }
        size, usize = t.batch_size, t.get("unlabelled_batch_size", 0)
        table = self.table
        unlabelled_rows = self.parts.get("unlabelled")

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            idx = draw(rng, pools[m], size)
            out = {
                "csi": table.csi[idx],
                "xy": targets[m, idx].astype(np.float32),
                "weight": weights[m, idx].astype(np.float32),
                "sector": table.sector[idx],
            }
            if unlabelled:
                uidx = draw(rng, unlabelled_rows[m], usize)
                out["ucsi"] = table.csi[uidx]
                out["usector"] = table.sector[uidx]
            return out

        return self.stages.stage(name, init, step_fn, batch_of, options, shaping)

    def finetune_from(self, states: TrainState, tx: optax.GradientTransformation) -> TrainState:
        """A copy of stacked `states` with a fresh optimizer `tx`: the start of a fine-tune."""
        return with_fresh_optimizer(states, tx)

    def unlabelled_passes(self) -> dict[str, float]:
        """How many times each method that draws unlabelled batches sees a seed's unlabelled part."""
        pool = self.sizes["unlabelled"] if "unlabelled" in self.parts else 0
        batch = self.config.train.get("unlabelled_batch_size", 0)
        if not pool or not batch:
            return {}
        steps = row_steps(self.config)
        drawing = ["mean_teacher", "mean_teacher_aug", "fixmatch", "fixmatch_distance"]
        if self.config.sector.consistency_weight > 0:
            drawing.append("sector_heads")
        return {name: steps[name] * batch / pool for name in drawing}

    def split_summary(self) -> dict[str, Any]:
        """The split's sizes (per seed), how many receivers without a traced path were dropped,
        and what a seed varies."""
        dropped = int(self.dataset_size - sum(self.sizes.values()))
        return {
            "split_sizes": dict(self.sizes),
            "receivers_without_path_dropped": dropped,
            "seed_varies": "the test receivers, the labelled subset, batches, noise draws and init",
        }

    def labelled_targets(self) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(targets, weights, pools) of each seed's labelled rows: the supervised stage's data."""
        rows = len(self.table.rows)
        targets = np.zeros((self.n, rows, 2), np.float32)
        weights = np.zeros((self.n, rows), np.float32)
        labelled = self.parts["labelled"]
        for m in range(self.n):
            targets[m, labelled[m]] = self.table.xy[labelled[m]]
            weights[m, labelled[m]] = 1.0
        return targets, weights, list(labelled)

    def truth(self, part: str) -> np.ndarray:
        """(seeds, rows, 2) true positions of each seed's `part`: targets for 'labelled', scores
        and diagnostics for the others (never a training input or a decision)."""
        return self.table.xy[self.parts[part]]

    # --- prediction ---------------------------------------------------------------------------
    def predict(
        self, model, state: TrainState, rows: np.ndarray, view: int = 1
    ) -> dict[str, np.ndarray]:
        """Seed m's model on its table rows `rows[m]` (rows: (seeds, k)). xy (seeds, k, heads, 2)
        in metres (rotated back from each row's sector frame when the frame is on), features
        (seeds, k, F) and, for a model with cell logits, the top cell probability (seeds, k). The
        TA and noise come from a key named by the seed and `view`, so every model of a seed sees
        the same draws of the same rows and predictions are repeatable."""
        run = self._forward(model)
        keys = jnp.stack([named_key(seed, "view", view) for seed in self.seeds])
        table = self.table

        def chunk(block: np.ndarray, start: int) -> dict[str, jax.Array]:
            idx = block.T  # (seeds, chunk)
            chunk_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, start)
            x = self._prep_members(jnp.asarray(table.csi[idx]), chunk_keys)
            return run(state, x, jnp.asarray(table.sector[idx]))

        out = map_chunks(chunk, np.asarray(rows).T, self.config.eval_batch, axis=1)
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
                return jax.vmap(one)(state.params, state.batch_stats, x, sector)

            one_seed, slices = jax.jit(one), jax.jit(member_slices, static_argnums=1)

            def looped(state: TrainState, x: jax.Array, sector: jax.Array) -> dict[str, jax.Array]:
                seeds = slices((state.params, state.batch_stats), self.n)
                return stack_members(
                    [one_seed(*seed, x[m], sector[m]) for m, seed in enumerate(seeds)]
                )

            run = looped if self.execution == "loop" else vmapped
            self._forwards[key] = (model, run)  # the model is kept so its id stays unique
        return self._forwards[key][1]

    def positions(self, model, state: TrainState, rows: np.ndarray) -> np.ndarray:
        """(seeds, k, 2) metres for the table rows `rows` (seeds, k): each from its sector's head."""
        xy = self.predict(model, state, rows)["xy"]
        if xy.shape[2] == 1:
            return xy[:, :, 0]
        sector = self.table.sector[rows]  # (seeds, k)
        return np.take_along_axis(xy, sector[:, :, None, None], axis=2)[:, :, 0]

    def scored_positions(self, model, state: TrainState) -> dict[str, np.ndarray]:
        """{'test': each seed's held-out receivers, 'unlabelled': its unlabelled part (the
        transductive score)} as (seeds, rows, 2)."""
        return {part: self.positions(model, state, self.parts[part]) for part in self.scored}

    @property
    def scored(self) -> tuple[str, ...]:
        return ("test", "unlabelled") if "unlabelled" in self.parts else ("test",)

    def signatures(self, m: int, kind: str = "profile") -> np.ndarray:
        """(table rows, D) CSI signatures as seed m measures them, cached: each row with a random
        timing advance and noise (a key named by the seed, the same draw for every kind);
        'profile' is `ta_invariant_profile` (interpolation A), 'aligned' `aligned_profile` (B)."""
        if kind not in self._signature_fns:
            raise ValueError(
                f"signature kind: expected one of {tuple(self._signature_fns)}, got {kind!r}"
            )
        if (m, kind) not in self._signatures:
            key = named_key(self.seeds[m], "signature")
            fn = self._signature_fns[kind]

            def chunk(block: np.ndarray, start: int) -> jax.Array:
                return fn(jnp.asarray(block), jax.random.fold_in(key, start))

            self._signatures[m, kind] = map_chunks(chunk, self.table.csi, self.config.eval_batch)
        return self._signatures[m, kind]


def draw(rng: np.random.Generator, pool: np.ndarray, size: int) -> np.ndarray:
    """`size` rows of `pool` without repeats (a pool smaller than a batch repeats, in tiny tests)."""
    if len(pool) >= size:
        return rng.choice(pool, size, replace=False)
    return np.resize(rng.permutation(pool), size)

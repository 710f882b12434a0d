"""iToLoc's stages on the training core: the offline adversarial training (eq. 11), prediction and
scores, for every seed at once (stacked states; `config.seed_execution` loops or vmaps the seeds).

Each seed has its own data draw (`data.device_draws`): its own labelled scans, AP selection, target
scans and test scans; seed m's batches come from its own scans and it is scored on its own test
scans. The seeds share the reference locations (the C classes and eq. 10's distances), which the
synthetic worlds' grid and a real set's fixed training file guarantee; a study refuses seeds whose
locations differ.

Over ~400 lines: the offline stage, prediction, scores and the co-training stage share the stacked
states, the site and the domains; the co-training rules themselves are in `cotraining.py`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.common.chunks import map_chunks
from jaxfp.config import ConfigError, choice, variant_settings
from jaxfp.data.places import floor_code, floor_code_of, split_floor_code
from jaxfp.data.types import FingerprintSet
from jaxfp.eval.iso18305 import StandardConstants, coded_report
from jaxfp.eval.results import over_seeds
from jaxfp.methods.baselines.knn import build_index
from jaxfp.methods.baselines.knn import predict as knn_predict
from jaxfp.methods.itoloc import cotraining
from jaxfp.methods.itoloc.data import Domains, Scans, Site, regions, scans
from jaxfp.methods.itoloc.image import VALUES, select_aps
from jaxfp.methods.itoloc.losses import LossSettings, make_loss
from jaxfp.methods.itoloc.nets import POOLING, ItoLocNet
from jaxfp.train.early_stopping import Tracked, patience_exhausted, record, track, tracking_step
from jaxfp.train.keys import named_int, named_seed
from jaxfp.train.members import SEED_EXECUTION, member_slices
from jaxfp.train.optimisers import optimizer_from_config
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

IMAGES = ("eq1", "vector")
METRIC_COLUMNS = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "p95_m", "region_success"]
Scores = dict[str, np.ndarray]  # metric -> (seeds,) values


class Variant:
    """One variant's network, loss and input."""

    def __init__(self, config: ml_collections.ConfigDict, name: str, locations: int, domains: int):
        m = variant_settings(config, "model", name)
        if m.image not in IMAGES:
            raise ConfigError(f"model.image for {name}: expected one of {IMAGES}, got {m.image!r}")
        values = m.get("image_values", "dbm")
        if values not in VALUES:
            raise ConfigError(
                f"model.image_values for {name}: expected one of {VALUES}, got {values!r}"
            )
        self.name, self.settings, self.image, self.values = name, m, m.image, values
        pooling = m.get("pooling", "local")
        if pooling not in POOLING:
            raise ConfigError(
                f"model.pooling for {name}: expected one of {POOLING}, got {pooling!r}"
            )
        self.net = ItoLocNet(locations, domains, tuple(m.heads), float(m.dropout), pooling)
        self.heads = len(m.heads)

    def loss(self, warmup_steps: int) -> LossSettings:
        m = self.settings
        return LossSettings(
            self.net, float(m.spatial_weight), float(m.adversary_weight), warmup_steps
        )


class Study:
    """Each seed's labelled training scans, the shared site, and the stacked-seed stages."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        train_sets: Sequence[FingerprintSet],
        domains: Domains,
        shared: dict[str, Any],
    ) -> None:
        self.config, self.domains = config, domains
        self.seeds = tuple(config.seeds)
        if len(train_sets) != len(self.seeds):
            raise ValueError(f"Study: {len(train_sets)} training sets for {len(self.seeds)} seeds")
        self.train_sets = list(train_sets)
        height, cell = config.data.floor_height_m, float(config.data.get("location_grid_m", 0.0))
        self.site = Site.of(self.train_sets[0], height, cell)
        for seed, fs in zip(self.seeds[1:], self.train_sets[1:], strict=True):
            other = Site.of(fs, height, cell)
            same = other.xy.shape == self.site.xy.shape and np.allclose(other.xy, self.site.xy)
            if not (same and np.array_equal(other.floor, self.site.floor)):
                raise ConfigError(
                    f"seed {seed}: its training scans are at other locations than seed "
                    f"{self.seeds[0]}'s; the stacked seeds share the C location classes"
                )
        n_aps = config.image.n_aps
        self.aps = self.top_aps(n_aps)
        self.n_domains = len(domains.ids)
        execution = choice(config, "seed_execution", SEED_EXECUTION)
        self.stages = SeedStages(workdir, self.seeds, shared, execution)
        self.distances = jnp.asarray(spatial_weights(self.site.distances, config.spatial_unit))
        self._steps: dict[tuple, Any] = {}
        self._wknn: dict[tuple, tuple[Any, Any, Scores]] = {}

    def variant(self, name: str) -> Variant:
        return Variant(self.config, name, len(self.site.xy), self.n_domains)

    def scans(
        self, sets: Sequence[FingerprintSet], variant: Variant, target: bool = False
    ) -> list[Scans]:
        """Seed m's model inputs from `sets[m]` on seed m's APs (one computation for seeds that
        share a set and its APs); `target`: unlabelled target scans (their domain id)."""
        c, out, done = self.config, [], {}
        for fs, aps in zip(sets, self.aps, strict=True):
            key = (id(fs), tuple(aps.tolist()))
            if key not in done:
                done[key] = scans(
                    fs,
                    aps,
                    self.site,
                    self.domains,
                    variant.image,
                    variant.values,
                    c.image.missing_dbm,
                    target,
                )
            out.append(done[key])
        return out

    def step(self, variant: Variant, warmup_steps: int, tracked: bool = False):
        """The un-jitted train step of `variant` (`tracked`: on `early_stopping.Tracked` states)."""
        key = (variant.name, warmup_steps, tracked)
        if key not in self._steps:  # one function object per setting: compiled once per stage kind
            step = make_train_step(make_loss(variant.loss(warmup_steps), self.distances), jit=False)
            self._steps[key] = tracking_step(step) if tracked else step
        return self._steps[key]

    @staticmethod
    def optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
        """A stage's optimiser from its section's `optimizer` (§V-A: SGD, momentum 0.9, weight
        decay 1e-4, the rate divided by 10 on a plateau of the training loss)."""
        return optimizer_from_config(train.optimizer)

    # --- offline adversarial training ----------------------------------------------------------
    def offline(
        self, variant: Variant, labelled: list[Scans], target: list[Scans] | None = None
    ) -> Any:
        """Eq. 11 on each seed's `labelled`; its `target` rows (unlabelled) join every batch, as
        many as the labelled ones, for the discriminator (and batch norm) only: their location
        weight is 0. A `train.validation_fraction` of each seed's labelled scans is held out;
        every `train.eval_every` steps their location cross-entropy is logged (`val_ce`, the
        learning curve), and the stage stops once it has not improved for `train.patience`
        evaluations (0: never) or after `train.max_epochs` passes."""
        train = self.config.train
        tx = self.optimizer(train)
        sample = jnp.asarray(labelled[0].image[:1])

        def init(key: jax.Array) -> TrainState:
            variables = variant.net.init({"params": key, "dropout": key}, sample)
            return TrainState.create(
                apply_fn=variant.net.apply,
                params=variables["params"],
                tx=tx,
                batch_stats=variables["batch_stats"],
            )

        labels, validation = [], []
        for seed, own in zip(self.seeds, labelled, strict=True):
            fit_rows, val_rows = validation_split(
                np.flatnonzero(own.location >= 0), float(train.validation_fraction), seed
            )
            labels.append(fit_rows)
            validation.append(own.take(val_rows))
        heads, size = variant.heads, int(train.batch_size)
        onehot = np.eye(len(self.site.xy), dtype=np.float32)

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            own = labelled[m]
            rows = labels[m][rng.integers(0, len(labels[m]), size)]
            location = own.location[rows]
            batch = {
                "image": own.image[rows],
                "target": np.broadcast_to(onehot[location], (heads, size, len(onehot))),
                "weight": np.ones((heads, size), np.float32),
                "rp": np.broadcast_to(location, (heads, size)),
                "domain": own.domain[rows],
            }
            if target is None:
                return batch
            extra = rng.integers(0, len(target[m].image), size)
            unlabelled = {
                "image": target[m].image[extra],
                "target": np.zeros((heads, size, len(onehot)), np.float32),
                "weight": np.zeros((heads, size), np.float32),
                "rp": np.zeros((heads, size), np.int64),
                "domain": target[m].domain[extra],
            }
            axis = {"image": 0, "domain": 0, "target": 1, "weight": 1, "rp": 1}
            return {k: np.concatenate([batch[k], unlabelled[k]], axis[k]) for k in batch}

        def eval_fn(tracked: Tracked) -> dict[str, np.ndarray]:
            """Each seed's location cross-entropy (mean over heads) on its validation scans."""
            probs = self.probabilities(tracked.state, variant, [v.image for v in validation])
            return {
                "val_ce": np.array(
                    [location_ce(p, v) for p, v in zip(probs, validation, strict=True)]
                )
            }

        name = f"offline/{variant.name}"
        steps = offline_steps(train, max(len(rows) for rows in labels))
        options = LoopOptions.from_config(
            train, seed=named_int(self.config.seed, name), num_steps=steps
        )
        has_validation = all(len(v.image) for v in validation)
        shaping = {
            "model": variant.settings.to_dict(),
            "train": train.to_dict(),
            "target_rows": 0 if target is None else [len(t.image) for t in target],
        }
        if not has_validation:
            return self.stages.stage(
                name, init, self.step(variant, options.num_steps), batch_of, options, shaping
            )
        states = self.stages.init(name, init)
        tracked = self.stages.stage(
            name,
            track(states, len(self.seeds)),
            self.step(variant, options.num_steps, tracked=True),
            batch_of,
            options,
            shaping,
            eval_fn,
            after_eval=record("val_ce"),
            stop_when=patience_exhausted(int(train.patience)),
        )
        # The model at the stop, not the best evaluation's parameters: its batch statistics
        # belong to it (the stop comes `patience` evaluations after the lowest loss).
        return tracked.state

    # --- prediction and scores -----------------------------------------------------------------
    def probabilities(
        self,
        states: Any,
        variant: Variant,
        images: Sequence[np.ndarray],
        dropout_keys: Sequence[jax.Array] | None = None,
    ) -> list[np.ndarray]:
        """Seed m's (heads, n_m, C) location probabilities of `images[m]`; with `dropout_keys`
        (one per seed), dropout on. Seeds run as in training (`config.seed_execution`)."""
        seeds, chunk = len(self.seeds), int(self.config.eval_batch)
        if len(images) != seeds:
            raise ValueError(f"probabilities: {len(images)} image sets for {seeds} seeds")

        def keys_at(start: int) -> jax.Array | None:
            if dropout_keys is None:
                return None
            return jnp.stack([jax.random.fold_in(k, start) for k in dropout_keys])

        if self.config.seed_execution == "loop" or len({len(x) for x in images}) > 1:
            out = []
            for m, (params, batch_stats) in enumerate(
                member_slices((states.params, states.batch_stats), seeds)
            ):

                def run(block: np.ndarray, start: int, p=params, bs=batch_stats, m=m) -> jax.Array:
                    keys = keys_at(start)
                    key = None if keys is None else keys[m]
                    return _seed_probabilities(variant.net, p, bs, jnp.asarray(block), key)

                out.append(map_chunks(run, images[m], chunk, axis=1))
            return out

        def run_all(block: np.ndarray, start: int) -> jax.Array:  # block (rows, seeds, S, S)
            return _vmapped_probabilities(
                variant.net, states.params, states.batch_stats, jnp.asarray(block), keys_at(start)
            )

        stacked = map_chunks(run_all, np.stack(images, axis=1), chunk, axis=2)
        return list(stacked)

    def scores(self, probs: Sequence[np.ndarray], tests: Sequence[Scans]) -> Scores:
        """Per-seed mean error, 95th percentile and region success from seed m's (heads, n, C)."""
        best = [p.mean(0).argmax(-1) for p in probs]
        truth = [(t.xy, t.floor) for t in tests]
        return self.score_estimates(
            [self.site.xy[b] for b in best], [self.site.floor[b] for b in best], truth
        )

    def score_estimates(
        self,
        xy: Sequence[np.ndarray],
        floor: Sequence[np.ndarray],
        truth: Sequence[tuple[np.ndarray, np.ndarray]],
    ) -> Scores:
        """Seed m's (n, 2) positions and (n,) floor codes against its (xy, floor code) truth."""
        return score_estimates(
            xy,
            floor,
            truth,
            self.config.region_cell_m,
            StandardConstants.from_config(self.config.get("eval")),
            floors=self.train_sets[0].floor is not None,
            buildings=self.train_sets[0].building is not None,
        )

    def evaluate(self, states: Any, variant: Variant, sets: Sequence[FingerprintSet]) -> Scores:
        """`variant` on seed m's scans `sets[m]`, per seed."""
        tests = self.scans(sets, variant, True)  # their domains play no part
        return self.scores(self.probabilities(states, variant, [t.image for t in tests]), tests)

    def top_aps(self, count: int) -> list[np.ndarray]:
        """Seed m's `count` APs chosen as the image's are (`select_aps` on its training scans)."""
        return [fs.ap_ids[select_aps(fs.rss, count)] for fs in self.train_sets]

    def wknn(
        self, sets: Sequence[FingerprintSet], aps: Sequence[np.ndarray] | None = None
    ) -> Scores:
        """WkNN fitted on seed m's training scans and scored on `sets[m]`: on all APs, or on
        `aps[m]` only (e.g. `self.aps`, the image's); once for seeds that share all three."""
        per_seed = []
        for m, (train_fs, test_fs) in enumerate(zip(self.train_sets, sets, strict=True)):
            chosen = None if aps is None else aps[m]
            key = (id(train_fs), id(test_fs), None if chosen is None else tuple(chosen.tolist()))
            if key not in self._wknn:
                fitted, scored = train_fs, test_fs.aligned_to(train_fs)
                if chosen is not None:
                    fitted, scored = fitted.select_aps(chosen), scored.select_aps(chosen)
                index = build_index(fitted, self.config.knn.representation)
                found = knn_predict(index, scored, self.config.knn.k)
                building = None if train_fs.building is None else found["building"]
                floors = floor_code_of(found["floor"], building)
                truth = [(test_fs.xy, floor_code(test_fs))]
                scores = self.score_estimates([found["xy"]], [floors], truth)
                self._wknn[key] = (train_fs, test_fs, scores)  # the sets keep their ids taken
            per_seed.append(self._wknn[key][2])
        return {k: np.concatenate([s[k] for s in per_seed]) for k in per_seed[0]}


SPATIAL_UNITS = ("site_mean", "metre")


def spatial_weights(distances: np.ndarray, unit: str) -> np.ndarray:
    """Eq. 10's w(y, c), "a weight representing the physical distance" (no unit given): metres
    over the mean distance between the site's locations ("site_mean"), so γ weighs Ls alike on a
    20 m room and a 400 m campus; or metres ("metre")."""
    if unit == "metre":
        return distances.astype(np.float32)
    if unit != "site_mean":
        raise ConfigError(f"spatial_unit: expected one of {SPATIAL_UNITS}, got {unit!r}")
    off_diagonal = distances[~np.eye(len(distances), dtype=bool)]
    scale = float(off_diagonal.mean()) if off_diagonal.size else 1.0
    return (distances / max(scale, 1e-9)).astype(np.float32)


def validation_split(rows: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows): a `fraction` of `rows` drawn for `seed`, held out of the
    offline training to tell when its loss has flattened."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"train.validation_fraction: expected 0 <= f < 1, got {fraction}")
    order = np.random.default_rng(named_seed(seed, "validation")).permutation(rows)
    held = int(round(fraction * len(rows)))
    return np.sort(order[held:]), np.sort(order[:held])


def location_ce(probs: np.ndarray, scans: Scans) -> float:
    """Mean over heads and rows of -log p(true location) from (heads, n, C) probabilities."""
    picked = np.take_along_axis(probs, scans.location[None, :, None], axis=-1)[..., 0]
    return float(-np.log(np.maximum(picked, 1e-12)).mean())


def offline_steps(train: ml_collections.ConfigDict, rows: int) -> int:
    """The offline stage's steps: `train.max_epochs` passes over the largest seed's `rows`
    labelled scans at `train.batch_size`, or `train.num_steps` where no epochs are set."""
    epochs = float(train.get("max_epochs", 0.0))
    if epochs < 0:
        raise ConfigError(f"train.max_epochs: expected >= 0, got {epochs}")
    if epochs == 0:
        return int(train.num_steps)
    return max(1, int(np.ceil(epochs * rows / int(train.batch_size))))


def score_estimates(
    xy: Sequence[np.ndarray],
    floor: Sequence[np.ndarray],
    truth: Sequence[tuple[np.ndarray, np.ndarray]],
    region_cell_m: float,
    constants: StandardConstants,
    floors: bool,
    buildings: bool,
) -> Scores:
    """Per seed: the mean 2-D error, its 95th percentile, region success (right floor code and
    `region_cell_m` cell) and the ISO/IEC 18305 and IPIN fields (floor codes split into floor and
    building where the set has buildings; 2-D fields only for a set without floors), of seed m's
    (n, 2) positions and (n,) floor codes."""
    out: dict[str, list[float]] = {"mean_m": [], "p95_m": [], "region_success": []}
    split = functools.partial(split_floor_code, buildings=buildings)
    for x, f, (true_xy, true_floor) in zip(xy, floor, truth, strict=True):
        errors = np.linalg.norm(x - true_xy, axis=-1)
        hit = (regions(x, f, region_cell_m) == regions(true_xy, true_floor, region_cell_m)).all(-1)
        out["mean_m"].append(float(errors.mean()))
        out["p95_m"].append(float(np.percentile(errors, 95)))
        out["region_success"].append(float(hit.mean()))
        standard = coded_report(x, true_xy, f, true_floor, split, constants, floors)
        for k, v in standard.items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v) for k, v in out.items()}


def metric_row(values: Scores, seeds: Sequence[int]) -> dict[str, Any]:
    """A table row: the mean error over seeds with its t-interval, each seed's mean error, and the
    mean over seeds of the p95, region success and the standard fields."""
    row = over_seeds(values["mean_m"], "mean_m")
    for k, v in values.items():
        if k != "mean_m":
            row[k] = float(np.mean(v))
    row["per_seed_mean_m"] = {
        str(s): float(v) for s, v in zip(seeds, values["mean_m"], strict=True)
    }
    return row


def _probabilities_of_seed(net: ItoLocNet, params, batch_stats, images, key) -> jax.Array:
    """One seed's (heads, n, C) location probabilities; with `key`, dropout on."""
    rngs = None if key is None else {"dropout": key}
    variables = {"params": params, "batch_stats": batch_stats}
    out = net.apply(variables, images, train=False, dropout=key is not None, rngs=rngs)
    return jax.nn.softmax(out["locations"])


_seed_probabilities = jax.jit(_probabilities_of_seed, static_argnums=0)


@functools.partial(jax.jit, static_argnums=0)
def _vmapped_probabilities(net: ItoLocNet, params, batch_stats, images, keys) -> jax.Array:
    """Every seed's on its own images (rows, seeds, S, S), stacked: (seeds, heads, rows, C)."""

    def one(p, bs, x, k):
        return _probabilities_of_seed(net, p, bs, x, k)

    return jax.vmap(one, in_axes=(0, 0, 1, 0))(params, batch_stats, images, keys)


def check_variants(config: ml_collections.ConfigDict) -> None:
    """The variants a config runs or updates must be among `config.variants`, and some must run."""
    known = list(config.variants.keys())
    for field in ("run_variants", "update_variants"):
        unknown = set(config.get(field, ())) - set(known)
        if unknown:
            raise ConfigError(
                f"config.{field}: unknown {sorted(unknown)}; expected some of {known}"
            )
    if not config.run_variants:
        raise ConfigError(f"config.run_variants: empty; expected some of {known}")


# --- iToLoc as another method's baseline ----------------------------------------------------------
def fit_locator(
    config: ml_collections.ConfigDict,
    workdir: str,
    train_fs: FingerprintSet,
    adapt_to: FingerprintSet | None = None,
) -> Callable[[FingerprintSet], tuple[np.ndarray, np.ndarray]]:
    """iToLoc as another protocol's locator (GUFU §7.1 compares with it): the first of
    `config.run_variants`, every seed of `config.seeds`, trained on `train_fs` (resumable in
    `workdir`); with `adapt_to`, one co-training update on those unlabelled scans (the paper's
    "first batch of crowdsourced signals"). Returns locate(fs) -> (positions (seeds, n, 2),
    floor codes (seeds, n)), each scan at its most probable reference location."""
    check_variants(config)
    domains = Domains(config.domain_keys, config.domain_target)
    domains.of(train_fs)
    if adapt_to is not None:
        domains.of_target(adapt_to)
    shared = {
        "data": {"source": train_fs.source, "scans": train_fs.n},
        "domains": len(domains.ids),
        "seeds": list(config.seeds),
        "image": config.image.to_dict(),
    }
    n = len(config.seeds)
    study = Study(config, workdir, [train_fs] * n, domains, shared)
    variant = study.variant(config.run_variants[0])
    labelled = study.scans([train_fs] * n, variant)
    print(f"[itoloc] {variant.name}: training {n} seeds on {train_fs.n} scans")
    states = study.offline(variant, labelled)
    if adapt_to is not None:
        first = study.scans([adapt_to.aligned_to(train_fs)] * n, variant, True)
        name = f"update/{variant.name}/first"
        states, _ = cotraining.update(study, states, variant, labelled, first, name)

    def locate(fs: FingerprintSet) -> tuple[np.ndarray, np.ndarray]:
        images = [s.image for s in study.scans([fs.aligned_to(train_fs)] * n, variant, True)]
        best = np.stack(
            [p.mean(0).argmax(-1) for p in study.probabilities(states, variant, images)]
        )
        return study.site.xy[best], study.site.floor[best]

    return locate

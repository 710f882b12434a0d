"""`itoloc.devices` and `itoloc.drift`: iToLoc's protocols on a synthetic world and real sets.

- devices: train on some devices' labelled scans (domains = device), test per held-out device;
  a fraction of each held-out device's scans (`data.unlabelled_target_fraction`) is handed to the
  offline training unlabelled as the target domain of eq. 8 (§III-A: domains "without label
  information") and not scored; 0 trains on the source devices alone. The `update_variants` are
  then co-trained (§IV) on those target scans and scored again on the same scored scans.
- drift: train on month 1 of the long-term set (domains = collection), then month by month run
  the co-training update (§IV) of the `update_variants` on that month's unlabelled test scans and
  score on them; "no update" is the month-1 model never updated (the no-update ablation).

Variants (`config.variants`, run: `config.run_variants`): iToLoc, a plain CNN (extractor + M1, no
adversary, no spatial term), and iToLoc without the image transform, the spatial constraint or
the adversary; WkNN on all APs is the fingerprinting baseline. Each variant is trained for every
seed at once (stacked, vmapped) as stages of the training core under the workdir (checkpoints,
resume, metrics.jsonl, finite guard). Metrics per seed: mean 2-D error, 95th percentile, region
success rate (right floor and `region_cell_m` grid cell); tables give the mean over seeds with a CI.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.common.chunks import map_chunks
from jaxfp.config import ConfigError, choice, variant_settings
from jaxfp.data.places import floor_code_of
from jaxfp.data.registry import load_parts
from jaxfp.data.synthetic import WorldParams, make_world, survey
from jaxfp.data.types import FingerprintSet, concat
from jaxfp.eval.results import over_seeds, table, write_results
from jaxfp.methods import program
from jaxfp.methods.baselines.knn import build_index
from jaxfp.methods.baselines.knn import predict as knn_predict
from jaxfp.methods.itoloc import cotraining
from jaxfp.methods.itoloc.data import Domains, Scans, Site, regions, scans
from jaxfp.methods.itoloc.image import select_aps
from jaxfp.methods.itoloc.losses import LossSettings, make_loss
from jaxfp.methods.itoloc.nets import ItoLocNet
from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.members import SEED_EXECUTION, member_slices, stack_members
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages, with_fresh_optimizer
from jaxfp.train.state import TrainState
from jaxfp.train.steps import make_train_step

IMAGES = ("eq1", "vector")
METRIC_COLUMNS = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "p95_m", "region_success"]


class Variant:
    """One variant's network, loss and input."""

    def __init__(self, config: ml_collections.ConfigDict, name: str, locations: int, domains: int):
        m = variant_settings(config, "model", name)
        if m.image not in IMAGES:
            raise ConfigError(f"model.image for {name}: expected one of {IMAGES}, got {m.image!r}")
        self.name, self.settings, self.image = name, m, m.image
        self.net = ItoLocNet(locations, domains, tuple(m.heads), float(m.dropout))
        self.heads = len(m.heads)

    def loss(self, warmup_steps: int) -> LossSettings:
        m = self.settings
        return LossSettings(
            self.net, float(m.spatial_weight), float(m.adversary_weight), warmup_steps
        )


class Study:
    """Labelled training scans, the site, and the stacked-seed stages of one protocol run."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        workdir: str,
        train_fs: FingerprintSet,
        domains: Domains,
        n_domains: int,
        shared: dict[str, Any],
    ) -> None:
        self.config, self.train_fs, self.domains = config, train_fs, domains
        self.site = Site.of(train_fs, config.data.floor_height_m)
        self.aps = train_fs.ap_ids[select_aps(train_fs.rss, config.image.n_aps)]
        self.n_domains = n_domains
        self.seeds = tuple(config.seeds)
        execution = choice(config, "seed_execution", SEED_EXECUTION)
        self.stages = SeedStages(workdir, self.seeds, shared, execution)
        self.distances = jnp.asarray(self.site.distances)
        self._steps: dict[tuple, Any] = {}

    def variant(self, name: str) -> Variant:
        return Variant(self.config, name, len(self.site.xy), self.n_domains)

    def scans(self, fs: FingerprintSet, variant: Variant) -> Scans:
        c = self.config
        return scans(fs, self.aps, self.site, self.domains, variant.image, c.image.missing_dbm)

    def step(self, variant: Variant, warmup_steps: int):
        key = (variant.name, warmup_steps)
        if key not in self._steps:  # one function object per setting: compiled once per stage kind
            self._steps[key] = make_train_step(
                make_loss(variant.loss(warmup_steps), self.distances), jit=False
            )
        return self._steps[key]

    def optimizer(self, train: ml_collections.ConfigDict) -> optax.GradientTransformation:
        return optax.chain(
            optax.add_decayed_weights(train.weight_decay),
            optax.sgd(train.learning_rate, momentum=train.momentum),
            optax.contrib.reduce_on_plateau(
                factor=0.1, patience=train.plateau_patience, accumulation_size=train.plateau_steps
            ),
        )

    # --- offline adversarial training ----------------------------------------------------------
    def offline(self, variant: Variant, labelled: Scans, target: Scans | None = None) -> Any:
        """Eq. 11 on `labelled`; `target` rows (unlabelled) join every batch, as many as the
        labelled ones, for the discriminator (and batch norm) only: their location weight is 0."""
        train = self.config.train
        tx = self.optimizer(train)
        sample = jnp.asarray(labelled.image[:1])

        def init(key: jax.Array) -> TrainState:
            variables = variant.net.init({"params": key, "dropout": key}, sample)
            return TrainState.create(
                apply_fn=variant.net.apply,
                params=variables["params"],
                tx=tx,
                batch_stats=variables["batch_stats"],
            )

        labels = np.flatnonzero(labelled.location >= 0)
        heads, size = variant.heads, int(train.batch_size)
        onehot = np.eye(len(self.site.xy), dtype=np.float32)

        def batch_of(rng: np.random.Generator, _: int) -> dict[str, np.ndarray]:
            rows = labels[rng.integers(0, len(labels), size)]
            location = labelled.location[rows]
            batch = {
                "image": labelled.image[rows],
                "target": np.broadcast_to(onehot[location], (heads, size, len(onehot))),
                "weight": np.ones((heads, size), np.float32),
                "rp": np.broadcast_to(location, (heads, size)),
                "domain": labelled.domain[rows],
            }
            if target is None:
                return batch
            extra = rng.integers(0, len(target.image), size)
            unlabelled = {
                "image": target.image[extra],
                "target": np.zeros((heads, size, len(onehot)), np.float32),
                "weight": np.zeros((heads, size), np.float32),
                "rp": np.zeros((heads, size), np.int64),
                "domain": target.domain[extra],
            }
            axis = {"image": 0, "domain": 0, "target": 1, "weight": 1, "rp": 1}
            return {k: np.concatenate([batch[k], unlabelled[k]], axis[k]) for k in batch}

        name = f"offline/{variant.name}"
        options = LoopOptions.from_config(train, seed=named_int(self.config.seed, name))
        shaping = {
            "model": variant.settings.to_dict(),
            "train": train.to_dict(),
            "target_rows": 0 if target is None else len(target.image),
        }
        return self.stages.stage(
            name, init, self.step(variant, options.num_steps), batch_of, options, shaping
        )

    # --- prediction and scores -----------------------------------------------------------------
    def probabilities(
        self,
        states: Any,
        variant: Variant,
        images: np.ndarray,
        dropout_key: jax.Array | None = None,
    ) -> np.ndarray:
        """(seeds, heads, n, C) location probabilities; with `dropout_key`, dropout on. Seeds
        run as in training (`config.seed_execution`): each on its slice in turn, or vmapped."""
        seeds, loop = len(self.seeds), self.config.seed_execution == "loop"
        per_seed = member_slices((states.params, states.batch_stats), seeds) if loop else []

        def run(block: np.ndarray, start: int) -> jax.Array:
            keys = (
                None
                if dropout_key is None
                else jax.random.split(jax.random.fold_in(dropout_key, start), seeds)
            )
            block = jnp.asarray(block)
            if not loop:
                return _vmapped_probabilities(
                    variant.net, states.params, states.batch_stats, block, keys
                )
            return stack_members(
                [
                    _seed_probabilities(
                        variant.net, *per_seed[s], block, None if keys is None else keys[s]
                    )
                    for s in range(seeds)
                ]
            )

        return map_chunks(run, images, int(self.config.eval_batch), axis=2)

    def scores(self, probs: np.ndarray, test: Scans) -> dict[str, np.ndarray]:
        """Per-seed mean error, 95th percentile and region success from (seeds, heads, n, C)."""
        best = probs.mean(1).argmax(-1)  # (seeds, n)
        return self.score_estimates(self.site.xy[best], self.site.floor[best], test)

    def score_estimates(
        self, xy: np.ndarray, floor: np.ndarray, test: Scans
    ) -> dict[str, np.ndarray]:
        """(seeds, n, 2) positions and (seeds, n) floors against `test`."""
        errors = np.linalg.norm(xy - test.xy[None], axis=-1)
        cell = self.config.region_cell_m
        truth = regions(test.xy, test.floor, cell)
        hit = np.stack(
            [(regions(x, f, cell) == truth).all(-1) for x, f in zip(xy, floor, strict=True)]
        )
        return {
            "mean_m": errors.mean(1),
            "p95_m": np.percentile(errors, 95, axis=1),
            "region_success": hit.mean(1),
        }

    def row(self, states: Any, variant: Variant, fs: FingerprintSet) -> dict[str, Any]:
        """The table row (mean over seeds with a CI) of `variant` on the scans `fs`."""
        test = self.scans(fs, variant)
        return _metric_row(self.scores(self.probabilities(states, variant, test.image), test))

    def wknn_row(self, fs: FingerprintSet) -> dict[str, Any]:
        return _metric_row(self.wknn(fs, self.scans(fs, self.variant(self.config.run_variants[0]))))

    def wknn(self, test_fs: FingerprintSet, test: Scans) -> dict[str, np.ndarray]:
        index = build_index(self.train_fs, self.config.knn.representation)
        found = knn_predict(index, test_fs.aligned_to(self.train_fs), self.config.knn.k)
        building = None if self.train_fs.building is None else found["building"]
        floors = floor_code_of(found["floor"], building)
        return self.score_estimates(found["xy"][None], floors[None], test)

    # --- the co-training update (§IV) ----------------------------------------------------------
    def update(
        self, states: Any, variant: Variant, labelled: Scans, unlabelled: Scans, name: str
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Co-train on `unlabelled` (whose locations are only used to log the pseudo labels'
        true error); returns the updated stacked states and a log line per round and head."""
        u = self.config.cotrain
        train = self.config.cotrain_train
        tx = self.optimizer(train)
        states = with_fresh_optimizer(states, tx)
        n_seeds, heads, size = len(self.seeds), variant.heads, int(train.batch_size)
        c = len(self.site.xy)
        onehot = np.eye(c, dtype=np.float32)
        labels = np.flatnonzero(labelled.location >= 0)
        base_targets = onehot[labelled.location[labels]]
        targets = [[base_targets] * heads for _ in range(n_seeds)]  # D_k per seed
        order = np.random.default_rng(named_seed(self.config.seed, name, "pool")).permutation(
            len(unlabelled.image)
        )
        sigma, full_since, log = float(u.sigma0), None, []
        for t in range(int(u.rounds)):
            size_t = cotraining.pool_size(t, len(order), int(u.pool_base))
            pool = order[:size_t]
            if size_t == len(order):
                full_since = t if full_since is None else full_since
                if (t - full_since) % int(u.smear_every) == 0 and t > full_since:
                    rng = np.random.default_rng(named_seed(self.config.seed, name, "smear", t))
                    targets = [
                        [cotraining.smear(base_targets, u.smear_std, rng) for _ in range(heads)]
                        for _ in range(n_seeds)
                    ]
                    sigma -= float(u.sigma_step)
            probs = self.probabilities(states, variant, unlabelled.image[pool])
            key = named_key(self.config.seed, name, "dropout", t)
            dropout = np.stack(
                [
                    self.probabilities(
                        states, variant, unlabelled.image[pool], jax.random.fold_in(key, k)
                    )
                    for k in range(int(u.dropout_passes))
                ],
                axis=1,
            )  # (seeds, K, heads, n, C)
            picked = []  # per seed, per head: (rows into unlabelled, labels)
            for m in range(n_seeds):
                per_head = []
                for k in range(heads):
                    s = cotraining.select_for_head(k, probs[m], dropout[m], sigma)
                    rows = pool[s.keep]
                    per_head.append((rows, s.label[s.keep]))
                    error = np.linalg.norm(
                        self.site.xy[s.label[s.keep]] - unlabelled.xy[rows], axis=-1
                    )
                    log.append(
                        {
                            "stage": name,
                            "round": t,
                            "seed": self.seeds[m],
                            "head": k,
                            "pool": int(size_t),
                            "sigma": sigma,
                            "kept": int(s.keep.sum()),
                            "pseudo_label_error_m": float(error.mean()) if len(rows) else None,
                        }
                    )
                picked.append(per_head)
            kept = [line["kept"] for line in log[-n_seeds * heads :]]
            print(
                f"[itoloc] {name} round {t}: pool {size_t}, σ {sigma:.2f}, kept per head {kept}",
                flush=True,
            )

            def batch_of(rng: np.random.Generator, m: int, picked=picked, targets=targets) -> dict:
                images, target, rp, domain = [], [], [], []
                for k in range(heads):
                    rows, pseudo = picked[m][k]
                    n_l = len(labels)
                    draw = rng.integers(0, n_l + len(rows), size)
                    is_l = draw < n_l
                    li, pi = labels[draw[is_l]], rows[draw[~is_l] - n_l]
                    pl = pseudo[draw[~is_l] - n_l]
                    images += [labelled.image[li], unlabelled.image[pi]]
                    target += [targets[m][k][draw[is_l]], onehot[pl]]
                    rp += [labelled.location[li], pl]
                    domain += [labelled.domain[li], unlabelled.domain[pi]]
                extra = rng.integers(0, len(unlabelled.image), size)  # target-domain rows for Ld
                images.append(unlabelled.image[extra])
                domain.append(unlabelled.domain[extra])
                rows_total = size * (heads + 1)
                full_target = np.zeros((heads, rows_total, c), np.float32)
                full_weight = np.zeros((heads, rows_total), np.float32)
                full_rp = np.zeros((heads, rows_total), np.int64)
                for k in range(heads):
                    block = slice(k * size, (k + 1) * size)
                    full_target[k, block] = np.concatenate(target[2 * k : 2 * k + 2])
                    full_weight[k, block] = 1.0
                    full_rp[k, block] = np.concatenate(rp[2 * k : 2 * k + 2])
                return {
                    "image": np.concatenate(images),
                    "target": full_target,
                    "weight": full_weight,
                    "rp": full_rp,
                    "domain": np.concatenate(domain),
                }

            stage = f"{name}/round{t:02d}"
            options = LoopOptions.from_config(train, seed=named_int(self.config.seed, stage))
            shaping = {
                "model": variant.settings.to_dict(),
                "cotrain": u.to_dict(),
                "cotrain_train": train.to_dict(),
                "kept": [line["kept"] for line in log[-n_seeds * heads :]],
            }
            states = self.stages.stage(
                stage, states, self.step(variant, 1), batch_of, options, shaping
            )
        return states, log


def _probabilities_of_seed(net: ItoLocNet, params, batch_stats, images, key) -> jax.Array:
    """One seed's (heads, n, C) location probabilities; with `key`, dropout on."""
    rngs = None if key is None else {"dropout": key}
    variables = {"params": params, "batch_stats": batch_stats}
    out = net.apply(variables, images, train=False, dropout=key is not None, rngs=rngs)
    return jax.nn.softmax(out["locations"])


_seed_probabilities = jax.jit(_probabilities_of_seed, static_argnums=0)


@functools.partial(jax.jit, static_argnums=0)
def _vmapped_probabilities(net: ItoLocNet, params, batch_stats, images, keys) -> jax.Array:
    """Every seed's, stacked: (seeds, heads, n, C)."""

    def one(p, bs, k):
        return _probabilities_of_seed(net, p, bs, images, k)

    return jax.vmap(one)(params, batch_stats, keys)


def _metric_row(values: dict[str, np.ndarray]) -> dict[str, Any]:
    row = over_seeds(values["mean_m"], "mean_m")
    row["p95_m"] = float(np.mean(values["p95_m"]))
    row["region_success"] = float(np.mean(values["region_success"]))
    return row


def _pseudo_label_summary(log: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per update round: pool, σ, labels kept per head and their true error (m)."""
    rounds: dict[str, list[dict[str, Any]]] = {}
    for line in log:
        rounds.setdefault(f"{line['stage']} round {line['round']}", []).append(line)
    out = {}
    for name, lines in rounds.items():
        errors = [x["pseudo_label_error_m"] for x in lines if x["pseudo_label_error_m"] is not None]
        out[name] = {
            "pool": lines[0]["pool"],
            "sigma": lines[0]["sigma"],
            "kept": float(np.mean([x["kept"] for x in lines])),
            "error_m": float(np.mean(errors)) if errors else float("nan"),
        }
    return out


def _write(
    workdir: str,
    title: str,
    config: ml_collections.ConfigDict,
    rows: dict[str, dict[str, Any]],
    study: Study,
    update_log: list[dict[str, Any]],
) -> dict[str, Any]:
    """results.json with the co-training table (when an update ran); what a protocol returns."""
    tables = {}
    if update_log:
        name = (
            "co-training: pseudo labels per round (kept per head and their true error in m; "
            "mean over seeds and heads)"
        )
        columns = ["pool", "sigma", "kept", "error_m"]
        tables[name] = table(_pseudo_label_summary(update_log), columns)
    write_results(
        workdir,
        title,
        config,
        rows,
        METRIC_COLUMNS,
        tables,
        aps=study.aps.tolist(),
        update_log=update_log,
    )
    return {"rows": rows, "update_log": update_log}


def _check_variants(config: ml_collections.ConfigDict) -> None:
    known = list(config.variants.keys())
    for field in ("run_variants", "update_variants"):
        unknown = set(config.get(field, ())) - set(known)
        if unknown:
            raise ConfigError(
                f"config.{field}: unknown {sorted(unknown)}; expected some of {known}"
            )


# --- protocol: device heterogeneity -------------------------------------------------------------
def device_sets(config: ml_collections.ConfigDict) -> tuple[FingerprintSet, FingerprintSet]:
    """(training scans of the training devices, test scans of the held-out devices)."""
    d = config.data
    if d.source == "synthetic":
        s = config.synthetic
        params = WorldParams.from_mapping(s)
        world = make_world(params, s.seed)
        devices = range(s.n_devices)
        train = concat(
            [survey(world, s.train_scans_per_rp, s.seed + 1, dev) for dev in devices],
            source=f"synthetic world ({s.n_devices} devices)",
        )
        test = concat(
            [survey(world, s.test_scans_per_rp, s.seed + 2, dev) for dev in devices],
            source=f"synthetic world ({s.n_devices} devices, test survey)",
        )
    elif d.source == "real":
        train = load_parts(d.path, list(d.train_parts), d.format)
        test = load_parts(d.path, list(d.test_parts), d.format).aligned_to(train)
    else:
        raise ConfigError(f"config.data.source: expected 'synthetic' or 'real', got {d.source!r}")
    if train.device is None:
        raise ConfigError(f"{train.source}: has no device labels; the device protocol needs them")
    held_out = [str(v) for v in d.held_out]
    missing = sorted(set(held_out) - set(np.unique(test.device).tolist()))
    if missing or not held_out:
        raise ConfigError(
            f"config.data.held_out: {missing or 'empty'}; devices in the test scans: "
            f"{sorted(np.unique(test.device).tolist())}"
        )
    train = train.subset(
        ~np.isin(train.device, held_out), source=f"{train.source} (training devices)"
    )
    test = test.subset(np.isin(test.device, held_out), source=f"{test.source} (held-out devices)")
    if train.n == 0:
        raise ConfigError("config.data.held_out: no training scans are left")
    return train, test


def split_target(
    config: ml_collections.ConfigDict, test: FingerprintSet
) -> tuple[FingerprintSet | None, FingerprintSet]:
    """(unlabelled target scans, scored scans): per held-out device, a random
    `data.unlabelled_target_fraction` of its scans (drawn from `config.seed`) is the target set."""
    fraction = float(config.data.unlabelled_target_fraction)
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(
            f"config.data.unlabelled_target_fraction: expected 0 <= f < 1, got {fraction}"
        )
    if fraction == 0.0:
        return None, test
    rng = np.random.default_rng(named_seed(config.seed, "unlabelled target"))
    is_target = np.zeros(test.n, bool)
    for device in np.unique(test.device):
        rows = np.flatnonzero(test.device == device)
        is_target[rng.permutation(rows)[: int(round(fraction * len(rows)))]] = True
    unlabelled = test.subset(is_target, source=f"{test.source}, unlabelled target")
    return unlabelled, test.subset(~is_target, source=f"{test.source}, scored")


def run_devices(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    _check_variants(config)
    train_fs, test_fs = device_sets(config)
    target_fs, test_fs = split_target(config, test_fs)
    domains = Domains(config.domain_keys)
    domains.of(train_fs)
    if target_fs is not None:
        domains.of(target_fs)
    n_domains = len(domains.ids)
    shared = {
        "data": config.data.to_dict(),
        "seeds": list(config.seeds),
        "image": config.image.to_dict(),
    }
    if config.data.source == "synthetic":
        shared["synthetic"] = config.synthetic.to_dict()
    study = Study(config, workdir, train_fs, domains, n_domains, shared)
    held_out = [str(v) for v in config.data.held_out]
    per_device = {dev: test_fs.subset(test_fs.device == dev) for dev in held_out}
    rows: dict[str, dict[str, Any]] = {}
    update_log: list[dict[str, Any]] = []
    for name in config.run_variants:
        variant = study.variant(name)
        print(f"[itoloc] {name}: training {len(study.seeds)} seeds", flush=True)
        labelled = study.scans(train_fs, variant)
        target = None if target_fs is None else study.scans(target_fs, variant)
        states = study.offline(variant, labelled, target)
        for dev, fs in per_device.items():  # before the update: its steps donate the states
            rows[f"{name} @ {dev}"] = study.row(states, variant, fs)
        if target is not None and name in config.update_variants:
            states, log = study.update(states, variant, labelled, target, f"update/{name}")
            update_log += log
            for dev, fs in per_device.items():
                rows[f"{name}, updated @ {dev}"] = study.row(states, variant, fs)
    for dev, fs in per_device.items():
        rows[f"wknn @ {dev}"] = study.wknn_row(fs)
    unlabelled = 0 if target_fs is None else target_fs.n
    title = (
        f"{train_fs.source}: {train_fs.n} training scans at {len(study.site.xy)} locations, "
        f"devices held out {held_out} ({unlabelled} of their scans unlabelled in training, "
        f"{test_fs.n} scored); {len(study.aps)} APs in the image; seeds {list(study.seeds)}"
    )
    return _write(workdir, title, config, rows, study, update_log)


# --- protocol: drift over months with the co-training update ------------------------------------
def run_drift(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    _check_variants(config)
    d = config.data
    train_fs = load_parts(d.path, list(d.train_parts), d.format)
    months = {
        m: load_parts(d.path, [p.format(month=m) for p in d.month_parts], d.format).aligned_to(
            train_fs
        )
        for m in d.months
    }
    domains = Domains(config.domain_keys)
    domains.of(train_fs)
    for fs in months.values():
        domains.of(fs)
    # Which months follow does not shape the month-1 training (its domain count aside).
    data = {k: v for k, v in d.to_dict().items() if k not in ("months", "month_parts")}
    shared = {"data": data, "domains": len(domains.ids), "seeds": list(config.seeds)}
    shared["image"] = config.image.to_dict()
    study = Study(config, workdir, train_fs, domains, len(domains.ids), shared)
    rows: dict[str, dict[str, Any]] = {}
    update_log: list[dict[str, Any]] = []
    for name in config.run_variants:
        variant = study.variant(name)
        labelled = study.scans(train_fs, variant)
        print(
            f"[itoloc] {name}: training {len(study.seeds)} seeds on {train_fs.n} scans", flush=True
        )
        offline = study.offline(variant, labelled)
        states = offline
        for m, fs in months.items():  # before any update: an update's steps donate the states
            rows[f"month {m:02d} {name}, no update"] = study.row(offline, variant, fs)
        if name not in config.update_variants:
            continue
        for m, fs in months.items():
            test = study.scans(fs, variant)
            states, log = study.update(
                states, variant, labelled, test, f"update/{name}/month{m:02d}"
            )
            update_log += log
            rows[f"month {m:02d} {name}, updated"] = study.row(states, variant, fs)
    for m, fs in months.items():
        rows[f"month {m:02d} wknn"] = study.wknn_row(fs)
    title = (
        f"{train_fs.source}: trained on {train_fs.n} scans at {len(study.site.xy)} locations; months "
        f"{list(d.months)}; {len(study.aps)} APs in the image; seeds {list(study.seeds)}"
    )
    rows = dict(sorted(rows.items()))
    return _write(workdir, title, config, rows, study, update_log)


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
    _check_variants(config)
    domains = Domains(config.domain_keys)
    for fs in (train_fs, adapt_to):
        if fs is not None:
            domains.of(fs)
    shared = {
        "data": {"source": train_fs.source, "scans": train_fs.n},
        "domains": len(domains.ids),
        "seeds": list(config.seeds),
        "image": config.image.to_dict(),
    }
    study = Study(config, workdir, train_fs, domains, len(domains.ids), shared)
    variant = study.variant(config.run_variants[0])
    labelled = study.scans(train_fs, variant)
    print(f"[itoloc] {variant.name}: training {len(study.seeds)} seeds on {train_fs.n} scans")
    states = study.offline(variant, labelled)
    if adapt_to is not None:
        first = study.scans(adapt_to.aligned_to(train_fs), variant)
        states, _ = study.update(states, variant, labelled, first, f"update/{variant.name}/first")

    def locate(fs: FingerprintSet) -> tuple[np.ndarray, np.ndarray]:
        images = study.scans(fs.aligned_to(train_fs), variant).image
        best = study.probabilities(states, variant, images).mean(1).argmax(-1)
        return study.site.xy[best], study.site.floor[best]

    return locate


PROGRAMS = {"devices": run_devices, "drift": run_drift}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    os.makedirs(workdir, exist_ok=True)
    return program(config.method, PROGRAMS)(config, workdir)

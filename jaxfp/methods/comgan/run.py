"""`comgan`: the completion and localization study of the ComGAN paper (§IV) on one RU set.

1. Split whole RPs 15 / 15 / 10 (RSS training / RSS testing / localization testing); standardise.
2. Train each GAN variant in `config.run_variants` (`config.variants`: ComGAN, Lite-ComGAN, cGAN,
   GPR-GAN) on the RSS-training samples, all seeds as one stacked, vmapped program (each seed its own
   batches); `gan.adversarial` is "wasserstein" (ComGAN, Lite, GPR-GAN) or "bce" (cGAN); `gan.prior`
   "gpr" fills the generator's unmeasured entries with the Gaussian-process mean at the RP (GPR-GAN;
   at a training RP, the GP of the other training RPs, as coarse as at an unseen one). With
   `config.run_unet`, the U-Net denoiser is trained the same way (`config.unet`).
3. Complete the RSS-testing samples from K measured RUs each (eq. 6), for every K in `config.ks`;
   the same measured RUs and the same subset averaging for every learned method; "K=k one subset"
   keeps the K measured entries but completes from the first subset alone (averaging switched off). IDW and
   Gaussian-process interpolation of the training RPs' mean fingerprints are the floor every learned
   method must beat; "oracle RP mean" (each test RP's own mean, from the truth) is the error no
   RP-only predictor can go below.
4. Element-wise RMSE and NRMSE (RMSE / RMS of the truth) over the unmeasured entries, in dBm: the
   mean over seeds with a CI across seeds, and a 1,000-resample bootstrap CI of the pooled errors.
5. The CNN localizer, trained on the RSS-testing RPs' samples — incomplete (unmeasured entries at
   the training mean), fully measured, or hybrid (completed by each method at `config.localizer_k`)
   — and tested on the localization-testing RPs' fully measured samples; mean and RMS error (m).

Every training (GAN variant, localizer version) is a stage of the training core under the workdir:
checkpoints, metrics.jsonl, progress bar, finite guard; a rerun reuses or resumes it when its
settings are unchanged and recomputes it when they changed.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxfp.config import ConfigError, variant_settings
from jaxfp.data.registry import load_parts
from jaxfp.eval.results import over_seeds, table, write_results
from jaxfp.methods.comgan import completion
from jaxfp.methods.comgan.data import PARTS, RuSet, Scale, real_set, split_rps, synthetic_set
from jaxfp.methods.comgan.nets import Critic, Generator, Localizer, RpEstimator, UNet1D
from jaxfp.methods.comgan.training import GanSettings, denoiser_loss, init_state, make_iteration
from jaxfp.train.keys import named_int
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import SeedStages
from jaxfp.train.state import TrainState, create_train_state
from jaxfp.train.steps import make_train_step, regression_loss

INTERPOLATIONS = ("idw", "gpr")
PRIORS = ("none", "gpr")


def load_ru_set(config: ml_collections.ConfigDict) -> RuSet:
    d = config.data
    if d.source == "synthetic":
        return synthetic_set(config.synthetic)
    if d.source == "real":
        fs = load_parts(d.path, list(d.parts), d.format)
        return real_set(fs, d.n_rus, d.missing_dbm, d.floor_height_m)
    raise ConfigError(f"config.data.source: expected 'synthetic' or 'real', got {d.source!r}")


class Study:
    """The split, the standardised arrays and the stacked-seed stages of one run."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str) -> None:
        self.config, self.workdir = config, workdir
        self.ru = load_ru_set(config)
        self.rps = split_rps(len(self.ru.rp_xy), tuple(config.data.split), config.data.split_seed)
        self.rows = {p: self.ru.rows(self.rps[p]) for p in PARTS}
        train = self.rows["rss_train"]
        self.scale = Scale.fit(self.ru.rss[train], self.ru.rp_xy[self.rps["rss_train"]])
        self.x = self.scale.rss_in(self.ru.rss)  # (n, L) standardised
        self.p = self.scale.xy_in(self.ru.rp_xy)[self.ru.rp]  # (n, D)
        self.seeds = tuple(config.seeds)
        self.n = len(self.seeds)
        shared = {"data": config.data.to_dict(), "seeds": list(self.seeds)}
        if config.data.source == "synthetic":
            shared["synthetic"] = config.synthetic.to_dict()
        self.stages = SeedStages(workdir, self.seeds, shared)
        self._priors: dict[bool, np.ndarray] = {}
        loc = config.localizer
        self.localizer = Localizer(outputs=self.p.shape[1], kernel=loc.kernel)
        self.localizer_step = make_train_step(regression_loss(self.localizer.apply), jit=False)

    @property
    def rus(self) -> int:
        return self.x.shape[1]

    def options(self, train: ml_collections.ConfigDict, name: str) -> LoopOptions:
        return LoopOptions.from_config(train, seed=named_int(self.config.seed, name))

    # --- the GAN ----------------------------------------------------------------------------------
    def train_gan(self, variant: str) -> tuple[Any, Generator]:
        g = variant_settings(self.config, "gan", variant)
        settings = GanSettings(
            Generator(kernel=g.kernel),
            Critic(kernel=g.kernel),
            RpEstimator(outputs=self.p.shape[1], kernel=g.kernel),
            int(g.n_critic),
            int(g.measured),
            float(g.gp_weight),
            float(g.aux_weight),
            float(g.l1_weight),
            g.adversarial,
            g.prior == "gpr",
        )
        rows = self.rows["rss_train"]
        batch = int(g.batch_size)
        prior = self.gpr_prior(left_out=True) if settings.prior else None

        def batch_of(rng: np.random.Generator, _: int) -> dict[str, np.ndarray]:
            pick = rows[rng.integers(0, len(rows), (settings.n_critic + 1, batch))]
            out = {"rss": self.x[pick], "rp": self.p[pick]}
            if prior is not None:
                out["prior"] = prior[pick]
            return out

        def init(key: jax.Array) -> dict:
            return init_state(settings, key, self.rus, self.p.shape[1], g.learning_rate)

        name = f"gan/{variant}"
        options = self.options(self.config.gan_train, name)
        states = self.stages.stage(
            name, init, make_iteration(settings), batch_of, options, {"gan": g.to_dict()}
        )
        return states["generator"], settings.generator

    def train_unet(self) -> tuple[Any, UNet1D]:
        u = self.config.unet
        model = UNet1D(use_rp=bool(u.use_rp), kernel=int(u.kernel))
        rows = self.rows["rss_train"]
        tx = optax.adam(u.learning_rate)
        sample = jnp.zeros((1, self.rus))
        step = make_train_step(denoiser_loss(model, int(u.measured)), jit=False)

        def init(key: jax.Array):
            params = model.init(key, sample, sample, jnp.zeros((1, self.p.shape[1])))["params"]
            return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

        def batch_of(rng: np.random.Generator, _: int) -> dict[str, np.ndarray]:
            pick = rows[rng.integers(0, len(rows), int(self.config.unet_train.batch_size))]
            return {"rss": self.x[pick], "rp": self.p[pick]}

        options = self.options(self.config.unet_train, "unet")
        states = self.stages.stage("unet", init, step, batch_of, options, {"unet": u.to_dict()})
        return states, model

    def complete(
        self, params, model: Generator | UNet1D, rows: np.ndarray, measured: np.ndarray, prior=None
    ) -> np.ndarray:
        """(seeds, len(rows), L) standardised completions by eq. 6 from stacked `params`."""
        x, rp = jnp.asarray(self.x[rows]), jnp.asarray(self.p[rows])
        prior = None if prior is None else jnp.asarray(prior[rows])
        return np.asarray(_complete(model, params, x, rp, jnp.asarray(measured), prior))

    def interpolate(self, method: str, rows: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """(len(rows), L) standardised: measured entries kept, the rest interpolated from the
        training RPs' mean fingerprints at each row's RP."""
        if method == "idw":
            train_rps = self.rps["rss_train"]
            train_means = self.rp_means(self.rows["rss_train"])[train_rps]
            train_xy = self.scale.xy_in(self.ru.rp_xy[train_rps])
            predicted = completion.idw_map(
                train_xy, train_means, self.p[rows], self.config.interpolation.idw_k
            )
        else:
            predicted = self.gpr_prior(left_out=False)[rows]
        mask = completion.mask_of(measured, self.rus)
        return completion.keep_measured(self.x[rows], mask, predicted)

    def gpr_prior(self, left_out: bool) -> np.ndarray:
        """(n, L) standardised Gaussian-process mean at each sample's RP, fitted to the training RPs'
        means; with `left_out`, a training RP's value comes from the other training RPs."""
        if left_out not in self._priors:
            self._priors[left_out] = self._gpr_prior(left_out)
        return self._priors[left_out]

    def _gpr_prior(self, left_out: bool) -> np.ndarray:
        train_rps = self.rps["rss_train"]
        train_means = self.rp_means(self.rows["rss_train"])[train_rps]
        train_xy = self.scale.xy_in(self.ru.rp_xy[train_rps])
        i = self.config.interpolation
        lengths = tuple(v / self.scale.xy_std for v in i.gp_lengths_m)
        all_xy = self.scale.xy_in(self.ru.rp_xy)
        per_rp = completion.gp_map(train_xy, train_means, all_xy, lengths, tuple(i.gp_noises))
        if left_out:
            per_rp[train_rps] = completion.gp_map_left_out(
                train_xy, train_means, lengths, tuple(i.gp_noises)
            )
        return per_rp[self.ru.rp].astype(np.float32)

    def rp_mean_oracle(self, rows: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """Measured entries kept, the rest each row's own RP mean over `rows` (uses the truth: a
        floor, not a method — the error left is the samples' spread around their RP's mean)."""
        means = self.rp_means(rows)[self.ru.rp[rows]]
        return completion.keep_measured(self.x[rows], completion.mask_of(measured, self.rus), means)

    def rp_means(self, rows: np.ndarray) -> np.ndarray:
        """(RPs, L) standardised mean fingerprint of each RP over `rows` (zeros where it has none)."""
        rp = self.ru.rp[rows]
        means = np.zeros((len(self.ru.rp_xy), self.rus))
        np.add.at(means, rp, self.x[rows])
        return means / np.maximum(np.bincount(rp, minlength=len(means)), 1)[:, None]

    # --- the localizer -----------------------------------------------------------------------------
    def train_localizer(self, version: str, inputs: np.ndarray) -> np.ndarray:
        """Train on (seeds, n, L) `inputs` at the RSS-testing RPs; returns (seeds,) mean and RMS
        localization errors (m) on the localization-testing RPs."""
        loc, model = self.config.localizer, self.localizer
        targets = self.p[self.rows["rss_test"]]
        tx = optax.adam(loc.learning_rate)
        sample = jnp.zeros((1, self.rus))

        def init(key: jax.Array):
            return create_train_state(model, key, sample, tx)

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            pick = rng.integers(0, len(targets), loc.batch_size)
            return {"x": inputs[m, pick], "y": targets[pick]}

        name = f"localizer/{version}"
        options = self.options(loc, name)
        shaping = {"localizer": loc.to_dict(), "inputs": _fingerprint(inputs)}
        states = self.stages.stage(name, init, self.localizer_step, batch_of, options, shaping)
        test = jnp.asarray(self.x[self.rows["loc_test"]])
        truth = self.scale.xy_out(self.p[self.rows["loc_test"]])
        xy = self.scale.xy_out(np.asarray(_locate(model, states.params, test)))
        return np.linalg.norm(xy - truth[None], axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _complete(model: Generator | UNet1D, stacked_params, x, rp, measured, prior) -> jax.Array:
    """Eq. 6 for every seed's net: (seeds, n, L)."""
    extra = () if prior is None else (prior,)

    def one(params):
        def generate(xm, m, c):
            return model.apply({"params": params}, xm, m, c, *extra)

        return completion.subset_completion(generate, x, rp, measured)

    return jax.vmap(one)(stacked_params)


@functools.partial(jax.jit, static_argnums=0)
def _locate(model: Localizer, stacked_params, x) -> jax.Array:
    return jax.vmap(lambda p: model.apply({"params": p}, x))(stacked_params)


def _fingerprint(array: np.ndarray) -> str:
    """A short content hash, so a localizer stage is recomputed when its training inputs change."""
    return hashlib.sha256(np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()[:16]


def bootstrap_rmse(squared: np.ndarray, resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile-bootstrap CI of sqrt(mean(squared)), resampling the elements."""
    rng = np.random.default_rng(seed)
    stats = np.empty(resamples)
    for i in range(resamples):
        stats[i] = np.sqrt(squared[rng.integers(0, len(squared), len(squared))].mean())
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def element_errors(
    s: Study, completed: np.ndarray, rows: np.ndarray, measured: np.ndarray
) -> dict[str, Any]:
    """(seeds or 1, n, L) standardised completions -> RMSE/NRMSE rows over the unmeasured entries."""
    truth = s.ru.rss[rows].astype(np.float64)
    unmeasured = completion.mask_of(measured, s.rus) == 0
    per_seed_rmse, per_seed_nrmse, pooled = [], [], []
    for c in completed:
        diff = (s.scale.rss_out(c) - truth)[unmeasured]
        per_seed_rmse.append(np.sqrt(np.mean(diff**2)))
        per_seed_nrmse.append(per_seed_rmse[-1] / np.sqrt(np.mean(truth[unmeasured] ** 2)))
        pooled.append(diff**2)
    row = over_seeds(per_seed_rmse, "rmse_db")
    row["nrmse"] = float(np.mean(per_seed_nrmse))
    e = s.config.eval
    row["rmse_boot_low"], row["rmse_boot_high"] = bootstrap_rmse(
        np.concatenate(pooled), e.bootstrap_resamples, s.config.seed
    )
    return row


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    known = list(config.variants.keys())
    unknown = set(config.run_variants) - set(known)
    if unknown:
        raise ConfigError(
            f"config.run_variants: unknown {sorted(unknown)}; expected some of {known}"
        )
    for variant in config.run_variants:
        g = variant_settings(config, "gan", variant)
        if g.adversarial not in ("wasserstein", "bce"):
            raise ConfigError(
                f"gan.adversarial for {variant}: expected 'wasserstein' or 'bce', "
                f"got {g.adversarial!r}"
            )
        if g.prior not in PRIORS:
            raise ConfigError(f"gan.prior for {variant}: expected one of {PRIORS}, got {g.prior!r}")
    if config.localizer_k not in config.ks:
        raise ConfigError(f"config.localizer_k: expected one of config.ks {tuple(config.ks)}")
    os.makedirs(workdir, exist_ok=True)
    s = Study(config, workdir)
    test_rows = s.rows["rss_test"]
    measured_all = completion.measured_rus(len(test_rows), s.rus, max(config.ks), config.eval.seed)
    completion_rows: dict[str, dict[str, Any]] = {}
    hybrids: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    learned: dict[str, tuple[Any, Any, np.ndarray | None]] = {}  # params, net, prior
    for variant in config.run_variants:
        print(f"[comgan] {variant}: training {len(s.seeds)} seeds", flush=True)
        start = time.perf_counter()
        generator, model = s.train_gan(variant)
        seconds[variant] = time.perf_counter() - start
        uses_prior = variant_settings(config, "gan", variant).prior == "gpr"
        learned[variant] = (generator.params, model, s.gpr_prior(False) if uses_prior else None)
    if config.run_unet:
        print(f"[comgan] unet: training {len(s.seeds)} seeds", flush=True)
        start = time.perf_counter()
        states, model = s.train_unet()
        seconds["unet"] = time.perf_counter() - start
        learned["unet"] = (states.params, model, None)
    for name, (params, model, prior) in learned.items():
        for k in config.ks:
            measured = measured_all[:, :k]
            completed = s.complete(params, model, test_rows, measured, prior)
            completion_rows[f"{name} K={k}"] = element_errors(s, completed, test_rows, measured)
            hybrids[f"{name} K={k}"] = completed
        # Eq. 6's averaging apart from its extra measured entries: K measured entries kept, the
        # rest completed from the first subset alone.
        k = config.localizer_k
        if k > 1:
            measured = measured_all[:, :k]
            single = s.complete(params, model, test_rows, measured_all[:, :1], prior)
            mask = completion.mask_of(measured, s.rus)
            kept = completion.keep_measured(s.x[test_rows][None], mask, single)
            row = f"{name} K={k} one subset"
            completion_rows[row] = element_errors(s, kept, test_rows, measured)
            hybrids[row] = kept
    # The floor for any predictor that sees only the RP: each test RP's own mean (from the truth).
    for k in config.ks:
        measured = measured_all[:, :k]
        oracle = s.rp_mean_oracle(test_rows, measured)[None]
        completion_rows[f"oracle RP mean K={k}"] = element_errors(s, oracle, test_rows, measured)
    for method in INTERPOLATIONS:
        for k in config.ks:
            measured = measured_all[:, :k]
            done = s.interpolate(method, test_rows, measured)[None]
            completion_rows[f"{method} K={k}"] = element_errors(s, done, test_rows, measured)
            hybrids[f"{method} K={k}"] = np.repeat(done, s.n, 0)
    mask = completion.mask_of(measured_all[:, : config.localizer_k], s.rus)
    full = np.repeat(s.x[test_rows][None], s.n, 0)
    versions = {"incomplete": full * mask, "full": full}
    for name, completed in hybrids.items():  # every method at localizer_k, the GANs at every K
        method, k = name.split(" K=")
        if int(k.split()[0]) == config.localizer_k or method in learned:
            versions[f"hybrid {name}"] = completed
    localization: dict[str, dict[str, Any]] = {}
    for version, inputs in versions.items():
        print(f"[comgan] localizer on {version}", flush=True)
        errors = s.train_localizer(version.replace(" ", "_").replace("=", ""), inputs)
        row = over_seeds(errors.mean(1), "mean_m")
        row.update(over_seeds(np.sqrt((errors**2).mean(1)), "rmse_m"))
        localization[version] = row
    title = (
        f"{s.ru.source}: {len(s.ru.rp_xy)} RPs ({', '.join(f'{p} {len(s.rps[p])}' for p in PARTS)}), "
        f"{len(s.ru.rss)} samples, RUs {s.ru.ru_ids.tolist()}; seeds {list(s.seeds)}"
    )
    columns = [
        "rmse_db",
        "rmse_db_ci_low",
        "rmse_db_ci_high",
        "rmse_boot_low",
        "rmse_boot_high",
        "nrmse",
    ]
    loc_columns = ["mean_m", "mean_m_ci_low", "mean_m_ci_high", "rmse_m"]
    tables = {
        "localization error (m): the CNN localizer trained on the RSS-testing RPs' samples": table(
            localization, loc_columns
        )
    }
    write_results(
        workdir,
        title,
        config,
        completion_rows,
        columns,
        tables,
        localization=localization,
        train_seconds=seconds,
        split={p: s.rps[p].tolist() for p in PARTS},
        rus=s.ru.ru_ids.tolist(),
    )
    return {"completion": completion_rows, "localization": localization}

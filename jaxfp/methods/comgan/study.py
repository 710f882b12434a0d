"""ComGAN's stages on the trainer: the GAN variants, the U-Net denoiser and the CNN localizer, every
seed stacked (`jaxfp.train.seed_stages.SeedStages`), each seed training on its own data draw and
completed, interpolated and scored on its own test RPs.

Every training (GAN variant, U-Net, localizer version) is a stage under the workdir: checkpoints,
metrics.jsonl, progress bar, finite guard; a rerun reuses or resumes it when its settings are
unchanged and recomputes it when they changed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxfp.config import variant_settings
from jaxfp.methods.comgan import completion
from jaxfp.methods.comgan.data import Draw, data_seed, draws_for
from jaxfp.methods.comgan.losses import denoiser_loss
from jaxfp.methods.comgan.nets import Generator, Localizer, NoiseGenerator, UNet1D
from jaxfp.methods.comgan.training import gan_settings, init_state, make_iteration
from jaxfp.train.keys import named_int, named_key, named_seed
from jaxfp.train.optimisers import optimizer_from_config
from jaxfp.train.options import LoopOptions
from jaxfp.train.seed_stages import BatchOf, SeedStages
from jaxfp.train.state import TrainState, create_train_state
from jaxfp.train.steps import make_train_step, regression_loss


class Study:
    """Each seed's data draw and the stacked-seed stages of one run."""

    def __init__(self, config: ml_collections.ConfigDict, workdir: str) -> None:
        self.config, self.workdir = config, workdir
        self.seeds = tuple(config.seeds)
        self.n = len(self.seeds)
        self.draws: list[Draw] = draws_for(config, self.seeds)
        self.rus, self.rp_dims = self.draws[0].x.shape[1], self.draws[0].p.shape[1]
        shared = {"data": config.data.to_dict(), "seeds": list(self.seeds)}
        if config.data.source == "synthetic":
            shared["synthetic"] = config.synthetic.to_dict()
        self.stages = SeedStages(workdir, self.seeds, shared)
        self._priors: dict[tuple[int, bool], np.ndarray] = {}
        loc = config.localizer
        self.localizer = Localizer(outputs=self.rp_dims, kernel=loc.kernel)
        self.localizer_step = make_train_step(regression_loss(self.localizer.apply), jit=False)

    def options(self, train: ml_collections.ConfigDict, name: str) -> LoopOptions:
        return LoopOptions.from_config(train, seed=named_int(self.config.seed, name))

    def rows(self, part: str) -> list[np.ndarray]:
        """Each seed's sample rows of `part`."""
        return [d.rows[part] for d in self.draws]

    def measured_rus(self, k: int) -> list[np.ndarray]:
        """Each seed's (n_test, k) measured RUs of its RSS-testing samples, drawn once per data
        draw so that every method completes from the same entries."""
        return [
            completion.measured_rus(
                len(d.rows["rss_test"]),
                self.rus,
                k,
                named_seed(data_seed(self.config, seed), "measured"),
            )
            for seed, d in zip(self.seeds, self.draws, strict=True)
        ]

    def training_batches(
        self, shape: tuple[int, ...], priors: Sequence[np.ndarray] | None = None
    ) -> BatchOf:
        """`batch_of(rng, m)`: seed m's samples of `shape` drawn from its own RSS-training rows."""

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            d = self.draws[m]
            rows = d.rows["rss_train"]
            pick = rows[rng.integers(0, len(rows), shape)]
            out = {"rss": d.x[pick], "rp": d.p[pick]}
            if priors is not None:
                out["prior"] = priors[m][pick]
            return out

        return batch_of

    # --- the GAN and the U-Net -------------------------------------------------------------------
    def train_gan(self, variant: str) -> tuple[Any, Generator | NoiseGenerator]:
        g = variant_settings(self.config, "gan", variant)
        settings = gan_settings(g, self.rp_dims)
        tx = optimizer_from_config(g.optimizer.to_dict())
        priors = (
            [self.gpr_prior(m, left_out=True) for m in range(self.n)] if settings.prior else None
        )
        batch_of = self.training_batches((settings.n_critic + 1, int(g.batch_size)), priors)

        def init(key: jax.Array) -> dict:
            return init_state(settings, key, self.rus, self.rp_dims, tx)

        name = f"gan/{variant}"
        options = self.options(self.config.gan_train, name)
        states = self.stages.stage(
            name, init, make_iteration(settings), batch_of, options, {"gan": g.to_dict()}
        )
        return states["generator"], settings.generator

    def train_unet(self) -> tuple[Any, UNet1D]:
        u = self.config.unet
        model = UNet1D(use_rp=bool(u.use_rp), kernel=int(u.kernel))
        tx = optimizer_from_config(u.optimizer.to_dict())
        sample = jnp.zeros((1, self.rus))
        step = make_train_step(denoiser_loss(model, int(u.measured)), jit=False)

        def init(key: jax.Array):
            params = model.init(key, sample, sample, jnp.zeros((1, self.rp_dims)))["params"]
            return TrainState.create(apply_fn=model.apply, params=params, tx=tx)

        batch_of = self.training_batches((int(self.config.unet_train.batch_size),))
        options = self.options(self.config.unet_train, "unet")
        states = self.stages.stage("unet", init, step, batch_of, options, {"unet": u.to_dict()})
        return states, model

    def complete(
        self,
        params: Any,
        model: Generator | NoiseGenerator | UNet1D,
        measured: Sequence[np.ndarray],
        priors: Sequence[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Each seed's (n_test, L) standardised completions of its RSS-testing samples by eq. 6,
        from its own net in the stacked `params`."""
        rows = self.rows("rss_test")
        x = _stack_padded([d.x[r] for d, r in zip(self.draws, rows, strict=True)])
        rp = _stack_padded([d.p[r] for d, r in zip(self.draws, rows, strict=True)])
        prior = None
        if priors is not None:
            prior = jnp.asarray(_stack_padded([p[r] for p, r in zip(priors, rows, strict=True)]))
        keys = jnp.stack([named_key(seed, "completion noise") for seed in self.seeds])
        out = _complete(
            model,
            params,
            jnp.asarray(x),
            jnp.asarray(rp),
            jnp.asarray(_stack_padded(measured)),
            prior,
            keys,
        )
        out = np.asarray(out)
        return [out[m, : len(r)] for m, r in enumerate(rows)]

    # --- interpolation and the RP-mean floor -------------------------------------------------------
    def interpolate(self, method: str, m: int, measured: np.ndarray) -> np.ndarray:
        """Seed m's (n_test, L) standardised RSS-testing samples: measured entries kept, the rest
        interpolated ("idw" or "gpr") from its training RPs' mean fingerprints at each row's RP."""
        d = self.draws[m]
        rows = d.rows["rss_test"]
        if method == "idw":
            train_rps = d.rps["rss_train"]
            train_means = self.rp_means(m, d.rows["rss_train"])[train_rps]
            train_xy = d.scale.xy_in(d.ru.rp_xy[train_rps])
            predicted = completion.idw_map(
                train_xy, train_means, d.p[rows], self.config.interpolation.idw_k
            )
        elif method == "gpr":
            predicted = self.gpr_prior(m, left_out=False)[rows]
        else:
            raise ValueError(f"interpolate: expected 'idw' or 'gpr', got {method!r}")
        mask = completion.mask_of(measured, self.rus)
        return completion.keep_measured(d.x[rows], mask, predicted)

    def gpr_prior(self, m: int, left_out: bool) -> np.ndarray:
        """Seed m's (n, L) standardised Gaussian-process mean at each sample's RP, fitted to its
        training RPs' means; with `left_out`, a training RP's value comes from the other training
        RPs (GPR-GAN's training prior, as coarse there as at an unseen RP)."""
        if (m, left_out) not in self._priors:
            self._priors[m, left_out] = self._gpr_prior(self.draws[m], m, left_out)
        return self._priors[m, left_out]

    def _gpr_prior(self, d: Draw, m: int, left_out: bool) -> np.ndarray:
        train_rps = d.rps["rss_train"]
        train_means = self.rp_means(m, d.rows["rss_train"])[train_rps]
        train_xy = d.scale.xy_in(d.ru.rp_xy[train_rps])
        i = self.config.interpolation
        lengths = tuple(v / d.scale.xy_std for v in i.gp_lengths_m)
        all_xy = d.scale.xy_in(d.ru.rp_xy)
        per_rp = completion.gp_map(train_xy, train_means, all_xy, lengths, tuple(i.gp_noises))
        if left_out:
            per_rp[train_rps] = completion.gp_map_left_out(
                train_xy, train_means, lengths, tuple(i.gp_noises)
            )
        return per_rp[d.ru.rp].astype(np.float32)

    def rp_mean_oracle(self, m: int, measured: np.ndarray) -> np.ndarray:
        """Seed m's RSS-testing samples, measured entries kept, the rest each row's own RP mean
        over those samples (uses the truth: a floor, not a method — the error left is the samples'
        spread around their RP's mean)."""
        d = self.draws[m]
        rows = d.rows["rss_test"]
        means = self.rp_means(m, rows)[d.ru.rp[rows]]
        return completion.keep_measured(d.x[rows], completion.mask_of(measured, self.rus), means)

    def rp_means(self, m: int, rows: np.ndarray) -> np.ndarray:
        """(RPs, L) standardised mean fingerprint of each RP over seed m's `rows` (zeros where it
        has none)."""
        d = self.draws[m]
        rp = d.ru.rp[rows]
        means = np.zeros((len(d.ru.rp_xy), self.rus))
        np.add.at(means, rp, d.x[rows])
        return means / np.maximum(np.bincount(rp, minlength=len(means)), 1)[:, None]

    # --- the localizer -----------------------------------------------------------------------------
    def train_localizer(self, version: str, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Train on each seed's (n_test, L) `inputs` at its RSS-testing RPs; returns each seed's
        estimates (m; the RP coordinates: x, y and, on several floors, the floor's height) of its
        localization-testing samples."""
        loc, model = self.config.localizer, self.localizer
        targets = [d.p[r] for d, r in zip(self.draws, self.rows("rss_test"), strict=True)]
        tx = optimizer_from_config(loc.optimizer.to_dict())
        sample = jnp.zeros((1, self.rus))

        def init(key: jax.Array):
            return create_train_state(model, key, sample, tx)

        def batch_of(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
            pick = rng.integers(0, len(targets[m]), loc.batch_size)
            return {"x": inputs[m][pick], "y": targets[m][pick]}

        name = f"localizer/{version}"
        options = self.options(loc, name)
        shaping = {"localizer": loc.to_dict(), "inputs": _fingerprint(inputs)}
        states = self.stages.stage(name, init, self.localizer_step, batch_of, options, shaping)
        rows = self.rows("loc_test")
        test = _stack_padded([d.x[r] for d, r in zip(self.draws, rows, strict=True)])
        xy = np.asarray(_locate(model, states.params, jnp.asarray(test)))
        return [
            d.scale.xy_out(xy[m, : len(r)])
            for m, (d, r) in enumerate(zip(self.draws, rows, strict=True))
        ]


def _stack_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(seeds, n_max, ...): each seed's array padded with copies of its first row (seeds' test
    parts differ in size on a real set; the padding is sliced off after the vmapped call)."""
    n = max(len(a) for a in arrays)
    return np.stack([np.concatenate([a, np.repeat(a[:1], n - len(a), 0)]) for a in arrays])


@functools.partial(jax.jit, static_argnums=0)
def _complete(
    model: Generator | NoiseGenerator | UNet1D, stacked_params, x, rp, measured, prior, keys
) -> jax.Array:
    """Eq. 6 for every seed's net on that seed's samples: (seeds, n, L); `keys` (seeds,) feed a
    generator that draws noise (one draw per subset), and nothing else."""

    def one(params, x, rp, measured, prior, key):
        extra = () if prior is None else (prior,)

        def generate(xm, m, c, k):
            return model.apply({"params": params}, xm, m, c, *extra, rngs={"noise": k})

        return completion.subset_completion(generate, x, rp, measured, key)

    return jax.vmap(one)(stacked_params, x, rp, measured, prior, keys)


@functools.partial(jax.jit, static_argnums=0)
def _locate(model: Localizer, stacked_params, x) -> jax.Array:
    return jax.vmap(lambda p, xs: model.apply({"params": p}, xs))(stacked_params, x)


def _fingerprint(arrays: Sequence[np.ndarray]) -> str:
    """A short content hash, so a localizer stage is recomputed when its training inputs change."""
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a, np.float32).tobytes())
    return digest.hexdigest()[:16]

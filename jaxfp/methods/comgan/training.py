"""WGAN-GP training of ComGAN (§III-B), one jitted iteration per step of the training core.

An iteration is `n_critic` critic steps (a `lax.scan`) and one generator step, on `n_critic + 1`
minibatches of complete (standardised) training samples. Each sample is made incomplete inside the
step from the step's key: `measured` of its L RUs are kept, the rest zeroed (the paper keeps one of
six). Both players' states live in one pytree {'generator', 'critic'}; the critic player also holds
the auxiliary RP estimator (trained on real samples with MSE to the RP). Losses:

- critic: mean C(fake) - mean C(real) + λ1 · mean_i (||∇_x C(x̂_i)|| - 1)², the gradient taken per
  sample by `jax.vmap(jax.grad(...))` at x̂_i = ε_i real_i + (1 - ε_i) fake_i; + MSE(aux(real), RP).
- generator (eq. 5): -mean C(fake) + λ2 MSE(ĉ1, ĉ2) + λ3 mean |fake - real| (all entries).
- Lite-ComGAN: λ2 = 0 and no estimator.
- cGAN (the baseline of ref. [11]): the same input and output, the standard (non-saturating, binary
  cross-entropy) GAN loss instead of the Wasserstein one, no penalty, no branch; the L1 term kept.
- GPR-GAN (ref. [13] as §IV-D adapts it): ComGAN's WGAN-GP without the branch, the generator's
  unmeasured entries filled with the batch's 'prior' (the Gaussian-process mean at the sample's RP).
- U-Net denoiser (ref. [29]): no adversary; mean squared error of its output against the complete
  sample, on samples made incomplete the same way (`denoiser_loss`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxfp.methods.comgan.nets import Critic, Generator, RpEstimator, UNet1D
from jaxfp.train.state import TrainState
from jaxfp.train.steps import apply_gradients


class GanSettings(NamedTuple):
    """Everything the iteration closes over (hashable)."""

    generator: Generator
    critic: Critic
    estimator: RpEstimator
    n_critic: int
    measured: int
    gp_weight: float  # λ1
    aux_weight: float  # λ2 (0: Lite-ComGAN)
    l1_weight: float  # λ3
    adversarial: str = "wasserstein"  # or "bce" (cGAN)
    prior: bool = False  # GPR-GAN: batches carry 'prior', the coarse fill of unmeasured entries


def incomplete_mask(key: jax.Array, batch: int, rus: int, measured: int) -> jax.Array:
    """(batch, rus) float mask with `measured` RUs kept per sample, drawn uniformly."""
    scores = jax.random.uniform(key, (batch, rus))
    kth = jnp.sort(scores, axis=1)[:, measured - 1 : measured]
    return (scores <= kth).astype(jnp.float32)


def gradient_penalty(critic_apply, params, inter: jax.Array, rp: jax.Array) -> jax.Array:
    """(batch,) (||∇_x C(x̂_i)|| - 1)², one gradient per sample (vmap of grad)."""

    def score(x: jax.Array, c: jax.Array) -> jax.Array:
        return critic_apply(params, x[None], c[None])[0]

    grads = jax.vmap(jax.grad(score))(inter, rp)
    return (jnp.sqrt(jnp.sum(grads**2, -1) + 1e-12) - 1.0) ** 2


def init_state(
    s: GanSettings, key: jax.Array, rus: int, rp_dims: int, learning_rate: float
) -> dict:
    g_key, c_key, e_key = jax.random.split(key, 3)
    rss, rp = jnp.zeros((1, rus)), jnp.zeros((1, rp_dims))
    tx = optax.adam(learning_rate)
    generator = s.generator.init(g_key, rss, rss, rp)["params"]
    critic = {"critic": s.critic.init(c_key, rss, rp)["params"]}
    if s.aux_weight:
        critic["estimator"] = s.estimator.init(e_key, rss)["params"]
    return {
        "generator": TrainState.create(apply_fn=s.generator.apply, params=generator, tx=tx),
        "critic": TrainState.create(apply_fn=s.critic.apply, params=critic, tx=tx),
    }


def make_iteration(s: GanSettings):
    """`state, metrics = iteration(state, batch, rng)` (un-jitted; batch leaves are
    (n_critic + 1, B, ...): 'rss' standardised complete samples, 'rp' standardised RPs)."""
    critic_apply = lambda p, x, c: s.critic.apply({"params": p}, x, c)  # noqa: E731

    def fake_of(g_params, real, rp, prior, key):
        mask = incomplete_mask(key, real.shape[0], real.shape[1], s.measured)
        return s.generator.apply({"params": g_params}, real, mask, rp, prior)

    def critic_loss(c_params, g_params, real, rp, prior, key):
        mask_key, eps_key = jax.random.split(key)
        fake = jax.lax.stop_gradient(fake_of(g_params, real, rp, prior, mask_key))
        real_score = critic_apply(c_params["critic"], real, rp)
        fake_score = critic_apply(c_params["critic"], fake, rp)
        if s.adversarial == "bce":
            loss = jnp.mean(jax.nn.softplus(-real_score) + jax.nn.softplus(fake_score))
            metrics = {"discriminator_bce": loss}
        else:
            wasserstein = jnp.mean(fake_score) - jnp.mean(real_score)
            loss, metrics = wasserstein, {"wasserstein": -wasserstein}
        if s.gp_weight:
            eps = jax.random.uniform(eps_key, (real.shape[0], 1))
            penalty = gradient_penalty(
                critic_apply, c_params["critic"], eps * real + (1 - eps) * fake, rp
            )
            loss = loss + s.gp_weight * jnp.mean(penalty)
            metrics["gradient_penalty"] = jnp.mean(penalty)
        if s.aux_weight:
            estimate = s.estimator.apply({"params": c_params["estimator"]}, real)
            rp_mse = jnp.mean(jnp.sum((estimate - rp) ** 2, -1))
            loss = loss + rp_mse
            metrics["estimator_mse"] = rp_mse
        return loss, metrics

    def generator_loss(g_params, c_params, real, rp, prior, key):
        fake = fake_of(g_params, real, rp, prior, key)
        score = critic_apply(c_params["critic"], fake, rp)
        if s.adversarial == "bce":
            adversarial = jnp.mean(jax.nn.softplus(-score))
        else:
            adversarial = -jnp.mean(score)
        l1 = jnp.mean(jnp.abs(fake - real))
        loss = adversarial + s.l1_weight * l1
        metrics = {"adversarial": adversarial, "l1": l1}
        if s.aux_weight:
            estimator = lambda x: s.estimator.apply({"params": c_params["estimator"]}, x)  # noqa: E731
            rp_consistency = jnp.mean(jnp.sum((estimator(real) - estimator(fake)) ** 2, -1))
            loss = loss + s.aux_weight * rp_consistency
            metrics["rp_consistency"] = rp_consistency
        return loss, metrics

    def iteration(state: dict, batch: Any, rng: jax.Array) -> tuple[dict, dict]:
        step_key = jax.random.fold_in(rng, state["generator"].step)
        keys = jax.random.split(step_key, s.n_critic + 1)
        g_params = state["generator"].params

        prior = batch["prior"] if s.prior else None

        def critic_step(critic: TrainState, inputs):
            real, rp, prior, key = inputs
            (loss, metrics), grads = jax.value_and_grad(critic_loss, has_aux=True)(
                critic.params, g_params, real, rp, prior, key
            )
            critic, norms = apply_gradients(critic, grads, loss)
            return critic, {"critic_loss": loss, "critic_finite": norms["finite"], **metrics}

        last = None if prior is None else prior[-1]
        critics = (batch["rss"][:-1], batch["rp"][:-1], None if prior is None else prior[:-1])
        critic, c_metrics = jax.lax.scan(critic_step, state["critic"], (*critics, keys[:-1]))
        (loss, g_metrics), grads = jax.value_and_grad(generator_loss, has_aux=True)(
            g_params, critic.params, batch["rss"][-1], batch["rp"][-1], last, keys[-1]
        )
        generator, norms = apply_gradients(state["generator"], grads, loss)
        c_last = jax.tree.map(lambda m: m[-1], c_metrics)
        finite = norms["finite"] * jnp.min(c_metrics["critic_finite"])
        metrics = {**c_last, **g_metrics, "loss": loss, "grad_norm": norms["grad_norm"]}
        metrics["finite"] = finite
        del metrics["critic_finite"]
        return {"generator": generator, "critic": critic}, metrics

    return iteration


def denoiser_loss(unet: UNet1D, measured: int):
    """A `make_train_step` loss: MSE of the U-Net's output on batch['rss'] made incomplete (`measured`
    RUs kept per sample, drawn from the step's key) against the complete sample."""

    def loss_fn(params: Any, state: TrainState, batch: Any, key: jax.Array):
        real, rp = batch["rss"], batch["rp"]
        mask = incomplete_mask(key, real.shape[0], real.shape[1], measured)
        out = unet.apply({"params": params}, real, mask, rp)
        mse = jnp.mean((out - real) ** 2)
        return mse, ({"mse": mse}, state.batch_stats)

    return loss_fn

"""WGAN-GP training of ComGAN (§III-B), one jitted iteration per step of the trainer.

An iteration is `n_critic` critic steps (a `lax.scan`) and one generator step, on `n_critic + 1`
minibatches of complete (standardised) training samples. Each sample is made incomplete inside the
step from the step's key: `measured` of its L RUs are kept, the rest zeroed (the paper keeps one of
six). Both players' states live in one pytree {'generator', 'critic'}; the critic player also holds
the auxiliary RP estimator. The losses are `jaxfp.methods.comgan.losses`'. The variants:

- ComGAN: Wasserstein loss, penalty λ1, branch λ2, L1 λ3.
- Lite-ComGAN: λ2 = 0 and no estimator.
- cGAN (the baseline of ref. [11]): a generator of noise and the RP (`NoiseGenerator`), the
  standard GAN loss (binary cross-entropy), no penalty, no branch, no L1 term: adversarial only.
- GPR-GAN (ref. [13] as §IV-D adapts it): ComGAN's WGAN-GP without the branch, the generator's
  unmeasured entries filled with the batch's 'prior' (the Gaussian-process mean at the sample's RP).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxfp.methods.comgan import losses
from jaxfp.methods.comgan.completion import incomplete_mask
from jaxfp.methods.comgan.nets import Critic, Generator, NoiseGenerator, RpEstimator
from jaxfp.train.optimisers import optimizer
from jaxfp.train.state import TrainState
from jaxfp.train.steps import apply_gradients


class GanSettings(NamedTuple):
    """Everything the iteration closes over (hashable)."""

    generator: Generator | NoiseGenerator
    critic: Critic
    estimator: RpEstimator
    n_critic: int
    measured: int
    gp_weight: float  # λ1
    aux_weight: float  # λ2 (0: Lite-ComGAN)
    l1_weight: float  # λ3
    adversarial: str = "wasserstein"  # or "bce" (cGAN)
    prior: bool = False  # GPR-GAN: batches carry 'prior', the coarse fill of unmeasured entries


GENERATOR_INPUTS = ("incomplete", "noise")


def gan_settings(g: ml_collections.ConfigDict, rp_dims: int) -> GanSettings:
    """The settings of one variant's resolved `config.gan` section."""
    if g.generator_input not in GENERATOR_INPUTS:
        raise ValueError(
            f"gan.generator_input: expected one of {GENERATOR_INPUTS}, got {g.generator_input!r}"
        )
    net = Generator if g.generator_input == "incomplete" else NoiseGenerator
    return GanSettings(
        net(kernel=g.kernel),
        Critic(kernel=g.kernel),
        RpEstimator(outputs=rp_dims, kernel=g.kernel),
        int(g.n_critic),
        int(g.measured),
        float(g.gp_weight),
        float(g.aux_weight),
        float(g.l1_weight),
        g.adversarial,
        g.prior == "gpr",
    )


def init_state(
    s: GanSettings,
    key: jax.Array,
    rus: int,
    rp_dims: int,
    tx: optax.GradientTransformation | float,
) -> dict:
    """Both players' states; `tx` is the optimiser of both (a float: Adam at that rate with
    optax's betas)."""
    if not isinstance(tx, optax.GradientTransformation):
        tx = optimizer("adam", float(tx))
    g_key, c_key, e_key, n_key = jax.random.split(key, 4)
    rss, rp = jnp.zeros((1, rus)), jnp.zeros((1, rp_dims))
    generator = s.generator.init({"params": g_key, "noise": n_key}, rss, rss, rp)["params"]
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

    def players(c_params):
        def critic(x: jax.Array, c: jax.Array) -> jax.Array:
            return s.critic.apply({"params": c_params["critic"]}, x, c)

        estimator = None
        if s.aux_weight:

            def estimator(x: jax.Array) -> jax.Array:
                return s.estimator.apply({"params": c_params["estimator"]}, x)

        return critic, estimator

    def fake_of(g_params, real, rp, prior, key):
        mask_key, noise_key = jax.random.split(key)
        mask = incomplete_mask(mask_key, real.shape[0], real.shape[1], s.measured)
        return s.generator.apply(
            {"params": g_params}, real, mask, rp, prior, rngs={"noise": noise_key}
        )

    def critic_objective(c_params, g_params, real, rp, prior, key):
        mask_key, eps_key = jax.random.split(key)
        fake = jax.lax.stop_gradient(fake_of(g_params, real, rp, prior, mask_key))
        eps = jax.random.uniform(eps_key, (real.shape[0], 1))
        critic, estimator = players(c_params)
        return losses.critic_loss(
            critic, real, fake, rp, eps, s.gp_weight, s.adversarial, estimator
        )

    def generator_objective(g_params, c_params, real, rp, prior, key):
        fake = fake_of(g_params, real, rp, prior, key)
        critic, estimator = players(c_params)
        return losses.generator_loss(
            critic, real, fake, rp, s.l1_weight, s.aux_weight, s.adversarial, estimator
        )

    def iteration(state: dict, batch: Any, rng: jax.Array) -> tuple[dict, dict]:
        step_key = jax.random.fold_in(rng, state["generator"].step)
        keys = jax.random.split(step_key, s.n_critic + 1)
        g_params = state["generator"].params

        prior = batch["prior"] if s.prior else None

        def critic_step(critic: TrainState, inputs):
            real, rp, prior, key = inputs
            (loss, metrics), grads = jax.value_and_grad(critic_objective, has_aux=True)(
                critic.params, g_params, real, rp, prior, key
            )
            critic, norms = apply_gradients(critic, grads, loss)
            return critic, {"critic_loss": loss, "critic_finite": norms["finite"], **metrics}

        last = None if prior is None else prior[-1]
        critics = (batch["rss"][:-1], batch["rp"][:-1], None if prior is None else prior[:-1])
        critic, c_metrics = jax.lax.scan(critic_step, state["critic"], (*critics, keys[:-1]))
        (loss, g_metrics), grads = jax.value_and_grad(generator_objective, has_aux=True)(
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

"""ComGAN's losses (§III-B), on scores and apply functions so that each can be checked by hand.

- critic (WGAN-GP, the paper's ref. [21]): mean C(fake) - mean C(real) + λ1 · mean_i (‖∇_x C(x̂_i)‖ - 1)²
  at x̂_i = ε_i real_i + (1 - ε_i) fake_i, the gradient taken per sample (`jax.vmap(jax.grad(...))`);
  with the auxiliary branch, its RP estimator E is trained beside the critic on real samples:
  + mean_i ‖E(real_i) - c_i‖².
- generator (eq. 5): -mean C(fake) + λ2 MSE(ĉ1, ĉ2) + λ3 mean |fake - real| (all entries), with
  ĉ1 = E(real), ĉ2 = E(fake); MSE between RP estimates is the mean over samples of the squared
  distance (summed over the D coordinates).
- cGAN: the standard GAN's terms on the critic's logits instead: critic mean softplus(-C(real)) +
  softplus(C(fake)) (binary cross-entropy), generator mean softplus(-C(fake)) (non-saturating).
- U-Net denoiser: mean squared error of its output on an incomplete sample against the complete one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxfp.methods.comgan.completion import incomplete_mask
from jaxfp.methods.comgan.nets import UNet1D
from jaxfp.train.state import TrainState

Critic = Callable[[jax.Array, jax.Array], jax.Array]  # (B, L) RSS, (B, D) RP -> (B,) scores
Estimator = Callable[[jax.Array], jax.Array]  # (B, L) RSS -> (B, D) RP estimates
ADVERSARIAL = ("wasserstein", "bce")


def gradient_penalty(critic: Critic, inter: jax.Array, rp: jax.Array) -> jax.Array:
    """(B,) (‖∇_x C(x̂_i)‖ - 1)², one gradient per sample (vmap of grad)."""

    def score(x: jax.Array, c: jax.Array) -> jax.Array:
        return critic(x[None], c[None])[0]

    grads = jax.vmap(jax.grad(score))(inter, rp)
    return (jnp.sqrt(jnp.sum(grads**2, -1) + 1e-12) - 1.0) ** 2


def squared_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean over samples of ‖a_i - b_i‖²."""
    return jnp.mean(jnp.sum((a - b) ** 2, -1))


def critic_loss(
    critic: Critic,
    real: jax.Array,
    fake: jax.Array,
    rp: jax.Array,
    eps: jax.Array,
    gp_weight: float,
    adversarial: str = "wasserstein",
    estimator: Estimator | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The critic's (and the RP estimator's) loss on real and generated (B, L) samples at RPs
    (B, D); `eps` (B, 1) places the penalty's interpolates."""
    real_score, fake_score = critic(real, rp), critic(fake, rp)
    if adversarial == "bce":
        loss = jnp.mean(jax.nn.softplus(-real_score) + jax.nn.softplus(fake_score))
        metrics = {"discriminator_bce": loss}
    elif adversarial == "wasserstein":
        wasserstein = jnp.mean(fake_score) - jnp.mean(real_score)
        loss, metrics = wasserstein, {"wasserstein": -wasserstein}
    else:
        raise ValueError(f"adversarial: expected one of {ADVERSARIAL}, got {adversarial!r}")
    if gp_weight:
        penalty = jnp.mean(gradient_penalty(critic, eps * real + (1 - eps) * fake, rp))
        loss = loss + gp_weight * penalty
        metrics["gradient_penalty"] = penalty
    if estimator is not None:
        rp_mse = squared_distance(estimator(real), rp)
        loss = loss + rp_mse
        metrics["estimator_mse"] = rp_mse
    return loss, metrics


def generator_loss(
    critic: Critic,
    real: jax.Array,
    fake: jax.Array,
    rp: jax.Array,
    l1_weight: float,
    aux_weight: float = 0.0,
    adversarial: str = "wasserstein",
    estimator: Estimator | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Eq. 5 for generated (B, L) samples `fake` of the complete `real` ones at RPs `rp`; the
    λ2 term needs `estimator` (Lite-ComGAN and the baselines pass none and λ2 = 0)."""
    score = critic(fake, rp)
    if adversarial == "bce":
        adv = jnp.mean(jax.nn.softplus(-score))
    elif adversarial == "wasserstein":
        adv = -jnp.mean(score)
    else:
        raise ValueError(f"adversarial: expected one of {ADVERSARIAL}, got {adversarial!r}")
    l1 = jnp.mean(jnp.abs(fake - real))
    loss = adv + l1_weight * l1
    metrics = {"adversarial": adv, "l1": l1}
    if aux_weight:
        if estimator is None:
            raise ValueError("generator_loss: aux_weight > 0 needs the RP estimator")
        rp_consistency = squared_distance(estimator(real), estimator(fake))
        loss = loss + aux_weight * rp_consistency
        metrics["rp_consistency"] = rp_consistency
    return loss, metrics


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

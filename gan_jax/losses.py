"""Adversarial losses: pure functions of critic logits, written to stay finite for any logit.

Each loss is a pair: `critic(real_logits, fake_logits, real_target, fake_target)` and `generator(fake_logits)`.
Targets are per-example arrays so that one-sided label smoothing and random label flipping (GAN folklore, see
Salimans et al. 2016) reuse the same formulas; Wasserstein and hinge losses have no targets and ignore them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.registry import LOSSES

Array = jax.Array


def bce_with_logits(logits: Array, targets: Array) -> Array:
    """Per-example binary cross-entropy; softplus keeps it finite where log(sigmoid) would underflow."""
    return targets * jax.nn.softplus(-logits) + (1.0 - targets) * jax.nn.softplus(logits)


def _logistic_critic(real: Array, fake: Array, real_target: Array, fake_target: Array) -> Array:
    return jnp.mean(bce_with_logits(real, real_target)) + jnp.mean(bce_with_logits(fake, fake_target))


def minimax_generator(fake: Array) -> Array:
    """The original saturating objective: G minimises log(1 - D(G(z))) = -softplus(logit)."""
    return -jnp.mean(jax.nn.softplus(fake))


def non_saturating_generator(fake: Array) -> Array:
    """G maximises log D(G(z)): strong gradients early in training when D rejects every fake."""
    return jnp.mean(jax.nn.softplus(-fake))


def least_squares_critic(real: Array, fake: Array, real_target: Array, fake_target: Array) -> Array:
    """LSGAN (Mao et al. 2017), a-b-c = 0-1-1 coding, on the raw critic output."""
    return 0.5 * (jnp.mean(jnp.square(real - real_target)) + jnp.mean(jnp.square(fake - fake_target)))


def least_squares_generator(fake: Array) -> Array:
    return 0.5 * jnp.mean(jnp.square(fake - 1.0))


def wasserstein_critic(real: Array, fake: Array, real_target: Array, fake_target: Array) -> Array:
    """Negative of the critic's estimate of W1: E[D(fake)] - E[D(real)]."""
    del real_target, fake_target
    return jnp.mean(fake) - jnp.mean(real)


def wasserstein_generator(fake: Array) -> Array:
    return -jnp.mean(fake)


def hinge_critic(real: Array, fake: Array, real_target: Array, fake_target: Array) -> Array:
    """Hinge loss (Lim & Ye 2017; SNGAN, BigGAN)."""
    del real_target, fake_target
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


class AdversarialLoss(NamedTuple):
    critic: Callable[[Array, Array, Array, Array], Array]
    generator: Callable[[Array], Array]
    decision_threshold: float  # critic output that separates "real" from "fake" for the accuracy metric


for _name, _loss, _logistic in (
    ("minimax", AdversarialLoss(_logistic_critic, minimax_generator, 0.0), True),
    ("ns", AdversarialLoss(_logistic_critic, non_saturating_generator, 0.0), True),
    ("lsgan", AdversarialLoss(least_squares_critic, least_squares_generator, 0.5), True),
    ("wgan", AdversarialLoss(wasserstein_critic, wasserstein_generator, 0.0), False),
    ("wgan_gp", AdversarialLoss(wasserstein_critic, wasserstein_generator, 0.0), False),
    ("hinge", AdversarialLoss(hinge_critic, wasserstein_generator, 0.0), False),
):
    # logistic: has real/fake targets, so one-sided label smoothing and label flips apply.
    LOSSES.register(_name, _loss, logistic=_logistic)


def get_loss(name: str) -> AdversarialLoss:
    return LOSSES.get(name)


def is_logistic(name: str) -> bool:
    """Whether the loss has real/fake targets (label smoothing and flips apply to it)."""
    return bool((LOSSES.entry(name).info or {}).get("logistic"))


def critic_targets(key: Array, batch: int, smoothing: float, flip_prob: float) -> tuple[Array, Array]:
    """Real and fake targets per example: real is 1 - smoothing (one-sided), then each pair flips with prob p."""
    real = jnp.full((batch,), 1.0 - smoothing)
    fake = jnp.zeros((batch,))
    if flip_prob > 0.0:
        k_real, k_fake = jax.random.split(key)
        flip_real = jax.random.bernoulli(k_real, flip_prob, (batch,))
        flip_fake = jax.random.bernoulli(k_fake, flip_prob, (batch,))
        real, fake = jnp.where(flip_real, 0.0, real), jnp.where(flip_fake, 1.0 - smoothing, fake)
    return real, fake

"""Critic regularizers: pure functions that the train step adds to the critic loss or applies to its params."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def gradient_penalty(critic_fn: Callable[[Array], Array], real: Array, fake: Array, key: Array, pack: int = 1) -> Array:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] at random interpolates x_hat.

    `critic_fn` maps a batch to per-example logits. The gradient of their sum is each example's input gradient
    when examples are independent (no batch-norm in the critic, as the paper advises); with batch-norm it is the
    same quantity the PyTorch references compute with `autograd.grad(D(x_hat).sum(), x_hat)`.

    A packed critic (PacGAN, `models.packing`; CTGAN) returns one logit per pack of `pack` consecutive examples:
    the pack is the critic's input, so each pack is interpolated with one weight (as CTGAN does) and the norm is
    taken over the pack's whole gradient.
    """
    eps = jax.random.uniform(key, (real.shape[0] // pack,) + (1,) * (real.ndim - 1), dtype=real.dtype)
    eps = jnp.repeat(eps, pack, axis=0) if pack > 1 else eps
    x_hat = eps * real + (1.0 - eps) * fake
    logits, pullback = jax.vjp(critic_fn, x_hat)  # logits: [B], or [B / m] for packs of m
    (grads,) = pullback(jnp.ones_like(logits))  # the gradient of their sum
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(logits.shape[0], -1)), axis=1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


def clip_weights(params: dict, clip_value: float) -> dict:
    """WGAN weight clipping (Arjovsky et al. 2017): keeps the critic roughly K-Lipschitz."""
    return jax.tree_util.tree_map(lambda p: jnp.clip(p, -clip_value, clip_value), params)


def r1_penalty(critic_fn: Callable[[Array], Array], real: Array) -> Array:
    """R1 (Mescheder et al. 2018): E_real[||grad_x D(x)||^2], penalising the critic's slope on the data.

    A critic that is flat on the real data cannot push G's samples past it, which is what makes the
    regularised game locally convergent. Returns the unscaled mean squared norm: the caller adds
    (gamma / 2) * r1_penalty(...) to the critic loss. With lazy regularisation (StyleGAN2, Karras et al. 2020),
    applied once every k critic steps, the caller multiplies by k as well, so its average weight stays gamma / 2.

    The gradient is taken of the sum of logits, as in `gradient_penalty` (each example's input gradient when
    examples are independent). A packed critic returns one logit per pack of consecutive examples; the squared
    norm is then the pack's and the mean is over packs.
    """
    logits, pullback = jax.vjp(critic_fn, real)  # logits: [B], or [B / m] for packs of m
    (grads,) = pullback(jnp.ones_like(logits))
    return jnp.mean(jnp.sum(jnp.square(grads.reshape(logits.shape[0], -1)), axis=1))


def instance_noise_std(step: Array, std: float, anneal_steps: int) -> Array:
    """The instance-noise scale at `step`: std at step 0, falling linearly to 0 at `anneal_steps` (and after).

    Noise makes the real and fake distributions overlap early, when they are far apart and the critic's
    gradient is uninformative; annealing it away lets training end on the clean data. `anneal_steps` = 0 keeps
    it constant. `step` may be traced (a jitted train step).
    """
    if anneal_steps < 0:
        raise ValueError(f"anneal_steps must be >= 0, got {anneal_steps}")
    std = jnp.asarray(std, jnp.float32)
    if anneal_steps == 0:
        return std
    remaining = 1.0 - jnp.asarray(step, jnp.float32) / anneal_steps
    return std * jnp.clip(remaining, 0.0, 1.0)


def add_instance_noise(x: Array, key: Array, std: Array) -> Array:
    """x + std * N(0, 1) (Sønderby et al. 2016; Arjovsky & Bottou 2017), for real and fake alike.

    Spreading both distributions with the same noise gives them overlapping supports, so the critic cannot
    separate them perfectly and G keeps a useful gradient. Keeps x's dtype.
    """
    return x + jnp.asarray(std, x.dtype) * jax.random.normal(key, x.shape, x.dtype)

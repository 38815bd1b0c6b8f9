"""Critic regularizers: pure functions that the train step adds to the critic loss or applies to its params."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Array = jax.Array


def gradient_penalty(
    critic_fn: Callable[[Array], Array], real: Array, fake: Array, key: Array, pack: int = 1
) -> Array:
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

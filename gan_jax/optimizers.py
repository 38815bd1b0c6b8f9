"""Optimizers by name (`optim.g.name`, `optim.d.name`): each maps its config to an optax transformation."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

from gan_jax.config import OptimizerConfig
from gan_jax.registry import OPTIMIZERS


@OPTIMIZERS.register("adam")
def _adam(cfg: OptimizerConfig, lr: Any) -> optax.GradientTransformation:
    return optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)


@OPTIMIZERS.register("rmsprop")
def _rmsprop(cfg: OptimizerConfig, lr: Any) -> optax.GradientTransformation:
    return optax.rmsprop(lr, eps=cfg.eps, momentum=cfg.momentum or None)


@OPTIMIZERS.register("sgd")
def _sgd(cfg: OptimizerConfig, lr: Any) -> optax.GradientTransformation:
    return optax.sgd(lr, momentum=cfg.momentum or None)


def build_optimizer(cfg: OptimizerConfig, total_updates: int) -> optax.GradientTransformation:
    """`total_updates` is the number of updates this optimizer makes in the run (for the linear decay). The
    learning rate may be a traced value (a population member's)."""
    lr: Any = cfg.lr
    if cfg.schedule == "linear":
        lr = optax.linear_schedule(cfg.lr, 0.0, total_updates)
    elif cfg.schedule == "constant_linear":
        lr = constant_then_linear(cfg.lr, total_updates, cfg.decay_from)
    tx = OPTIMIZERS.get(cfg.name)(cfg, lr)
    if cfg.weight_decay > 0:  # L2 on the gradient, before the moments (torch.optim.Adam(weight_decay=...))
        tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
    return tx


def constant_then_linear(lr: Any, total_updates: int, decay_from: float) -> optax.Schedule:
    """CycleGAN's rule: the base rate for the first `decay_from` of the updates, then linearly to 0 at the end
    (its per-epoch `1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)`, applied per update)."""
    start = round(total_updates * decay_from)
    span = max(total_updates - start, 1)

    def schedule(count: Any) -> Any:
        return lr * (1.0 - jnp.clip((count - start) / span, 0.0, 1.0))

    return schedule

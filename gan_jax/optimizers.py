"""Optimizers by name (`optim.g.name`, `optim.d.name`): each maps its config to an optax transformation."""

from __future__ import annotations

from typing import Any

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
    tx = OPTIMIZERS.get(cfg.name)(cfg, lr)
    if cfg.weight_decay > 0:  # L2 on the gradient, before the moments (torch.optim.Adam(weight_decay=...))
        tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
    return tx

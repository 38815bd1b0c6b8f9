"""Config -> objects: the one place that maps names in a config to models, losses and optimizers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import optax

from gan_jax.config import Config, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.data.source import DataSource
from gan_jax.errors import ConfigError
from gan_jax.losses import AdversarialLoss, get_loss
from gan_jax.models.mlp import MLPCritic, MLPGenerator
from gan_jax.models.packing import PackedCritic


@dataclass(frozen=True)
class GAN:
    """Everything static about an experiment: modules, optimizers, loss and step hyperparameters.

    Hashable and free of arrays, so the train step closes over it and jit never retraces for it.
    """

    generator: nn.Module
    critic: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: AdversarialLoss
    loss_name: str
    z_dim: int
    latent: str
    example_shape: tuple[int, ...]
    num_classes: int | None
    batch_size: int
    n_critic: int
    pack: int = 1  # PacGAN: the critic sees batch_size / pack packs of `pack` samples (see models.packing)
    ema_decay: float = 0.0  # > 0 keeps an EMA of G's params in the state
    ema_start: int = 0
    gp_weight: float = 0.0  # > 0 adds the WGAN-GP penalty
    clip_value: float = 0.0  # > 0 clips critic weights after each update (WGAN)
    label_smoothing: float = 0.0
    label_flip_prob: float = 0.0
    on_nonfinite: str = "stop"  # the divergence guard: "stop" or "skip" (see train.step.guard_nonfinite)
    # What G and D are conditioned on: "none", or "table" (CTGAN's condition {"cond": one-hot category of a
    # discrete column, "mask": which column}, drawn with each batch); cond_dim / n_discrete are its widths.
    condition: str = "none"
    cond_dim: int = 0
    n_discrete: int = 0
    # Set by train.parallel only: how the per-replica step spreads over devices (None on one device).
    axis_name: str | None = None  # pmap: the device axis that gradients, metrics and batch-norm average over
    batch_sharding: Any = None  # jit over a mesh: a NamedSharding that splits the batch axis across devices

    @property
    def conditional(self) -> bool:
        """Whether batches carry a condition `y` that G and D receive."""
        return self.num_classes is not None or self.condition != "none"

    def dummy_condition(self, n: int) -> Any:
        """A condition of the right shapes for `n` examples (initialisation); None for unconditional GANs."""
        if self.condition == "table":
            return {"cond": jnp.zeros((n, self.cond_dim)), "mask": jnp.zeros((n, self.n_discrete))}
        return jnp.zeros((n,), jnp.int32) if self.num_classes else None


def build_models(cfg: ModelConfig, source: DataSource) -> tuple[nn.Module, nn.Module]:
    """Generator and critic; with model.pack > 1 the critic is wrapped to judge packs (PacGAN)."""
    if cfg.name == "ctgan" or source.kind == "table":
        return _build_table_models(cfg, source)
    generator, critic = _build_models(cfg, source)
    if cfg.pack > 1:
        critic = PackedCritic(critic=critic, pack=cfg.pack)
    return generator, critic


def _build_models(cfg: ModelConfig, source: DataSource) -> tuple[nn.Module, nn.Module]:
    shape = source.example_shape
    if cfg.name == "mlp":
        g = MLPGenerator(
            out_shape=shape,
            widths=tuple(cfg.g_widths),
            activation=cfg.g_activation,
            dropout=cfg.g_dropout,
            output_activation=cfg.g_output,
        )
        return g, MLPCritic(widths=tuple(cfg.d_widths), activation=cfg.d_activation)
    if source.kind != "images":
        raise ConfigError(
            f"model.name={cfg.name!r} needs image data, but data.name={source.name!r} is 2-D; use model=mlp"
        )
    from gan_jax.models import dcgan  # conv families only

    height, width, channels = shape
    if height != width:
        raise ConfigError(f"model.name={cfg.name!r} needs square images, got {height}x{width}")
    if cfg.name == "dcgan":
        kw = {"resolution": height, "weight_init": cfg.init}
        return (
            dcgan.DCGANGenerator(**kw, channels=channels, z_dim=cfg.z_dim),
            dcgan.DCGANCritic(**kw, channels=channels * cfg.pack, activation=cfg.d_activation),  # packs: m*C
        )
    if cfg.name == "radford":
        if height != 64:
            raise ConfigError(f"model=radford is the 64x64 DCGAN; set data.resolution=64 (got {height})")
        critic = dcgan.RadfordCritic(channels=channels * cfg.pack)
        return dcgan.RadfordGenerator(channels=channels, z_dim=cfg.z_dim), critic
    raise ConfigError(f"model.name={cfg.name!r} is unknown; choose one of: mlp, dcgan, radford")


def _build_table_models(cfg: ModelConfig, source: DataSource) -> tuple[nn.Module, nn.Module]:
    """CTGAN's generator (residual blocks, output heads) and packed critic (it packs `model.pack` rows itself)."""
    if cfg.name != "ctgan" or source.kind != "table":
        raise ConfigError("tables (data=csv) train with model=ctgan, and model=ctgan trains on tables (data=csv)")
    from gan_jax.models.tabular import TableCritic, TableGenerator

    output_info = source.info["transformer"].output_info
    generator = TableGenerator(output_info, tuple(cfg.g_widths), cfg.gumbel_tau, cfg.cond_loss_weight)
    return generator, TableCritic(tuple(cfg.d_widths), cfg.pack, cfg.d_dropout)


def build_optimizer(cfg: OptimizerConfig, total_updates: int) -> optax.GradientTransformation:
    """`total_updates` is the number of updates this optimizer makes in the run (for the linear decay)."""
    lr: float | optax.Schedule = cfg.lr
    if cfg.schedule == "linear":
        lr = optax.linear_schedule(cfg.lr, 0.0, total_updates)
    if cfg.name == "adam":
        tx = optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
    elif cfg.name == "rmsprop":
        tx = optax.rmsprop(lr, eps=cfg.eps, momentum=cfg.momentum or None)
    elif cfg.name == "sgd":
        tx = optax.sgd(lr, momentum=cfg.momentum or None)
    else:
        raise ConfigError(f"optimizer name {cfg.name!r} is unknown; choose one of: adam, rmsprop, sgd")
    if cfg.weight_decay > 0:  # L2 on the gradient, before the moments (torch.optim.Adam(weight_decay=...))
        tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
    return tx


def loss_options(cfg: LossConfig) -> dict[str, float]:
    return {
        "gp_weight": cfg.gp_weight if cfg.name == "wgan_gp" else 0.0,
        "clip_value": cfg.clip_value if cfg.name == "wgan" else 0.0,
        "label_smoothing": cfg.label_smoothing,
        "label_flip_prob": cfg.label_flip_prob,
    }


def build_gan(cfg: Config, source: DataSource) -> GAN:
    generator, critic = build_models(cfg.model, source)
    return GAN(
        generator=generator,
        critic=critic,
        g_tx=build_optimizer(cfg.optim.g, cfg.train.steps),
        d_tx=build_optimizer(cfg.optim.d, cfg.train.steps * cfg.train.n_critic),
        loss=get_loss(cfg.loss.name),
        loss_name=cfg.loss.name,
        z_dim=cfg.model.z_dim,
        latent=cfg.model.latent,
        example_shape=source.example_shape,
        num_classes=None,  # class-conditional GANs arrive with the model zoo; labels are loaded but unused
        **_condition(source),
        batch_size=cfg.train.batch_size,
        n_critic=cfg.train.n_critic,
        pack=cfg.model.pack,
        ema_decay=cfg.train.ema_decay,
        ema_start=cfg.train.ema_start,
        on_nonfinite=cfg.train.on_nonfinite,
        **loss_options(cfg.loss),
    )


def _condition(source: DataSource) -> dict[str, Any]:
    if source.kind != "table":
        return {}
    transformer = source.info["transformer"]
    n_discrete = sum(1 for span in transformer.output_info if span.discrete)
    return {"condition": "table", "cond_dim": transformer.cond_dim, "n_discrete": n_discrete}

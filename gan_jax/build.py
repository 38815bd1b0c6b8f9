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
    # Class-conditional image GANs (model.conditioning): batches carry int labels `y` in 0..num_classes-1.
    conditioning: str = "none"  # none | cgan | acgan | projection
    aux_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # ACGAN class-loss weights: D real, D fake, G
    r1_gamma: float = 0.0  # > 0: R1 penalty on real data
    r1_every: int = 1  # lazy R1: every this many generator steps (scaled by it)
    augment: tuple[str, ...] = ()  # DiffAugment ops applied to every critic input
    instance_noise: float = 0.0  # std of the noise added to every critic input at step 0
    instance_noise_steps: int = 0  # linear decay of that std to 0 (0: constant)
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

    @property
    def class_conditional(self) -> bool:
        """Whether G and D take class labels (model.conditioning)."""
        return self.num_classes is not None


def build_models(cfg: ModelConfig, source: DataSource) -> tuple[nn.Module, nn.Module]:
    """Generator and critic; with model.pack > 1 the critic is wrapped to judge packs (PacGAN)."""
    if cfg.name == "ctgan" or source.kind == "table":
        return _build_table_models(cfg, source)
    generator, critic = _build_models(cfg, source, _conditioning(cfg, source))
    if cfg.pack > 1:
        critic = PackedCritic(critic=critic, pack=cfg.pack)
    return generator, critic


def _conditioning(cfg: ModelConfig, source: DataSource) -> dict[str, Any]:
    """The label fields every conditional module takes: {} for unconditional models."""
    if cfg.conditioning == "none":
        return {}
    if not source.num_classes:
        raise ConfigError(
            f"model.conditioning={cfg.conditioning} needs class labels, but data {source.name!r} has none; "
            "use a labelled dataset (digits, mnist, fashion_mnist, cifar10, a class-per-subfolder folder, an npz "
            "with y) or set model.conditioning=none"
        )
    return {"num_classes": source.num_classes, "conditioning": cfg.conditioning}


COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def _build_models(cfg: ModelConfig, source: DataSource, cond: dict[str, Any]) -> tuple[nn.Module, nn.Module]:
    shape = source.example_shape
    sn = {"spectral_norm": cfg.spectral_norm}
    if cfg.name == "mlp":
        g = MLPGenerator(
            out_shape=shape,
            widths=tuple(cfg.g_widths),
            activation=cfg.g_activation,
            dropout=cfg.g_dropout,
            output_activation=cfg.g_output,
            **cond,
        )
        return g, MLPCritic(widths=tuple(cfg.d_widths), activation=cfg.d_activation, **cond, **sn)
    if source.kind != "images":
        raise ConfigError(
            f"model.name={cfg.name!r} needs image data, but data.name={source.name!r} is 2-D; use model=mlp"
        )
    from gan_jax.models import dcgan  # conv families only

    height, width, channels = shape
    if height != width:
        raise ConfigError(f"model.name={cfg.name!r} needs square images, got {height}x{width}")
    dtype = {"dtype": COMPUTE_DTYPES[cfg.compute_dtype]}
    if cfg.name == "dcgan":
        kw = {"resolution": height, "weight_init": cfg.init, "width_scale": cfg.width_scale, **cond, **dtype}
        return (
            dcgan.DCGANGenerator(**kw, channels=channels, z_dim=cfg.z_dim, dropout=cfg.g_dropout),
            dcgan.DCGANCritic(**kw, **sn, channels=channels * cfg.pack, activation=cfg.d_activation),  # packs: m*C
        )
    if cfg.name == "resnet":
        from gan_jax.models import resnet

        kw = {"resolution": height, "attention_resolution": cfg.attention_resolution, **dtype}
        g_cond = {"num_classes": cond["num_classes"]} if cond else {}
        generator = resnet.ResNetGenerator(
            **kw, **g_cond, channels=channels, z_dim=cfg.z_dim, width=cfg.g_channels, dropout=cfg.g_dropout
        )
        critic = resnet.ResNetCritic(**kw, **cond, **sn, channels=channels * cfg.pack, width=cfg.d_channels)
        return generator, critic
    if cfg.name == "radford":
        if height != 64:
            raise ConfigError(f"model=radford is the 64x64 DCGAN; set data.resolution=64 (got {height})")
        if cond:
            raise ConfigError("model=radford is unconditional; use model=dcgan or model=resnet for conditioning")
        critic = dcgan.RadfordCritic(channels=channels * cfg.pack, **sn)
        return dcgan.RadfordGenerator(channels=channels, z_dim=cfg.z_dim), critic
    raise ConfigError(f"model.name={cfg.name!r} is unknown; choose one of: mlp, dcgan, radford, resnet")


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
        num_classes=source.num_classes if cfg.model.conditioning != "none" else None,
        conditioning=cfg.model.conditioning,
        aux_weights=(cfg.loss.aux_real_weight, cfg.loss.aux_fake_weight, cfg.loss.aux_g_weight),
        r1_gamma=cfg.loss.r1_gamma,
        r1_every=cfg.loss.r1_every,
        augment=tuple(cfg.train.augment),
        instance_noise=cfg.train.instance_noise,
        instance_noise_steps=cfg.train.instance_noise_steps,
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

"""The built-in models: each one's config schema, its builder and its own checks, registered by name.

A builder maps (its config, the data source) to (generator, critic) Flax modules; the family wraps them (PacGAN
packing, pmap batch norm) and trains them. Networks are imported inside the builders, so validating a config does
not import Flax. A plug-in model registers the same way (README: Your own model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gan_jax.config import Config, ModelConfig
from gan_jax.errors import ConfigError
from gan_jax.registry import MODELS

ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
COMPUTE_DTYPES = ("float32", "bfloat16")


@dataclass
class MLPConfig(ModelConfig):
    """MLP generator and critic: 2-D mixtures, flattened small images."""

    g_widths: list[int] = field(default_factory=lambda: [256, 256, 256])
    d_widths: list[int] = field(default_factory=lambda: [256, 256, 256])
    g_activation: str = "relu"
    d_activation: str = "leaky_relu"
    g_dropout: float = 0.0
    g_output: str = "linear"  # linear | tanh


@dataclass
class DCGANConfig(ModelConfig):
    """StudioGAN's deep_conv DCGAN (image channels and resolution come from the dataset)."""

    z_dim: int = 128
    d_activation: str = "relu"
    g_dropout: float = 0.0
    init: str = "default"  # default (Flax) | normal02 (Radford's N(0, 0.02))
    width_scale: float = 1.0  # every layer's width times this (1 = StudioGAN's; < 1 for quick runs)
    compute_dtype: str = "float32"  # float32 | bfloat16: convolution compute; parameters and optimizer stay float32


@dataclass
class RadfordConfig(ModelConfig):
    """Radford et al.'s 64x64 DCGAN (unconditional)."""

    z_dim: int = 100


@dataclass
class ResNetConfig(ModelConfig):
    """SNGAN's 32x32 ResNet generator and critic (optionally with SAGAN self-attention)."""

    z_dim: int = 128
    spectral_norm: bool = True
    g_channels: int = 256  # generator width (SNGAN CIFAR-10: 256)
    d_channels: int = 128  # critic width (SNGAN CIFAR-10: 128)
    g_dropout: float = 0.0
    attention_resolution: int = 0  # > 0: a SAGAN self-attention block at this feature-map size in G and D
    compute_dtype: str = "float32"


@dataclass
class CTGANConfig(ModelConfig):
    """CTGAN's residual generator with Gumbel-softmax heads and its packed critic (tables)."""

    z_dim: int = 128
    pack: int = 10
    g_widths: list[int] = field(default_factory=lambda: [256, 256])
    d_widths: list[int] = field(default_factory=lambda: [256, 256])
    d_dropout: float = 0.5  # dropout after each critic layer
    gumbel_tau: float = 0.2  # Gumbel-softmax temperature of the discrete outputs
    cond_loss_weight: float = 1.0  # weight of the generator's conditional cross-entropy


@dataclass
class CycleGANConfig(ModelConfig):
    """CycleGAN's ResNet generator and PatchGAN critic (the reference repo's defaults: resnet_9blocks, ngf 64,
    n_layers_D 3, instance norm) and the weights of its losses (family=cyclegan)."""

    ngf: int = 64  # generator width (the reference's --ngf)
    n_blocks: int = 9  # residual blocks (resnet_9blocks; 6 for resnet_6blocks)
    n_downsampling: int = 2  # stride-2 convs before the blocks (image sides must divide by 2**this)
    ndf: int = 64  # critic width (--ndf)
    n_layers: int = 3  # PatchGAN depth (--n_layers_D): receptive field 70 px at 3, 34 px at 2, 16 px at 1
    norm: str = "instance"  # instance | batch (--norm)
    cycle_weight: float = 10.0  # λ_A = λ_B (--lambda_A, --lambda_B)
    identity_weight: float = 0.5  # identity loss weight as a fraction of λ (--lambda_identity; 0: off)
    pool_size: int = 50  # fake images each critic's history pool keeps (--pool_size; 0: no pool)


@dataclass
class StyleGAN2Config(ModelConfig):
    """StyleGAN2 (stylegan2-ada-pytorch's `training/networks.py`) and its training terms (`loss.py`,
    `training_loop.py`, ADA), family=stylegan2. Defaults: the reference's `train.py` defaults (its --cfg=stylegan2
    networks, --aug=ada --augpipe=bgc --target=0.6); the presets (experiment=stylegan2_cifar10, ...) set the rest.
    Channels at resolution r: min(channel_base / r, channel_max)."""

    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8  # the reference's --map (cifar: 2)
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995  # tracking of the mean w (truncation's centre)
    channel_base: int = 32768  # the reference's fmaps * 32768
    channel_max: int = 512
    g_architecture: str = "skip"  # orig | skip | resnet
    d_architecture: str = "resnet"  # orig | skip | resnet (cifar: orig)
    mbstd_group_size: int = 4  # minibatch standard deviation: group size (cifar: 32) and channels
    mbstd_num_channels: int = 1
    # The top resolutions computed in bfloat16 on GPU/TPU (the reference's num_fp16_res, with conv_clamp); CPU
    # runs compute in float32 whatever this says (XLA:CPU's bf16 convolutions are not faster).
    num_bf16_res: int = 4
    conv_clamp: float | None = 256.0  # clamp of every conv's output (the reference's 256; null: none)
    r1_gamma: float = 10.0  # R1 weight γ (the reference's --gamma; cifar 0.01)
    r1_every: int = 16  # lazy R1: every this many steps, scaled by it (D_reg_interval)
    pl_weight: float = 2.0  # path-length regularisation weight (cifar: 0 = off)
    pl_every: int = 4  # lazy path length (G_reg_interval)
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing_prob: float = 0.9  # cifar: 0
    ema_kimg: float = 10.0  # G's EMA half-life in thousands of images (cifar: 500)
    ema_rampup: float = 0.0  # > 0: the half-life is at most nimg * this (cifar: 0.05); 0: none
    augpipe: str = "bgc"  # ADA's pipeline (gan_jax/ada.py PRESETS)
    augment_p: float = 0.0  # initial (or, with ada_target 0, fixed) augmentation probability
    ada_target: float = 0.6  # r_t target of ADA's heuristic; 0: p stays at augment_p (0 and 0: no augmentation)
    ada_interval: int = 4  # steps between adjustments of p
    ada_kimg: float = 500.0  # thousands of images for p to move by 1
    truncation_psi: float = 1.0  # sampling and evaluation (the reference's metrics use 1)
    truncation_cutoff: int | None = None  # layers < cutoff are truncated (null: all)


def _choice(value: str, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not a valid choice; choose one of: {', '.join(allowed)}")


def _in_unit(value: float, key: str) -> None:
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"{key}={value} must be in [0, 1)")


def _check_image_model(cfg: Config) -> None:
    m = cfg.model
    if hasattr(m, "compute_dtype"):
        _choice(m.compute_dtype, "model.compute_dtype", COMPUTE_DTYPES)
    if hasattr(m, "g_dropout"):
        _in_unit(m.g_dropout, "model.g_dropout")
    if getattr(m, "width_scale", 1.0) <= 0:
        raise ConfigError(f"model.width_scale={m.width_scale} must be positive")
    if getattr(m, "attention_resolution", 0) < 0:
        raise ConfigError(f"model.attention_resolution={m.attention_resolution} must be >= 0 (0 = none)")
    if hasattr(m, "init"):
        _choice(m.init, "model.init", ("default", "normal02"))
    if hasattr(m, "d_activation"):
        _choice(m.d_activation, "model.d_activation", ACTIVATIONS)


def _check_mlp(cfg: Config) -> None:
    from gan_jax.data.catalog import dataset_kind

    _check_image_model(cfg)
    _choice(cfg.model.g_activation, "model.g_activation", ACTIVATIONS)
    _choice(cfg.model.g_output, "model.g_output", ("linear", "tanh"))
    # The default (toy) MLP emits unbounded 2-D points; images live in [-1, 1]. Training it on an image set is
    # almost always a forgotten model choice, so it is refused rather than trained silently.
    if dataset_kind(cfg.data.name) == "images" and cfg.model.g_output == "linear":
        raise ConfigError(
            f"data={cfg.data.name} holds images but the model is the MLP with a linear output (the 2-D toy "
            "default); choose an image model (model=dcgan, model=resnet) or, for an MLP on flattened images, "
            "model=mlp model.g_output=tanh"
        )


def _check_ctgan(cfg: Config) -> None:
    m = cfg.model
    _in_unit(m.d_dropout, "model.d_dropout")
    if m.gumbel_tau <= 0:
        raise ConfigError(f"model.gumbel_tau={m.gumbel_tau} must be positive")
    if m.cond_loss_weight < 0:
        raise ConfigError(f"model.cond_loss_weight={m.cond_loss_weight} must be >= 0")
    if m.conditioning != "none":
        raise ConfigError("model=ctgan conditions on table columns itself; set model.conditioning=none")


def _check_cyclegan(cfg: Config) -> None:
    m = cfg.model
    _choice(m.norm, "model.norm", ("instance", "batch"))
    for key in ("ngf", "ndf", "n_layers"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be >= 1")
    for key in ("n_blocks", "n_downsampling", "pool_size", "cycle_weight", "identity_weight"):
        if getattr(m, key) < 0:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be >= 0")
    if m.conditioning != "none":
        raise ConfigError("model=cyclegan translates images and takes no class labels; set model.conditioning=none")


def _check_stylegan2(cfg: Config) -> None:
    m = cfg.model
    _choice(m.g_architecture, "model.g_architecture", ("orig", "skip", "resnet"))
    _choice(m.d_architecture, "model.d_architecture", ("orig", "skip", "resnet"))
    _choice(m.conditioning, "model.conditioning", ("none", "projection"))
    for key in ("w_dim", "z_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group_size"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be >= 1")
    for key in ("r1_every", "pl_every", "pl_batch_shrink", "ada_interval"):
        if getattr(m, key) < 1:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be >= 1")
    for key in ("r1_gamma", "pl_weight", "pl_decay", "ema_kimg", "ema_rampup", "augment_p", "ada_target"):
        if getattr(m, key) < 0:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be >= 0")
    for key in ("style_mixing_prob", "augment_p", "ada_target"):
        if getattr(m, key) > 1:
            raise ConfigError(f"model.{key}={getattr(m, key)} must be in [0, 1]")
    if m.ada_kimg <= 0:
        raise ConfigError(f"model.ada_kimg={m.ada_kimg} must be positive")
    if m.conv_clamp is not None and m.conv_clamp <= 0:
        raise ConfigError(f"model.conv_clamp={m.conv_clamp} must be positive or null (no clamp)")
    if not 0 < m.w_avg_beta < 1:
        raise ConfigError(f"model.w_avg_beta={m.w_avg_beta} must be in (0, 1)")
    if m.pack > 1:
        raise ConfigError("model=stylegan2 has minibatch standard deviation instead of packing; set model.pack=1")
    from gan_jax.ada import PRESETS

    _choice(m.augpipe, "model.augpipe", tuple(PRESETS))


def _conditioning(cfg: ModelConfig, source: Any) -> dict[str, Any]:
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


def _square_images(cfg: ModelConfig, source: Any) -> tuple[int, int]:
    if source.kind != "images":
        raise ConfigError(
            f"model.name={cfg.name!r} needs image data, but data.name={source.name!r} is not images; use model=mlp"
        )
    height, width, channels = source.example_shape
    if height != width:
        raise ConfigError(f"model.name={cfg.name!r} needs square images, got {height}x{width}")
    return height, channels


def _dtype(name: str) -> Any:
    import jax.numpy as jnp

    return {"float32": None, "bfloat16": jnp.bfloat16}[name]


@MODELS.register("mlp", config=MLPConfig, yaml=True, validate=_check_mlp)
def build_mlp(cfg: MLPConfig, source: Any) -> tuple[Any, Any]:
    from gan_jax.models.mlp import MLPCritic, MLPGenerator

    cond = _conditioning(cfg, source)
    generator = MLPGenerator(
        out_shape=source.example_shape,
        widths=tuple(cfg.g_widths),
        activation=cfg.g_activation,
        dropout=cfg.g_dropout,
        output_activation=cfg.g_output,
        **cond,
    )
    critic = MLPCritic(widths=tuple(cfg.d_widths), activation=cfg.d_activation, spectral_norm=cfg.spectral_norm, **cond)
    return generator, critic


@MODELS.register("dcgan", config=DCGANConfig, yaml=True, validate=_check_image_model)
def build_dcgan(cfg: DCGANConfig, source: Any) -> tuple[Any, Any]:
    from gan_jax.models import dcgan

    resolution, channels = _square_images(cfg, source)
    kw = {
        "resolution": resolution,
        "weight_init": cfg.init,
        "width_scale": cfg.width_scale,
        "dtype": _dtype(cfg.compute_dtype),
        **_conditioning(cfg, source),
    }
    generator = dcgan.DCGANGenerator(**kw, channels=channels, z_dim=cfg.z_dim, dropout=cfg.g_dropout)
    # A packed critic (PacGAN) sees pack images stacked along channels: m * C input channels.
    critic = dcgan.DCGANCritic(
        **kw, spectral_norm=cfg.spectral_norm, channels=channels * cfg.pack, activation=cfg.d_activation
    )
    return generator, critic


@MODELS.register("radford", config=RadfordConfig, yaml=True)
def build_radford(cfg: RadfordConfig, source: Any) -> tuple[Any, Any]:
    from gan_jax.models import dcgan

    resolution, channels = _square_images(cfg, source)
    if resolution != 64:
        raise ConfigError(f"model=radford is the 64x64 DCGAN; set data.resolution=64 (got {resolution})")
    if cfg.conditioning != "none":
        raise ConfigError("model=radford is unconditional; use model=dcgan or model=resnet for conditioning")
    critic = dcgan.RadfordCritic(channels=channels * cfg.pack, spectral_norm=cfg.spectral_norm)
    return dcgan.RadfordGenerator(channels=channels, z_dim=cfg.z_dim), critic


@MODELS.register("resnet", config=ResNetConfig, yaml=True, validate=_check_image_model)
def build_resnet(cfg: ResNetConfig, source: Any) -> tuple[Any, Any]:
    from gan_jax.models import resnet

    resolution, channels = _square_images(cfg, source)
    cond = _conditioning(cfg, source)
    kw = {
        "resolution": resolution,
        "attention_resolution": cfg.attention_resolution,
        "dtype": _dtype(cfg.compute_dtype),
    }
    g_cond = {"num_classes": cond["num_classes"]} if cond else {}
    generator = resnet.ResNetGenerator(
        **kw, **g_cond, channels=channels, z_dim=cfg.z_dim, width=cfg.g_channels, dropout=cfg.g_dropout
    )
    critic = resnet.ResNetCritic(
        **kw, **cond, spectral_norm=cfg.spectral_norm, channels=channels * cfg.pack, width=cfg.d_channels
    )
    return generator, critic


@MODELS.register("ctgan", config=CTGANConfig, yaml=True, validate=_check_ctgan, family="ctgan", packs_itself=True)
def build_ctgan(cfg: CTGANConfig, source: Any) -> tuple[Any, Any]:
    """CTGAN's generator (residual blocks, output heads) and packed critic (it packs `model.pack` rows itself)."""
    from gan_jax.models.tabular import TableCritic, TableGenerator

    if source.kind != "table":
        raise ConfigError("model=ctgan trains on tables: use data=csv data.path=FILE.csv (or experiment=tabular)")
    output_info = source.info["transformer"].output_info
    generator = TableGenerator(output_info, tuple(cfg.g_widths), cfg.gumbel_tau, cfg.cond_loss_weight)
    return generator, TableCritic(tuple(cfg.d_widths), cfg.pack, cfg.d_dropout)


@MODELS.register("cyclegan", config=CycleGANConfig, yaml=True, validate=_check_cyclegan, family="cyclegan")
def build_cyclegan(cfg: CycleGANConfig, source: Any) -> tuple[Any, Any]:
    """One ResNet generator and one PatchGAN critic architecture; the family holds two parameter sets of each."""
    from gan_jax.models import cyclegan

    if source.kind != "unpaired":
        raise ConfigError(
            f"model=cyclegan translates between two image domains: use data=unpaired data.a=<dataset> "
            f"data.b=<dataset> (got data={source.name})"
        )
    size, channels = source.example_shape[0], source.example_shape[-1]
    if size % 2**cfg.n_downsampling or cyclegan.patch_logits_size(size, cfg.n_layers) < 1:
        raise ConfigError(
            f"data.resolution={size} does not fit model.n_downsampling={cfg.n_downsampling} (sides divisible by "
            f"{2**cfg.n_downsampling}) and model.n_layers={cfg.n_layers} (at least one critic patch); lower them"
        )
    generator = cyclegan.ResnetGenerator(channels, cfg.ngf, cfg.n_blocks, cfg.n_downsampling, cfg.norm)
    return generator, cyclegan.PatchDiscriminator(cfg.ndf, cfg.n_layers, cfg.norm)


@MODELS.register("stylegan2", config=StyleGAN2Config, yaml=True, validate=_check_stylegan2, family="stylegan2")
def build_stylegan2(cfg: StyleGAN2Config, source: Any) -> tuple[Any, Any]:
    """StyleGAN2's generator (mapping + synthesis) and critic for the data's resolution and channels."""
    from gan_jax.models import stylegan2

    resolution, channels = _square_images(cfg, source)
    if resolution < 8 or resolution & (resolution - 1):
        raise ConfigError(
            f"model=stylegan2 needs a power-of-two resolution >= 8, got {resolution}; set data.resolution "
            "(e.g. 32 for MNIST / Fashion-MNIST's 28x28)"
        )
    c_dim = _conditioning(cfg, source).get("num_classes", 0)
    import jax
    import jax.numpy as jnp

    accelerated = jax.default_backend() != "cpu"  # bf16 only where it pays: XLA:CPU runs it no faster
    reduced = {"num_fp16_res": cfg.num_bf16_res if accelerated else 0, "compute_dtype": jnp.bfloat16}
    common = {"channel_base": cfg.channel_base, "channel_max": cfg.channel_max, "conv_clamp": cfg.conv_clamp}
    mapping = {
        "num_layers": cfg.mapping_layers,
        "lr_multiplier": cfg.mapping_lr_multiplier,
        "w_avg_beta": cfg.w_avg_beta,
    }
    generator = stylegan2.Generator(
        z_dim=cfg.z_dim,
        c_dim=c_dim,
        w_dim=cfg.w_dim,
        img_resolution=resolution,
        img_channels=channels,
        mapping_kwargs=tuple(mapping.items()),  # pairs, not a dict: the family is hashed (jit, caches)
        synthesis_kwargs=tuple({**common, **reduced, "architecture": cfg.g_architecture}.items()),
    )
    critic = stylegan2.Discriminator(
        c_dim=c_dim,
        img_resolution=resolution,
        img_channels=channels,
        architecture=cfg.d_architecture,
        mbstd_group_size=cfg.mbstd_group_size,
        mbstd_num_channels=cfg.mbstd_num_channels,
        **common,
        **reduced,
    )
    return generator, critic

"""The built-in families by name, with the checks each makes of a config (imported lazily: validating a config
does not build networks). A plug-in family registers the same way: `FAMILIES.register("mine", build, validate=...)`.
"""

from __future__ import annotations

from typing import Any

from gan_jax.config import Config
from gan_jax.errors import ConfigError
from gan_jax.registry import FAMILIES


def _kind(cfg: Config) -> str:
    from gan_jax.data.catalog import dataset_kind

    return dataset_kind(cfg.data.name)


def _check_gan(cfg: Config) -> None:
    """Ranges of the losses' label tricks, the regularizers and augmentations, and what they apply to."""
    from gan_jax.augment import POLICIES
    from gan_jax.losses import LOSSES, is_logistic

    loss, train, kind = cfg.loss, cfg.train, _kind(cfg)
    if kind == "unpaired":
        raise ConfigError("data=unpaired (two image domains) trains with model=cyclegan; add model=cyclegan")
    if kind == "table" and cfg.model.name != "ctgan":
        raise ConfigError("tables (data=csv) train with model=ctgan (or experiment=tabular_adult); add model=ctgan")
    for key in ("label_smoothing", "label_flip_prob"):
        if not 0.0 <= getattr(loss, key) < 0.5:
            raise ConfigError(f"loss.{key}={getattr(loss, key)} must be in [0, 0.5)")
    if (loss.label_smoothing or loss.label_flip_prob) and not is_logistic(loss.name):
        logistic = [n for n in LOSSES.names() if is_logistic(n)]
        raise ConfigError(
            f"loss.label_smoothing / loss.label_flip_prob apply to {', '.join(logistic)}, "
            f"not loss.name={loss.name!r}; set them to 0"
        )
    for key in ("aux_real_weight", "aux_fake_weight", "aux_g_weight", "r1_gamma"):
        if getattr(loss, key) < 0:
            raise ConfigError(f"loss.{key}={getattr(loss, key)} must be >= 0")
    if loss.r1_every <= 0:
        raise ConfigError(f"loss.r1_every={loss.r1_every} must be positive")
    unknown = [op for op in train.augment if op not in POLICIES]
    if unknown:
        raise ConfigError(f"train.augment: unknown op(s) {unknown}; choose from {', '.join(POLICIES)}")
    if train.augment and kind != "images":
        raise ConfigError(f"train.augment (DiffAugment) applies to images, not data={cfg.data.name}; remove it")
    if train.instance_noise < 0 or train.instance_noise_steps < 0:
        raise ConfigError("train.instance_noise and train.instance_noise_steps must be >= 0")
    _check_conditioning(cfg, kind)


def _check_conditioning(cfg: Config, kind: str) -> None:
    if cfg.model.conditioning == "none":
        return
    if kind != "images":
        raise ConfigError(
            f"model.conditioning={cfg.model.conditioning} needs labelled images (digits, mnist, fashion_mnist, "
            f"cifar10, folder, npz with y), not data={cfg.data.name}; set model.conditioning=none"
        )
    if cfg.model.pack > 1:
        raise ConfigError("model.pack > 1 (PacGAN) is unconditional; set model.pack=1 or model.conditioning=none")


def _check_ctgan(cfg: Config) -> None:
    if _kind(cfg) != "table":
        raise ConfigError("model=ctgan trains on tables (data=csv): use data=csv data.path=FILE.csv")
    _check_gan(cfg)


def _check_cyclegan(cfg: Config) -> None:
    if _kind(cfg) != "unpaired":
        raise ConfigError(
            f"family=cyclegan translates between two image domains: use data=unpaired data.a=<dataset> "
            f"data.b=<dataset> (got data={cfg.data.name})"
        )
    from gan_jax.data.unpaired import check_config

    check_config(cfg.data)
    if cfg.train.n_critic != 1:
        raise ConfigError(
            f"family=cyclegan makes one critic update per step; set train.n_critic=1, not {cfg.train.n_critic}"
        )
    if cfg.train.augment or cfg.train.instance_noise or cfg.train.ema_decay or cfg.model.pack > 1:
        raise ConfigError(
            "family=cyclegan does not apply train.augment, train.instance_noise, train.ema_decay or model.pack "
            "(terms of the gan family); remove them"
        )
    if cfg.loss.name == "wgan_gp" or cfg.loss.r1_gamma:
        raise ConfigError("family=cyclegan has no gradient penalty or R1 term; use loss=lsgan (the reference's) or ns")


def _check_stylegan2(cfg: Config) -> None:
    kind = _kind(cfg)
    if kind != "images":
        raise ConfigError(f"family=stylegan2 generates images; data={cfg.data.name} holds {kind} data")
    if cfg.loss.name != "ns":
        raise ConfigError(
            f"family=stylegan2 trains with the reference's non-saturating logistic loss; set loss=ns, not "
            f"loss={cfg.loss.name}"
        )
    if cfg.loss.r1_gamma or cfg.loss.label_smoothing or cfg.loss.label_flip_prob:
        raise ConfigError(
            "family=stylegan2 takes R1 from model.r1_gamma / model.r1_every (lazy, as the reference); remove "
            "loss.r1_gamma, loss.label_smoothing and loss.label_flip_prob"
        )
    if cfg.train.n_critic != 1:
        raise ConfigError(
            f"family=stylegan2 makes one critic update per step; set train.n_critic=1, not {cfg.train.n_critic}"
        )
    if cfg.train.augment or cfg.train.instance_noise or cfg.train.ema_decay:
        raise ConfigError(
            "family=stylegan2 augments with ADA (model.augpipe, model.ada_target) and keeps its EMA by half-life "
            "(model.ema_kimg); remove train.augment, train.instance_noise and train.ema_decay"
        )


def _build_gan(cfg: Config, source: Any) -> Any:
    from gan_jax.families import gan

    return gan.build(cfg, source)


def _build_ctgan(cfg: Config, source: Any) -> Any:
    from gan_jax.families import ctgan

    return ctgan.build(cfg, source)


def _build_cyclegan(cfg: Config, source: Any) -> Any:
    from gan_jax.families import cyclegan

    return cyclegan.build(cfg, source)


def _build_stylegan2(cfg: Config, source: Any) -> Any:
    from gan_jax.families import stylegan2

    return stylegan2.build(cfg, source)


FAMILIES.register("gan", _build_gan, validate=_check_gan)
FAMILIES.register("ctgan", _build_ctgan, validate=_check_ctgan)
FAMILIES.register("cyclegan", _build_cyclegan, validate=_check_cyclegan)
FAMILIES.register("stylegan2", _build_stylegan2, validate=_check_stylegan2)


def build_family(cfg: Config, source: Any) -> Any:
    """The family the config names (or its model's), built for this data source."""
    from gan_jax.config import resolved_family

    return FAMILIES.get(resolved_family(cfg))(cfg, source)

"""The built-in datasets by name (`data.name`), each with its kind: toy (2-D mixtures sampled on device),
images (NHWC uint8 on device), unpaired (two image domains, for translation) or table (a CSV in model space).
A builder maps the data config to a DataSource; a plug-in registers its own the same way
(`@DATASETS.register("mine", kind="images")`)."""

from __future__ import annotations

from typing import Any

from gan_jax.config import DataConfig
from gan_jax.errors import ConfigError
from gan_jax.registry import DATASETS


def _toy(name: str) -> Any:
    def build(cfg: DataConfig) -> Any:
        from gan_jax.data.source import toy_source

        return toy_source(name, cfg.sigma)

    build.__qualname__ = f"toy_{name}"
    return build


for _mixture in ("gaussian", "disk", "ring", "grid"):
    DATASETS.register(_mixture, _toy(_mixture), kind="toy")


def _images(load: Any) -> Any:
    def build(cfg: DataConfig) -> Any:
        from gan_jax.data.source import image_source

        return image_source(load(cfg), hflip=cfg.hflip)

    build.__qualname__ = f"images_{load.__name__}"
    return build


def _digits(cfg: DataConfig) -> Any:
    from gan_jax.data import images

    return images.load_digits(cfg.resolution)


def _idx(name: str) -> Any:
    def idx(cfg: DataConfig) -> Any:
        from gan_jax.data import images

        data = images.load_idx(images.IDX_DATASETS[name], cfg.root, cfg.split, cfg.download, cfg.verify_checksums)
        return images.resize(data, cfg.resolution) if cfg.resolution != 28 else data

    idx.__name__ = name
    return idx


def _cifar10(cfg: DataConfig) -> Any:
    from gan_jax.data import images

    data = images.load_cifar10(cfg.root, cfg.split, cfg.download, cfg.verify_checksums)
    return images.resize(data, cfg.resolution) if cfg.resolution != images.CIFAR10_SIDE else data


def _stacked_mnist(cfg: DataConfig) -> Any:
    from gan_jax.data import images
    from gan_jax.data.stacked import load_stacked_mnist

    data = load_stacked_mnist(cfg.root, cfg.size, seed=0, split=cfg.split)
    return images.resize(data, cfg.resolution) if cfg.resolution != 28 else data


def _npz(cfg: DataConfig) -> Any:
    from gan_jax.data import images

    if not cfg.path:
        raise ConfigError("data=npz needs data.path=FILE.npz (x: NHWC images, optional y: labels)")
    data = images.load_npz(cfg.path, tuple(cfg.pixel_range))
    if cfg.resolution and data.x.shape[1:3] != (cfg.resolution, cfg.resolution):
        data = images.resize(data, cfg.resolution)
    return data


def _folder(cfg: DataConfig) -> Any:
    from gan_jax.data import images

    if not cfg.path:
        raise ConfigError("data=folder needs data.path=DIR (a folder of images, one subfolder per class)")
    return images.load_image_folder(cfg.path, cfg.resolution)


for _name, _load in (
    ("digits", _digits),
    ("mnist", _idx("mnist")),
    ("fashion_mnist", _idx("fashion_mnist")),
    ("cifar10", _cifar10),
    ("stacked_mnist", _stacked_mnist),
    ("npz", _npz),
    ("folder", _folder),
):
    DATASETS.register(_name, _images(_load), kind="images")


@DATASETS.register("unpaired", kind="unpaired")
def _unpaired(cfg: DataConfig) -> Any:
    """Two image domains (data.a, data.b) for unpaired translation (CycleGAN)."""
    from gan_jax.data.unpaired import unpaired_source

    return unpaired_source(cfg)


@DATASETS.register("csv", kind="table")
def _csv(cfg: DataConfig, transformer: Any = None) -> Any:
    try:
        from gan_jax.data.table_source import table_source
    except ModuleNotFoundError as err:  # pandas / sdmetrics come with the [tabular] extra
        raise ConfigError(
            f"data=csv needs the tabular extra ({err.name} is not installed): pip install 'gan_jax[tabular]'"
        ) from err

    if not cfg.path:
        raise ConfigError("data=csv needs data.path=FILE.csv (a table with a header row)")
    return table_source(cfg, transformer)


def dataset_kind(name: str) -> str:
    """toy | images | unpaired | table (a plug-in dataset declares its kind when it registers)."""
    return (DATASETS.entry(name).info or {}).get("kind", "images")

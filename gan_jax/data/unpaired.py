"""Two image domains for unpaired image-to-image translation (CycleGAN): `data=unpaired data.a=X data.b=Y`.

Each domain is any registered image dataset, loaded by its own builder (so its checks, checksums and error
messages are the usual ones), brought to one resolution and channel count, and split into train and test by a
permutation seeded with `data.split_seed` alone: the held-out images are the same whatever the run seed, and
never trained on. Only the train images go to device; labels stay on the host, for evaluation.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import DataConfig
from gan_jax.data import images
from gan_jax.data.images import ImageData
from gan_jax.data.source import Batch, DataSource, _sample_images
from gan_jax.errors import ConfigError, DataError

Array = jax.Array
DOMAINS = ("a", "b")
CHANNELS = (0, 1, 3)
MIN_RESOLUTION = 8
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights (PIL's convert("L"))


@dataclass(frozen=True, eq=False)
class Domain:
    """One domain's images: `train` (sampled in training) and `test` (held out), disjoint. `train_index` and
    `test_index` are the positions in the dataset as loaded, so a split can be traced back to its source."""

    name: str  # the dataset name (data.a / data.b)
    train: ImageData
    test: ImageData
    train_index: np.ndarray  # int64, ascending
    test_index: np.ndarray  # int64, ascending


def image_datasets() -> tuple[str, ...]:
    """The registered datasets a domain can be: those of kind "images" (built-ins and plug-ins)."""
    from gan_jax.data.catalog import dataset_kind
    from gan_jax.registry import DATASETS

    return tuple(n for n in DATASETS.names() if dataset_kind(n) == "images")


def check_config(cfg: DataConfig) -> None:
    """The data=unpaired keys that can be checked before loading anything, each failing with its fix."""
    missing = [f"data.{d}" for d in DOMAINS if not getattr(cfg, d)]
    if missing:
        raise ConfigError(
            f"data=unpaired needs data.a=<dataset> and data.b=<dataset> ({' and '.join(missing)} not set; "
            f"image datasets: {', '.join(image_datasets())})"
        )
    if cfg.channels not in CHANNELS or isinstance(cfg.channels, bool):
        raise ConfigError(
            f"data.channels={cfg.channels!r} must be 1 (grey), 3 (RGB) or 0 (the larger of the two domains' counts)"
        )
    if not 0.0 < cfg.test_fraction < 1.0:
        raise ConfigError(
            f"data.test_fraction={cfg.test_fraction} must be in (0, 1): the share of each domain held out for "
            "testing, e.g. data.test_fraction=0.2"
        )
    r = cfg.resolution
    if isinstance(r, bool) or not isinstance(r, int | np.integer) or r < MIN_RESOLUTION:
        raise ConfigError(
            f"data.resolution={r!r} must be an integer >= {MIN_RESOLUTION} for data=unpaired; set e.g. "
            "data.resolution=32"
        )


def _domain_config(cfg: DataConfig, which: str) -> DataConfig:
    """The single-dataset config of one domain: its name, path and split, no flips (the sampler flips)."""
    name, path, split = (getattr(cfg, f"{which}{suffix}") for suffix in ("", "_path", "_split"))
    return dataclasses.replace(cfg, name=name, path=path, split=split, hflip=False)


def _for_domain(message: str, which: str, name: str) -> str:
    """A builder's config error in the keys the user sets for this domain (data.path -> data.a_path, ...)."""
    message = re.sub(r"\bdata\.(path|split)\b", rf"data.{which}_\1", message)
    return re.sub(rf"\bdata={re.escape(name)}\b", f"data.{which}={name}", message)


def _load_images(cfg: DataConfig, which: str) -> ImageData:
    """The domain's dataset through its registered builder; the host ImageData it keeps in info["images"]."""
    from gan_jax.data.catalog import dataset_kind
    from gan_jax.registry import DATASETS

    name = getattr(cfg, which)
    if name not in DATASETS:
        raise ConfigError(DATASETS.unknown(name).replace(f"{DATASETS.key}=", f"data.{which}=", 1))
    entry, kind = DATASETS.entry(name), dataset_kind(name)  # a plug-in that declares no kind counts as images
    if kind != "images":
        raise ConfigError(
            f"data.{which}={name} is not an image dataset (its kind is {kind}), but each domain of data=unpaired "
            f"is an image set; choose data.{which} from: {', '.join(image_datasets())}"
        )
    try:
        source = entry.obj(_domain_config(cfg, which))
    except ConfigError as err:
        raise ConfigError(_for_domain(str(err), which, name)) from err
    data = getattr(source, "info", {}).get("images")
    if not isinstance(data, ImageData):
        raise DataError(
            f"data.{which}={name}: its builder returned no host images (DataSource.info['images']); an image "
            "dataset plug-in should return image_source(ImageData(...))"
        )
    return data


def convert_channels(data: ImageData, channels: int) -> ImageData:
    """Grey -> RGB repeats the channel; RGB -> grey is ITU-R 601 luma, rounded (PIL convert("L")'s weights)."""
    have = data.x.shape[-1]
    if have == channels:
        return data
    if channels == 3:
        x = np.repeat(data.x, 3, axis=-1)
    else:
        luma = data.x.astype(np.float64) @ LUMA
        x = np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    return dataclasses.replace(data, x=x)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) positions, ascending and disjoint: the first round(n * test_fraction) of a seeded
    permutation are held out. Depends on n, the fraction and the seed only."""
    n_test = round(n * test_fraction)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _subset(data: ImageData, index: np.ndarray, part: str) -> ImageData:
    y = None if data.y is None else data.y[index]
    return ImageData(x=data.x[index], y=y, name=f"{data.name}:{part}", classes=data.classes)


def _split(data: ImageData, cfg: DataConfig, which: str, name: str) -> Domain:
    """Hold out the domain's test images; refuse a set too small to leave both parts non-empty."""
    n = data.x.shape[0]
    if n < 2:
        raise DataError(
            f"data.{which}={name} ({data.name}) has {n} image(s), but data=unpaired splits each domain into "
            "train and test images: give that domain a dataset with at least 2 images"
        )
    train, test = split_indices(n, cfg.test_fraction, cfg.split_seed)
    if not len(train) or not len(test):
        part = "test" if not len(test) else "train"
        raise ConfigError(
            f"data.test_fraction={cfg.test_fraction} leaves no {part} image of data.{which}={name} ({n} images); "
            f"choose a fraction between {1 / n:.3g} and {1 - 1 / n:.3g}"
        )
    return Domain(name, _subset(data, train, "train"), _subset(data, test, "test"), train, test)


def load_domain(cfg: DataConfig, which: str) -> Domain:
    """Domain `which` ("a" or "b") at data.resolution, split into train/test. Its channels are its own unless
    data.channels is set (unpaired_source passes the count both domains share)."""
    if which not in DOMAINS:
        raise ValueError(f"which={which!r} must be 'a' or 'b'")
    check_config(cfg)
    name = getattr(cfg, which)
    data = images.resize(_load_images(cfg, which), cfg.resolution)
    if cfg.channels:
        data = convert_channels(data, cfg.channels)
    return _split(data, cfg, which, name)


def _sample_pair(arrays: dict[str, Array], key: Array, n: int, hflip: bool = False) -> Batch:
    """n images of each domain, drawn with replacement and independently (fold_in(key, 0) for a, 1 for b).
    Clipped: under jit XLA divides by 127.5 as a multiply by its rounded reciprocal, so 255 maps to 1 + 1 ulp."""
    batch = {}
    for i, d in enumerate(DOMAINS):
        x = _sample_images({"x": arrays[d]}, jax.random.fold_in(key, i), n, hflip)["x"]
        batch[d] = jnp.clip(x, -1.0, 1.0)
    return batch


def _label(cfg: DataConfig, which: str) -> str:
    """How the source's name shows a domain: the file/folder's stem where it has one, else the dataset name."""
    path = getattr(cfg, f"{which}_path")
    return Path(path).stem if path else getattr(cfg, which)


def unpaired_source(cfg: DataConfig) -> DataSource:
    """The two domains as one DataSource: uint8 train images of each on device, sampled as {"a", "b"} floats
    in [-1, 1]; both at data.resolution with data.channels (0: the larger count of the two)."""
    check_config(cfg)
    first = {d: load_domain(dataclasses.replace(cfg, channels=0), d) for d in DOMAINS}
    channels = cfg.channels or max(dom.train.x.shape[-1] for dom in first.values())
    domains = {d: _converted(dom, channels) for d, dom in first.items()}
    arrays = {d: jnp.asarray(dom.train.x) for d, dom in domains.items()}
    sample = partial(_sample_pair, hflip=True) if cfg.hflip else _sample_pair
    shape = (cfg.resolution, cfg.resolution, channels)
    name = f"{_label(cfg, 'a')}2{_label(cfg, 'b')}"
    return DataSource(name, "unpaired", arrays, sample, shape, None, {"domains": domains})


def _converted(domain: Domain, channels: int) -> Domain:
    train, test = (convert_channels(part, channels) for part in (domain.train, domain.test))
    return dataclasses.replace(domain, train=train, test=test)

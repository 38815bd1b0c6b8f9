"""One interface for every dataset: device arrays plus a pure, jittable way to draw a batch from them.

The arrays are an explicit argument of the train step (not constants baked into the compiled program), so a
10k-image dataset costs one transfer, no recompilation, and nothing is hidden from the state/arg pytrees.
Batches are drawn with replacement by index from `fold_in(key, step)`: stateless, so resuming needs no sampler
state beyond the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import DataConfig
from gan_jax.data import images, toy
from gan_jax.data.stacked import load_stacked_mnist
from gan_jax.errors import ConfigError

Array = jax.Array
Batch = dict[str, Array]


@dataclass(frozen=True)
class DataSource:
    name: str
    kind: str  # "toy" | "images"
    arrays: dict[str, Array]  # device-resident; passed to the jitted step
    sample: Callable[[dict[str, Array], Array, int], Batch]  # (arrays, key, batch_size) -> {"x": ..., ["y": ...]}
    example_shape: tuple[int, ...]
    num_classes: int | None = None
    info: dict = field(default_factory=dict)  # host-side facts for diagnostics (mixture means, sigma, ...)


def _sample_toy(name: str, arrays: dict[str, Array], key: Array, batch_size: int) -> Batch:
    return {"x": toy.sample_mixture(key, name, arrays["means"], arrays["sigma"], batch_size)}


def _sample_images(arrays: dict[str, Array], key: Array, batch_size: int) -> Batch:
    idx = jax.random.randint(key, (batch_size,), 0, arrays["x"].shape[0])
    batch = {"x": arrays["x"][idx].astype(jnp.float32) / 127.5 - 1.0}
    if "y" in arrays:
        batch["y"] = arrays["y"][idx]
    return batch


def toy_source(name: str, sigma: float) -> DataSource:
    means = toy.mixture_means(name)
    arrays = {"means": jnp.asarray(means), "sigma": jnp.asarray(sigma, jnp.float32)}
    info = {"means": means, "sigma": float(sigma)}
    return DataSource(name, "toy", arrays, partial(_sample_toy, name), (2,), None, info)


def image_source(data: images.ImageData) -> DataSource:
    """Images stay uint8 on device (4x less memory); the step converts each batch to [-1, 1] floats."""
    images.validate_images(data.x, data.name)
    arrays = {"x": jnp.asarray(data.x)}
    num_classes = None
    if data.y is not None:
        arrays["y"] = jnp.asarray(data.y, jnp.int32)
        num_classes = int(np.max(data.y)) + 1
    info = {"images": data}  # the host copy: reference set for evaluation metrics
    return DataSource(data.name, "images", arrays, _sample_images, tuple(data.x.shape[1:]), num_classes, info)


def build_source(cfg: DataConfig) -> DataSource:
    """Maps `data.name` to a DataSource; the one place dataset names live."""
    if cfg.name in toy.MIXTURES:
        return toy_source(cfg.name, cfg.sigma)
    if cfg.name == "digits":
        return image_source(images.load_digits(cfg.resolution))
    if cfg.name == "mnist":
        data = images.load_mnist(cfg.root, split=cfg.split, download=cfg.download)
        if cfg.resolution != 28:
            data = images.resize(data, cfg.resolution)
        return image_source(data)
    if cfg.name == "stacked_mnist":
        data = load_stacked_mnist(cfg.root, cfg.size, seed=0, split=cfg.split)
        return image_source(images.resize(data, cfg.resolution) if cfg.resolution != 28 else data)
    if cfg.name == "npz":
        if not cfg.path:
            raise ConfigError("data=npz needs data.path=FILE.npz (x: NHWC images, optional y: labels)")
        data = images.load_npz(cfg.path, tuple(cfg.pixel_range))
        if cfg.resolution and data.x.shape[1:3] != (cfg.resolution, cfg.resolution):
            data = images.resize(data, cfg.resolution)
        return image_source(data)
    names = ", ".join((*toy.MIXTURES, "digits", "mnist", "stacked_mnist", "npz"))
    raise ConfigError(f"data.name={cfg.name!r} is unknown; choose one of: {names}")

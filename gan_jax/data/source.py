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
from gan_jax.data import images, tabular, toy
from gan_jax.data.stacked import load_stacked_mnist
from gan_jax.data.table_files import resolve_table_path
from gan_jax.errors import ConfigError

Array = jax.Array
Batch = dict[str, Array]


@dataclass(frozen=True)
class DataSource:
    name: str
    kind: str  # "toy" | "images" | "table"
    arrays: dict[str, Array]  # device-resident; passed to the jitted step
    sample: Callable[[dict[str, Array], Array, int], Batch]  # (arrays, key, batch_size) -> {"x": ..., ["y": ...]}
    example_shape: tuple[int, ...]
    num_classes: int | None = None
    info: dict = field(default_factory=dict)  # host-side facts for diagnostics (mixture means, sigma, ...)


def _sample_toy(name: str, arrays: dict[str, Array], key: Array, batch_size: int) -> Batch:
    return {"x": toy.sample_mixture(key, name, arrays["means"], arrays["sigma"], batch_size)}


def _sample_images(arrays: dict[str, Array], key: Array, batch_size: int, hflip: bool = False) -> Batch:
    """Draw by index; with `hflip`, mirror each example left-right with probability 1/2. The flip coins come from
    `fold_in(key, 1)`, so the indices (and with hflip off, the whole batch) are those drawn without flips."""
    idx = jax.random.randint(key, (batch_size,), 0, arrays["x"].shape[0])
    x = arrays["x"][idx]
    if hflip:
        flip = jax.random.bernoulli(jax.random.fold_in(key, 1), 0.5, (batch_size,))
        x = jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)
    batch = {"x": x.astype(jnp.float32) / 127.5 - 1.0}
    if "y" in arrays:
        batch["y"] = arrays["y"][idx]
    return batch


def toy_source(name: str, sigma: float) -> DataSource:
    means = toy.mixture_means(name)
    arrays = {"means": jnp.asarray(means), "sigma": jnp.asarray(sigma, jnp.float32)}
    info = {"means": means, "sigma": float(sigma)}
    return DataSource(name, "toy", arrays, partial(_sample_toy, name), (2,), None, info)


def image_source(data: images.ImageData, hflip: bool = False) -> DataSource:
    """Images stay uint8 on device (4x less memory); the step converts each batch to [-1, 1] floats.
    `hflip`: random horizontal flips inside the jitted sampler (augmentation at no host cost)."""
    images.validate_images(data.x, data.name)
    arrays = {"x": jnp.asarray(data.x)}
    num_classes = None
    if data.y is not None:
        arrays["y"] = jnp.asarray(data.y, jnp.int32)
        num_classes = int(np.max(data.y)) + 1
    info = {"images": data}  # the host copy: reference set for evaluation metrics
    sample = partial(_sample_images, hflip=True) if hflip else _sample_images
    return DataSource(data.name, "images", arrays, sample, tuple(data.x.shape[1:]), num_classes, info)


def _sample_table(arrays: dict[str, Array], key: Array, batch_size: int) -> Batch:
    """CTGAN's training-by-sampling: a condition (column, category by log-frequency), and for each a real row
    that has it. `y` carries the condition to G and D and the chosen column for G's conditional loss."""
    drawn = tabular.sample_train_cond(arrays["cond"], key, batch_size)
    return {"x": arrays["rows"][drawn.rows], "y": {"cond": drawn.cond, "mask": drawn.mask}}


def table_source(cfg: DataConfig, transformer: tabular.TableTransformer | None = None) -> DataSource:
    """A CSV in model space: rows transformed once (mode-specific normalisation, one-hots) and kept on device
    with the condition sampler's tables. `transformer`: a saved, fitted one (a run's transformer.json), so a
    restored run maps rows exactly as it was trained, without refitting."""
    path = resolve_table_path(cfg.path or "", cfg.root)
    df = tabular.read_table(path)
    if cfg.target is not None and cfg.target not in df.columns:
        raise ConfigError(
            f"data.target={cfg.target!r} is not a column of {path}; its columns are: {', '.join(map(str, df.columns))}"
        )
    if transformer is None:
        overrides = cfg.metadata or dict(cfg.columns) or None
        if cfg.metadata and cfg.columns:
            raise ConfigError("set data.columns or data.metadata, not both (both name column kinds)")
        transformer = tabular.TableTransformer(overrides).fit(df)
    rows = transformer.transform(df)
    sampler = tabular.ConditionSampler.from_data(rows, transformer.output_info)
    test_df = tabular.read_table(resolve_table_path(cfg.test_path, cfg.root)) if cfg.test_path else None
    arrays = {"rows": jnp.asarray(rows), "cond": jax.tree_util.tree_map(jnp.asarray, sampler.arrays)}
    info = {"transformer": transformer, "table": df, "test_table": test_df, "path": str(path)}
    return DataSource(path.stem, "table", arrays, _sample_table, (rows.shape[1],), None, info)


def saved_table_source(name: str, transformer: tabular.TableTransformer) -> DataSource:
    """What sampling a trained table run needs, without its CSV: the fitted transformer (model space, the
    category counts that conditions are drawn from). No training rows: `sample` would fail, and is not used."""
    sampler = tabular.ConditionSampler.from_counts(transformer.category_counts())
    arrays = {"cond": jax.tree_util.tree_map(jnp.asarray, sampler.arrays)}
    info = {"transformer": transformer, "table": None, "test_table": None, "path": None}
    return DataSource(name, "table", arrays, _sample_table, (transformer.output_dim,), None, info)


IMAGE_SETS = ("digits", "mnist", "fashion_mnist", "cifar10", "stacked_mnist", "npz", "folder")


def build_source(cfg: DataConfig, transformer: tabular.TableTransformer | None = None) -> DataSource:
    """Maps `data.name` to a DataSource; the one place dataset names live. `transformer`: see table_source."""
    if cfg.hflip and cfg.name not in IMAGE_SETS:
        raise ConfigError(f"data.hflip=true flips images, but data={cfg.name} is not an image set; drop data.hflip")
    if cfg.name == "csv":
        return table_source(cfg, transformer)
    if cfg.name in toy.MIXTURES:
        return toy_source(cfg.name, cfg.sigma)
    return image_source(_load_images(cfg), hflip=cfg.hflip)


def _load_images(cfg: DataConfig) -> images.ImageData:
    """The image set `data.name` names, at `data.resolution`."""
    if cfg.name == "digits":
        return images.load_digits(cfg.resolution)
    if cfg.name in ("mnist", "fashion_mnist"):
        spec = images.IDX_DATASETS[cfg.name]
        data = images.load_idx(spec, cfg.root, cfg.split, cfg.download, cfg.verify_checksums)
        return images.resize(data, cfg.resolution) if cfg.resolution != 28 else data
    if cfg.name == "cifar10":
        data = images.load_cifar10(cfg.root, cfg.split, cfg.download, cfg.verify_checksums)
        return images.resize(data, cfg.resolution) if cfg.resolution != images.CIFAR10_SIDE else data
    if cfg.name == "stacked_mnist":
        data = load_stacked_mnist(cfg.root, cfg.size, seed=0, split=cfg.split)
        return images.resize(data, cfg.resolution) if cfg.resolution != 28 else data
    if cfg.name == "npz":
        if not cfg.path:
            raise ConfigError("data=npz needs data.path=FILE.npz (x: NHWC images, optional y: labels)")
        data = images.load_npz(cfg.path, tuple(cfg.pixel_range))
        if cfg.resolution and data.x.shape[1:3] != (cfg.resolution, cfg.resolution):
            data = images.resize(data, cfg.resolution)
        return data
    if cfg.name == "folder":
        if not cfg.path:
            raise ConfigError("data=folder needs data.path=DIR (a folder of images, one subfolder per class)")
        return images.load_image_folder(cfg.path, cfg.resolution)
    names = ", ".join((*toy.MIXTURES, *IMAGE_SETS, "csv"))
    raise ConfigError(f"data.name={cfg.name!r} is unknown; choose one of: {names}")

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
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import DataConfig
from gan_jax.data import images, toy
from gan_jax.errors import ConfigError

if TYPE_CHECKING:  # tables need the [tabular] extra (pandas); image and 2-D runs never import them
    from gan_jax.data.table_transformer import TableTransformer

Array = jax.Array
Batch = dict[str, Array]


@dataclass(frozen=True)
class DataSource:
    name: str
    kind: str  # "toy" | "images" | "unpaired" | "table"
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


def build_source(cfg: DataConfig, transformer: TableTransformer | None = None) -> DataSource:
    """The DataSource `data.name` names (gan_jax/data/catalog.py, or a plug-in's). `transformer`: a table
    run's saved model space (see table_source); other datasets take none."""
    from gan_jax.registry import DATASETS

    entry = DATASETS.entry(cfg.name)
    kind = (entry.info or {}).get("kind")
    if cfg.hflip and kind not in ("images", "unpaired"):
        raise ConfigError(f"data.hflip=true flips images, but data={cfg.name} is not an image set; drop data.hflip")
    if transformer is not None:
        return entry.obj(cfg, transformer)
    return entry.obj(cfg)


TRANSFORMER_FILE = "transformer.json"


def saved_transformer(run_dir: str | Path) -> TableTransformer | None:
    """A table run's fitted transformer (its model space), so a resumed or sampled run maps rows exactly as it
    was trained; None for other runs and before the first save."""
    path = Path(run_dir) / TRANSFORMER_FILE
    if not path.is_file():
        return None
    from gan_jax.data.table_transformer import TableTransformer

    return TableTransformer.load(path)


def source_for_run(
    cfg: DataConfig,
    run_dir: str | Path,
    *,
    reuse_fitted: bool,
    need_data: bool = True,
    save_fitted: bool = False,
    fitted_from: str | Path | None = None,
) -> DataSource:
    """The data of a run directory. A dataset that fits something to its data (a table's transformer) keeps it
    in the run directory: `save_fitted` writes it, `reuse_fitted` reads it back (resume, sampling), and with
    `need_data=False` a saved table run is rebuilt from it alone (sampling needs no CSV). `fitted_from`: the run
    a fine-tuning run starts from, whose fitted transformer is used while `run_dir` has none of its own."""
    transformer = saved_transformer(run_dir) if reuse_fitted else None
    if transformer is None and reuse_fitted and fitted_from is not None:
        transformer = saved_transformer(fitted_from)
    if transformer is not None and not need_data:
        from gan_jax.data.table_source import saved_table_source

        return saved_table_source(Path(cfg.path or "table").stem, transformer)
    source = build_source(cfg, transformer)
    if save_fitted and "transformer" in source.info:
        source.info["transformer"].save(Path(run_dir) / TRANSFORMER_FILE)
    return source

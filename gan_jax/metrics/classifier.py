"""A small digit (and Fashion-MNIST) classifier: class labels for mode-collapse diagnostics and features for
"classifier FID".

Inception is the wrong network for 8×8 or 28×28 grey digits and may not be installed; a CNN trained on the
digits themselves gives labels that mean something (modes covered, Stacked-MNIST's 1,000 modes, as VEEGAN and
PacGAN use a pretrained MNIST classifier) and 128-d penultimate features whose Fréchet distance behaves like FID
on this domain. Scores from it are comparable only with scores from the same weights: the cache file name and
`weights_sha256` identify them. The same net and recipe serve Fashion-MNIST (10 clothing classes): it trains on
the 60k train split only and its accuracy is measured on the 10k test split (2,000 steps: ~0.89, about a minute on
2 CPU cores at 32 px); digits and MNIST (whose test split is all the shared data holds) hold out a random 20%.

Inputs: NHWC with one channel, either uint8 0..255 (data, files) or float in [-1, 1] (generator outputs, the
project's model space); uint8 is converted with `to_model_space`, so both give the same prediction.

Architecture: three 3×3 convs (32, 64, 64; stride 2 while the map is larger than 4×4, so 28 px -> 14 -> 7 -> 4 and
8 px -> 4 -> 4 -> 4), ReLU, flatten, dense 128 (ReLU: the features), dense 10. No batch norm, so prediction is a
pure function of the params. Training: Adam 1e-3 with cosine decay, batch 128, random shifts of up to
resolution // 14 pixels (2 at 28 px, none at 8), held-out images for accuracy; deterministic given the seed on a
given backend. One jitted step per dispatch with `flax.linen.Conv`: measured on 2 shared CPU cores (an earlier,
wider variant of this net at 8 px) 27 ms/step, against 75-110 ms/step for `layers.Conv` fused with `lax.scan` and
~3 s/step for `nn.Conv` inside a scan (the slow XLA:CPU path that `gan_jax/models/layers.py` explains).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from gan_jax.cache import default_cache_dir
from gan_jax.data.images import (
    DIGITS_RESOLUTIONS,
    ImageData,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    resize,
    to_model_space,
)
from gan_jax.errors import ConfigError, DataError
from gan_jax.models.layers import cpu_compiler_options

Params = Any
NUM_CLASSES = 10
FEATURE_DIM = 128
ARCH_VERSION = 1  # bump when the architecture or training recipe changes: cached weights then retrain
DATASETS = ("digits", "mnist", "fashion_mnist")
DEFAULT_STEPS = {"digits": 300, "mnist": 1500, "fashion_mnist": 2000}
# Datasets with both splits at hand: the classifier trains on all of `train` and is scored on `test` (no random
# hold-out, so holdout_fraction is 0 in their recipe). The others split one set at random (`holdout_split`).
SPLIT_DATASETS = {"fashion_mnist": load_fashion_mnist}


class DigitClassifier(nn.Module):
    """Conv net on (N, H, W, 1) floats in [-1, 1]; returns (logits (N, 10), features (N, 128))."""

    num_classes: int = NUM_CLASSES
    widths: tuple[int, ...] = (32, 64, 64)
    feature_dim: int = FEATURE_DIM
    min_size: int = 4  # convs stride 2 while the feature map is larger than this

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        size = x.shape[1]
        for width in self.widths:
            stride = 2 if size > self.min_size else 1
            x = nn.relu(nn.Conv(width, (3, 3), strides=stride)(x))
            size = -(-size // stride)
        features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(features), features


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the weights besides the data; part of the cache key."""

    steps: int = 300
    batch_size: int = 128
    learning_rate: float = 1e-3
    holdout_fraction: float = 0.2
    arch_version: int = ARCH_VERSION


@dataclass(frozen=True, eq=False)
class TrainedClassifier:
    """Weights with where they came from; `weights_sha256` identifies them in reference-statistics specs."""

    params: Params
    dataset: str
    resolution: int
    seed: int
    accuracy: float  # on the held-out split, never trained on
    weights_sha256: str
    train_seconds: float
    path: Path | None = None

    def predict(self, images: np.ndarray) -> np.ndarray:
        return classify(self.params, images)[0]

    def features(self, images: np.ndarray) -> np.ndarray:
        return classifier_features(self.params, images)


def holdout_split(n: int, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): a seeded permutation, so accuracy is on images never trained on."""
    n_holdout = round(n * holdout_fraction)
    if not 0 <= n_holdout < n:
        raise ConfigError(f"holdout_fraction={holdout_fraction} leaves no training images out of {n}; use 0..0.5.")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_holdout:]), np.sort(perm[:n_holdout])


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    steps: int = 300,
    batch_size: int = 128,
    learning_rate: float = 1e-3,
    num_classes: int = NUM_CLASSES,
    channels: int = 1,
) -> Params:
    """Train on (N, H, W, channels) images (uint8 or [-1, 1] floats) and int labels 0..num_classes-1; returns params.

    Pure function of (data, seed, hyperparameters): initial weights, batch indices and shifts all derive from `seed`.
    The defaults (10 classes, grey) are the digit classifier; other values serve other labelled image domains
    (gan_jax/metrics/translation.py).
    """
    x = jnp.asarray(_model_input(images, channels))
    y = jnp.asarray(np.asarray(labels, np.int32))
    if y.shape != (x.shape[0],) or (y.size and (int(y.min()) < 0 or int(y.max()) >= num_classes)):
        raise DataError(f"labels must be (N,) ints in 0..{num_classes - 1} matching {x.shape[0]} images.")
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be positive, got {steps} and {batch_size}.")
    params = jax.device_put(init_params(DigitClassifier(num_classes), x.shape[1], seed, channels))
    data_key = jax.random.fold_in(jax.random.key(seed), 1)
    step, tx = _train_step(batch_size, num_classes)
    opt_state = tx.init(params)
    for i in range(steps):
        lr = np.float32(learning_rate * 0.5 * (1.0 + np.cos(np.pi * i / steps)))  # cosine decay to 0
        params, opt_state, _ = step(params, opt_state, x, y, data_key, i, lr)
    return jax.device_get(params)


@functools.cache
def _train_step(batch_size: int, num_classes: int = NUM_CLASSES) -> tuple[Callable, optax.GradientTransformation]:
    """The jitted train step and its optimizer, built once per batch size and class count: the learning rate is an
    argument, so several seeds or step counts (the tests) compile once per image shape."""
    model = DigitClassifier(num_classes)
    tx = optax.scale_by_adam()

    def step(params, opt_state, x, y, data_key, i, lr):
        k_idx, k_shift = jax.random.split(jax.random.fold_in(data_key, i))
        idx = jax.random.randint(k_idx, (batch_size,), 0, x.shape[0])
        batch = _random_shift(x[idx], k_shift, x.shape[1] // 14)

        def loss_fn(p):
            logits, _ = model.apply({"params": p}, batch)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1), compiler_options=cpu_compiler_options()), tx


def init_params(model: DigitClassifier, resolution: int, seed: int, channels: int = 1) -> Params:
    """Flax's default initialisation (LeCun-normal kernels truncated at 2σ, zero biases) drawn with numpy.

    Same distribution as `model.init`, but XLA:CPU spends 4-8 s compiling the threefry init of this small net
    (measured, jax 0.10) and numpy takes milliseconds.
    """
    shapes = jax.eval_shape(
        model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, resolution, resolution, channels), jnp.float32)
    )
    rng = np.random.default_rng(seed)

    def draw(path: tuple[Any, ...], leaf: jax.ShapeDtypeStruct) -> np.ndarray:
        if path[-1].key != "kernel":
            return np.zeros(leaf.shape, np.float32)
        std = np.sqrt(1.0 / np.prod(leaf.shape[:-1])) / 0.87962566103423978  # stddev of N(0,1) truncated at ±2
        z = rng.standard_normal(leaf.shape)
        while (bad := np.abs(z) > 2.0).any():
            z[bad] = rng.standard_normal(int(bad.sum()))
        return (z * std).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes["params"])


def _random_shift(x: jax.Array, key: jax.Array, max_shift: int) -> jax.Array:
    """Translate each image by up to max_shift pixels (zero = -1 padding), so the classifier tolerates the small
    misalignments of generated digits."""
    if max_shift == 0:
        return x
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), constant_values=-1.0)
    offsets = jax.random.randint(key, (n, 2), 0, 2 * max_shift + 1)
    crop = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1])))
    return crop(padded, offsets)


@functools.partial(jax.jit, static_argnames="num_classes")
def _apply(params: Params, x: jax.Array, num_classes: int = NUM_CLASSES) -> tuple[jax.Array, jax.Array]:
    return DigitClassifier(num_classes).apply({"params": params}, x)


def input_channels_and_classes(params: Params) -> tuple[int, int]:
    """(input channels, classes) of DigitClassifier params, read from the first conv and the last dense kernel
    (the digit classifier's 1 and 10 for params that are not a DigitClassifier's: their inputs are checked first)."""
    try:
        return int(params["Conv_0"]["kernel"].shape[2]), int(params["Dense_1"]["kernel"].shape[1])
    except (KeyError, TypeError, IndexError):
        return 1, NUM_CLASSES


def classifier_outputs(params: Params, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, classes), features (N, 128)) as float32 host arrays, `batch_size` images per call (padded to one
    compiled shape). The channel and class counts are the params' own (1 and 10 for the digit classifier)."""
    channels, num_classes = input_channels_and_classes(params)
    x = _model_input(images, channels)
    n = x.shape[0]
    logits, feats = [], []
    for start in range(0, n, batch_size):
        batch = x[start : start + batch_size]
        if n > batch_size and len(batch) < batch_size:
            batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), axis=0)])
        lg, ft = _apply(params, jnp.asarray(batch), num_classes=num_classes)
        logits.append(np.asarray(lg))
        feats.append(np.asarray(ft))
    return np.concatenate(logits)[:n], np.concatenate(feats)[:n]


def classify(params: Params, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels (N,) int32, class probabilities (N, classes) float32)."""
    logits, _ = classifier_outputs(params, images)
    return logits.argmax(axis=1).astype(np.int32), np.asarray(jax.nn.softmax(logits, axis=1))


def classifier_features(params: Params, images: np.ndarray) -> np.ndarray:
    """Penultimate (N, 128) features: the input to `fid`/`kid`/`prdc` when Inception is not available."""
    return classifier_outputs(params, images)[1]


def accuracy(params: Params, images: np.ndarray, labels: np.ndarray) -> float:
    return float((classify(params, images)[0] == np.asarray(labels)).mean())


def load_dataset(dataset: str, resolution: int, data_root: str | os.PathLike | None = None) -> ImageData:
    """The labelled images a classifier for (dataset, resolution) trains on (before any random hold-out): digits,
    the MNIST test split (the split ../shared/data holds) or the Fashion-MNIST train split, resized to `resolution`."""
    if dataset == "digits":
        return load_digits(resolution)
    if dataset == "mnist":
        return resize(load_mnist(data_root, "test"), resolution)
    if dataset in SPLIT_DATASETS:
        return resize(SPLIT_DATASETS[dataset](data_root, "train"), resolution)
    raise ConfigError(f"unknown classifier dataset {dataset!r}: use one of {', '.join(DATASETS)}.")


def training_data(
    dataset: str,
    resolution: int,
    seed: int,
    holdout_fraction: float,
    data_root: str | os.PathLike | None = None,
) -> tuple[ImageData, ImageData]:
    """(training images, held-out images) of a classifier: the train and test splits where the dataset has both
    (`SPLIT_DATASETS`), else a seeded random `holdout_fraction` of `load_dataset` held out."""
    data = load_dataset(dataset, resolution, data_root)
    if dataset in SPLIT_DATASETS:
        return data, resize(SPLIT_DATASETS[dataset](data_root, "test"), resolution)
    train_idx, holdout_idx = holdout_split(len(data.x), holdout_fraction, seed)
    train = ImageData(x=data.x[train_idx], y=data.y[train_idx], name=f"{data.name}[train part]")
    return train, ImageData(x=data.x[holdout_idx], y=data.y[holdout_idx], name=f"{data.name}[held-out part]")


def classifier_path(
    dataset: str, resolution: int, seed: int, config: TrainConfig, cache_dir: str | os.PathLike | None = None
) -> Path:
    """`<cache_dir>/classifiers/<dataset>-<res>px-seed<seed>-<hash of the training config>.msgpack`."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    recipe = json.dumps(asdict(config), sort_keys=True)
    tag = hashlib.sha256(recipe.encode()).hexdigest()[:12]
    return root / "classifiers" / f"{dataset}-{resolution}px-seed{seed}-{tag}.msgpack"


def load_or_train_classifier(
    dataset: str,
    resolution: int,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    steps: int | None = None,
    data_root: str | os.PathLike | None = None,
) -> TrainedClassifier:
    """Cached weights for (dataset, resolution, seed, recipe), else trained on the spot and cached.

    Default steps: 300 for digits (~10 s on 2 CPU cores), 1500 for MNIST (1-2 min), 2000 for Fashion-MNIST (~1 min
    at 32 px, trained on the train split, accuracy on the test split).
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown classifier dataset {dataset!r}: use one of {', '.join(DATASETS)}.")
    if dataset == "digits" and resolution not in DIGITS_RESOLUTIONS:
        raise ConfigError(f"digits resolution {resolution} is not one of {DIGITS_RESOLUTIONS}.")
    config = TrainConfig(
        steps=steps if steps is not None else DEFAULT_STEPS.get(dataset, 0),
        holdout_fraction=0.0 if dataset in SPLIT_DATASETS else TrainConfig.holdout_fraction,
    )
    path = classifier_path(dataset, resolution, seed, config, cache_dir)
    meta_path = path.with_suffix(".json")
    template = jax.eval_shape(
        lambda: DigitClassifier().init(jax.random.key(0), jnp.zeros((1, resolution, resolution, 1)))["params"]
    )
    if path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            blob = path.read_bytes()
            if hashlib.sha256(blob).hexdigest() == meta["weights_sha256"]:
                params = serialization.from_bytes(template, blob)
                return TrainedClassifier(
                    params,
                    dataset,
                    resolution,
                    seed,
                    meta["accuracy"],
                    meta["weights_sha256"],
                    meta["train_seconds"],
                    path,
                )
        except (OSError, ValueError, KeyError):
            pass  # unreadable or corrupt cache entry: retrain and overwrite it
    train, heldout = training_data(dataset, resolution, seed, config.holdout_fraction, data_root)
    start = time.perf_counter()
    params = train_classifier(train.x, train.y, seed, config.steps, config.batch_size, config.learning_rate)
    seconds = time.perf_counter() - start
    acc = accuracy(params, heldout.x, heldout.y)
    blob = serialization.to_bytes(params)
    sha = hashlib.sha256(blob).hexdigest()
    meta = {
        "dataset": dataset, "resolution": resolution, "seed": seed, "accuracy": acc, "weights_sha256": sha,
        "train_seconds": seconds, "num_train": len(train.x), "num_holdout": len(heldout.x), "train_data": train.name,
        "heldout_data": heldout.name, **asdict(config),
    }  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(
            f"cannot cache classifier weights in {path.parent} ({exc}); set GAN_JAX_CACHE to a writable folder."
        ) from exc
    params = jax.tree.map(jnp.asarray, params)
    return TrainedClassifier(params, dataset, resolution, seed, acc, sha, seconds, path)


def _model_input(images: np.ndarray, channels: int = 1) -> np.ndarray:
    """uint8 0..255 or float [-1, 1] (N, H, W, channels) -> float32 [-1, 1]; anything else is rejected with the fix."""
    images = np.asarray(images)
    if images.ndim == 3 and channels == 1:
        images = images[..., None]
    if channels != 1:
        if images.ndim != 4 or images.shape[-1] != channels:
            raise DataError(f"this classifier takes (N, H, W, {channels}) images, got shape {images.shape}.")
    elif images.ndim != 4 or images.shape[-1] != 1:
        raise DataError(
            f"the digit classifier takes grey images (N, H, W, 1), got shape {images.shape}; classify the "
            "channels of a Stacked-MNIST image one at a time (gan_jax.metrics.image_modes.stacked_channel_labels)."
        )
    if images.dtype == np.uint8:
        return to_model_space(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"images must be uint8 or float in [-1, 1], got {images.dtype}.")
    return images.astype(np.float32)

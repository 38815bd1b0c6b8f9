"""Image datasets as host numpy arrays (uint8 NHWC); the caller moves them to device once.

Pixels stay uint8 at the edges (files, metrics) and become float32 in [-1, 1] only through `to_model_space`,
so the scaling convention lives in one place.
"""

import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import struct
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

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
# The file names every MNIST-format set uses (MNIST, Fashion-MNIST): split -> (images, labels).
MNIST_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # the official host (plain http only)
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",  # the dataset's repo
)
# md5: the published values, in the table of zalandoresearch/fashion-mnist's README and in torchvision's
# FashionMNIST.resources. No sha256: the two published lists we found disagree (TFDS's url_checksums vs
# third-party loaders), so md5 is what is checked. Sizes: TFDS's url_checksums/fashion_mnist.txt.
FASHION_MNIST_FILES: dict[str, tuple[str | None, str, int]] = {
    "train-images-idx3-ubyte.gz": (None, "8d4fb7e6c68d591d4c3dfef9ec88bf0d", 26_421_880),
    "train-labels-idx1-ubyte.gz": (None, "25c81989df183df01b3e8a0aad5dffbe", 29_515),
    "t10k-images-idx3-ubyte.gz": (None, "bef4ecab320f06d8554ea6380940ec79", 4_422_102),
    "t10k-labels-idx1-ubyte.gz": (None, "bb300cfdad3c16e7a12a480ee83cd310", 5_148),
}
# sha256 of the decompressed IDX files (the contents, whatever gzip wrapped them): Debian's dataset-fashion-mnist
# package re-gzips the standard files, so its .gz md5s differ from Zalando's while these contents are the same
# (measured on that package's files, ../shared/data/README.md). A file passes when its .gz md5 is Zalando's or its
# contents hash to these.
FASHION_MNIST_CONTENTS = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# Where Debian's package installs them (`apt-get install dataset-fashion-mnist`): read when the data root has none.
FASHION_MNIST_SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_FOLDER = "cifar-10-batches-py"
# md5s published on https://www.cs.toronto.edu/~kriz/cifar.html (archive) and checked by torchvision's CIFAR10
# (tgz_md5, train_list, test_list in torchvision/datasets/cifar.py).
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_SPLITS = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_SIDE = 32

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".webp")
# PIL modes read as one grey channel; 16-bit greys are scaled to 0..255 (PIL's own convert("L") would clip them).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


@dataclass(frozen=True, eq=False)
class IdxDataset:
    """One MNIST-format (IDX) image set: its folder, files, checksums and mirrors. MNIST and Fashion-MNIST share
    the format and file names, so one loader reads both and only this table differs."""

    name: str  # data.name, and the folder under the data root
    title: str  # how messages name it
    mirrors: tuple[str, ...]
    files: dict[str, tuple[str | None, str, int]]  # file -> (sha256, or None where unpublished; md5; bytes)
    classes: tuple[str, ...] | None = None
    splits: tuple[tuple[str, tuple[str, str]], ...] = tuple(MNIST_SPLITS.items())
    contents: dict[str, str] | None = None  # file -> sha256 of its decompressed IDX payload (also accepted)
    system_dirs: tuple[str, ...] = ()  # folders a system package installs the files in (read when root has none)


MNIST = IdxDataset("mnist", "MNIST", MNIST_MIRRORS, MNIST_FILES)
FASHION_MNIST = IdxDataset(
    "fashion_mnist",
    "Fashion-MNIST",
    FASHION_MNIST_MIRRORS,
    FASHION_MNIST_FILES,
    FASHION_MNIST_CLASSES,
    contents=FASHION_MNIST_CONTENTS,
    system_dirs=FASHION_MNIST_SYSTEM_DIRS,
)
IDX_DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


@dataclass(frozen=True, eq=False)
class ImageData:
    """Images x (N, H, W, C) uint8 with optional int32 labels y (N,); checked on construction so no
    malformed array reaches a jitted step, where the error would be far less readable."""

    x: np.ndarray
    y: np.ndarray | None
    name: str
    classes: tuple[str, ...] | None = None  # class names (label i -> classes[i]) where the source has them

    def __post_init__(self) -> None:
        validate_images(self.x, self.name)
        if self.y is not None and (self.y.dtype != np.int32 or self.y.shape != (self.x.shape[0],)):
            raise DataError(
                f"labels of {self.name!r} must be int32 with shape ({self.x.shape[0]},) to match the images, "
                f"got {self.y.dtype} {self.y.shape}; cast with y.astype(np.int32) and check the label file."
            )
        if self.classes is not None and self.y is not None and self.y.size and int(self.y.max()) >= len(self.classes):
            raise DataError(
                f"labels of {self.name!r} go up to {int(self.y.max())} but only {len(self.classes)} class names "
                "are given; pass one name per class (or classes=None)."
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


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz, or one line on what is wrong with it (never numpy's own wording: it suggests
    `allow_pickle`, which would let the file run code)."""
    fix = "write it with np.savez(path, x=images, y=labels) (numeric arrays)"
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an .npz archive (no zip structure: truncated, or another format); {fix}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as err:
        if "pickle" in str(err) or "Object arrays" in str(err):
            raise DataError(
                f"{path} holds object (pickled) arrays, which are never loaded: they can run code; {fix}"
            ) from err
        raise DataError(f"{path} holds an array that is not a valid .npy member; {fix}") from err
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path} is a damaged .npz archive ({type(err).__name__}); {fix}") from err


def load_npz(path: str | os.PathLike, pixel_range: tuple[float, float] = (0.0, 255.0)) -> ImageData:
    """Any image set saved with `np.savez(FILE, x=images, y=labels)`: `x` NHWC (1 or 3 channels), `y` optional.

    `x` may be uint8 (0..255) or numbers in the declared `pixel_range` (e.g. floats in [-1, 1]); they are checked
    (finite, inside the range) and stored as uint8 like every other image set, so a bad array fails here, by
    name, rather than as NaN losses many steps later.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"dataset file {path} not found; set data.path to an .npz holding 'x' (and optionally 'y').")
    arrays = _read_npz(path)
    # gan-jax-sample writes `samples` (and `labels`): its output trains or serves as a reference as it is.
    x_key = next((k for k in ("x", "samples") if k in arrays), None)
    if x_key is None:
        raise DataError(f"{path} has no array 'x' (it has: {', '.join(arrays) or 'nothing'}); save images as x=...")
    x = _pixels_to_uint8(arrays[x_key], f"{path}:{x_key}", pixel_range)
    y = arrays.get("y", arrays.get("labels"))
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


def load_mnist(
    root: str | Path | None, split: str = "test", download: bool = False, verify_checksums: bool = True
) -> ImageData:
    """MNIST from `<root>/mnist/*-ubyte.gz` as (N, 28, 28, 1) uint8 with int32 labels (see `load_idx`)."""
    return load_idx(MNIST, root, split, download, verify_checksums)


def load_fashion_mnist(
    root: str | Path | None, split: str = "test", download: bool = False, verify_checksums: bool = True
) -> ImageData:
    """Fashion-MNIST (Zalando) from `<root>/fashion_mnist/*-ubyte.gz`: MNIST's format and shapes, clothing classes."""
    return load_idx(FASHION_MNIST, root, split, download, verify_checksums)


def load_idx(
    spec: IdxDataset,
    root: str | Path | None,
    split: str = "test",
    download: bool = False,
    verify_checksums: bool = True,
) -> ImageData:
    """An MNIST-format set from `<root>/<spec.name>/*-ubyte.gz` as (N, 28, 28, 1) uint8 with int32 labels.

    The IDX files are parsed here (no torchvision/TFDS dependency) and, unless `verify_checksums` is false, checked
    against the published checksums on every load: hashing a few MB is cheap and catches corrupt or substituted
    files. Structure is checked before checksums so a damaged file gets the most specific message.
    """
    splits = dict(spec.splits)
    if split not in splits:
        raise DataError(f"unknown {spec.title} split {split!r}: use one of {', '.join(splits)}.")
    images_file, labels_file = splits[split]
    folder = _idx_folder(spec, resolve_data_root(root) / spec.name, (images_file, labels_file))
    paths = [folder / images_file, folder / labels_file]
    for path in paths:
        if not path.is_file():
            if not download:
                raise DataError(_missing_message(spec, path))
            _download_idx(spec, path)
    x = _read_idx(paths[0], IDX_IMAGES_MAGIC)
    y = _read_idx(paths[1], IDX_LABELS_MAGIC)
    if x.shape[1:] != (28, 28):
        raise DataError(f"{paths[0]} holds {x.shape[1:]} images, not 28×28: it is not {spec.title}; re-download it.")
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{spec.title} {split}: {paths[0].name} has {x.shape[0]} images but {paths[1].name} has {y.shape[0]} "
            f"labels (in {folder}); the two files come from different splits or versions: re-download both."
        )
    if spec.classes is not None and y.size and int(y.max()) >= len(spec.classes):
        raise DataError(
            f"{paths[1]} holds label {int(y.max())}, but {spec.title} has {len(spec.classes)} classes: it is not "
            f"{spec.title}'s label file; re-download it."
        )
    if verify_checksums:
        for path in paths:
            _verify_idx_checksum(spec, path)
    return ImageData(x=x[..., None], y=y.astype(np.int32), name=f"{spec.name}-{split}", classes=spec.classes)


def _idx_folder(spec: IdxDataset, folder: Path, names: Sequence[str]) -> Path:
    """The data root's folder, or a system package's folder when only that one holds the files."""
    if all((folder / name).is_file() for name in names):
        return folder
    for system in map(Path, spec.system_dirs):
        if all((system / name).is_file() for name in names):
            return system
    return folder


def _checksum_text(sha256: str | None, md5: str) -> str:
    return f"sha256 {sha256}, md5 {md5}" if sha256 else f"md5 {md5}"


def _missing_message(spec: IdxDataset, path: Path) -> str:
    sha256, md5, _ = spec.files[path.name]
    also = "".join(f" and in {d}" for d in spec.system_dirs)
    return (
        f"{spec.title} file {path.name} not found: looked for {path}{also} (expected {_checksum_text(sha256, md5)}). "
        f"Put the file in {path.parent}, or point data.root=<dir> (or the GAN_JAX_DATA environment variable) "
        f"at a folder that holds {spec.name}/{path.name}, or set data.download=true to fetch it from "
        f"{spec.mirrors[0]}{path.name}."
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


def _file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_idx_checksum(spec: IdxDataset, path: Path) -> None:
    """sha256 where it is published, else md5 (Fashion-MNIST publishes only md5)."""
    sha256, md5, _ = spec.files[path.name]
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    found = _file_digest(path, algorithm)
    content = (spec.contents or {}).get(path.name)
    rewrapped = found != expected and content is not None  # another gzip wrapper (Debian's) around the same IDX?
    if rewrapped and hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == content:
        return
    if found != expected:
        also = f" (md5 {md5})" if sha256 else ""
        also += f", or IDX contents with sha256 {content}" if content else ""
        raise DataError(
            f"{path} has {algorithm} {found}, expected {expected}{also}: the file is corrupt or a different "
            f"version; delete it and download it again from {spec.mirrors[0]}{path.name} "
            "(or set data.verify_checksums=false to use it as it is)."
        )


def _download_idx(spec: IdxDataset, path: Path) -> None:
    sha256, md5, size = spec.files[path.name]
    _fetch(
        [mirror + path.name for mirror in spec.mirrors],
        path,
        sha256=sha256,
        md5=md5,
        size=size,
        what=spec.title,
        otherwise=f"set data.root=<dir> / GAN_JAX_DATA to a folder that already holds {spec.name}/.",
    )


def _fetch(
    urls: Sequence[str], path: Path, *, sha256: str | None, md5: str, size: int | None, what: str, otherwise: str
) -> None:
    """Fetch `path` from each URL in turn, hashing while writing a `.part` file; a download with a bad checksum is
    deleted, not kept, and only a verified file is renamed into place. Downloads are always verified, whatever
    data.verify_checksums says: that flag is for files the user put there."""
    algorithm, expected = ("sha256", sha256) if sha256 else ("md5", md5)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create {path.parent} to download {what} into ({exc}); "
            "set data.root=<dir> / GAN_JAX_DATA to a writable folder."
        ) from exc
    partial = path.with_name(path.name + ".part")
    failures = []
    reached = False  # some server answered: the failure is not just being offline
    for url in urls:
        digest = hashlib.new(algorithm)
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
        if digest.hexdigest() != expected:
            got = partial.stat().st_size
            partial.unlink()
            wanted = f"{size} bytes with {algorithm}" if size else algorithm
            failures.append(
                f"{url}: got {got} bytes with {algorithm} {digest.hexdigest()}, expected {wanted} {expected} "
                "(the download was deleted)"
            )
            continue
        os.replace(partial, path)
        return
    why = "no mirror served the expected file" if reached else "no mirror could be reached (offline?)"
    raise DataError(
        f"could not download {path.name} into {path.parent}: {why}: {'; '.join(failures)}. "
        f"Copy the file there by hand ({algorithm} {expected}) or {otherwise}"
    )


# ---------------------------------------------------------------- CIFAR-10 (python version)


def load_cifar10(
    root: str | Path | None, split: str = "train", download: bool = False, verify_checksums: bool = True
) -> ImageData:
    """CIFAR-10 from `<root>/cifar-10-batches-py/` (the python pickles) as (N, 32, 32, 3) uint8, int32 labels.

    train = data_batch_1..5 in order (50,000 images), test = test_batch (10,000). With `verify_checksums` each
    file's md5 is checked *before* it is unpickled, so a substituted file is never parsed; the unpickler also
    only builds numpy arrays and plain containers, so an unverified file cannot run code either.
    """
    if split not in CIFAR10_SPLITS:
        raise DataError(f"unknown CIFAR-10 split {split!r}: use one of {', '.join(CIFAR10_SPLITS)}.")
    data_root = resolve_data_root(root)
    paths = [data_root / CIFAR10_FOLDER / name for name in CIFAR10_SPLITS[split]]
    missing = [path for path in paths if not path.is_file()]
    if missing and not download:
        raise DataError(_cifar10_missing_message(missing[0], data_root))
    if missing:
        _download_cifar10(data_root)
        still = [path for path in paths if not path.is_file()]
        if still:
            raise DataError(
                f"{CIFAR10_ARCHIVE} was unpacked into {data_root} but {still[0]} is still missing: the archive is "
                f"not CIFAR-10's python version; get it from {CIFAR10_URL}."
            )
    xs, ys = [], []
    for path in paths:
        if verify_checksums:
            _verify_cifar10_checksum(path)
        x, y = _read_cifar10_batch(path)
        xs.append(x)
        ys.append(y)
    x = np.concatenate(xs) if len(xs) > 1 else xs[0]
    y = np.concatenate(ys) if len(ys) > 1 else ys[0]
    return ImageData(x=x, y=y, name=f"cifar10-{split}", classes=CIFAR10_CLASSES)


def _cifar10_missing_message(path: Path, data_root: Path) -> str:
    return (
        f"CIFAR-10 file {path.name} not found: looked in {path.parent} (expected md5 {CIFAR10_FILES[path.name]}). "
        f"Download {CIFAR10_URL} (md5 {CIFAR10_ARCHIVE_MD5}) and unpack it into the data root with "
        f"`tar xzf {CIFAR10_ARCHIVE} -C {data_root}` (it creates {CIFAR10_FOLDER}/), or point data.root=<dir> "
        f"(or the GAN_JAX_DATA environment variable) at a folder that holds {CIFAR10_FOLDER}/, or set "
        "data.download=true to fetch and unpack it."
    )


def _verify_cifar10_checksum(path: Path) -> None:
    expected = CIFAR10_FILES[path.name]
    found = _file_digest(path, "md5")
    if found != expected:
        raise DataError(
            f"{path} has md5 {found}, expected {expected}: it is not the published CIFAR-10 file {path.name} "
            f"(corrupt, truncated or a different version); delete {path.parent} and unpack {CIFAR10_URL} again "
            "(or set data.verify_checksums=false to read it unchecked)."
        )


# numpy functions that array pickles name: (submodule, function). numpy 2 writes numpy._core.*, numpy 1 and the
# original CIFAR files numpy.core.*; either spelling resolves to the module this numpy has.
_NUMPY_PICKLE_FUNCTIONS = {("multiarray", "_reconstruct"), ("numeric", "_frombuffer")}


def _numpy_function(submodule: str, name: str):
    import importlib

    try:  # numpy >= 2 (numpy.core is a deprecated alias there)
        module = importlib.import_module(f"numpy._core.{submodule}")
    except ImportError:  # pragma: no cover - numpy 1.x
        module = importlib.import_module(f"numpy.core.{submodule}")
    return getattr(module, name)


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR batch holds (dicts, lists, bytes, numbers, numpy arrays): any other global a
    pickle names is refused, so reading a file does not execute code it carries."""

    def find_class(self, module: str, name: str):
        package, _, submodule = module.rpartition(".")
        if package in ("numpy.core", "numpy._core") and (submodule, name) in _NUMPY_PICKLE_FUNCTIONS:
            return _numpy_function(submodule, name)
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) in (("_codecs", "encode"), ("codecs", "encode")):  # bytes in protocol-2 pickles
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}, which a CIFAR-10 batch never holds")


def _read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch pickle -> (N, 32, 32, 3) uint8 and (N,) int32. Rows of `data` are 1024 red, then 1024 green,
    then 1024 blue values, each plane 32×32 row-major: reshape to (N, 3, 32, 32), then channels last."""
    try:
        with path.open("rb") as handle:
            entry = _ArrayUnpickler(handle, encoding="bytes").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same to the user
        raise DataError(
            f"{path} is not a readable CIFAR-10 batch ({type(exc).__name__}: {exc}): it is truncated, corrupt or "
            f"not a pickle; delete it and unpack {CIFAR10_URL} again."
        ) from exc
    keys = sorted(map(repr, entry)) if isinstance(entry, dict) else None
    if keys is None or b"data" not in entry or b"labels" not in entry:
        found = f"a dict with keys {', '.join(keys)}" if keys is not None else f"a {type(entry).__name__}"
        raise DataError(
            f"{path} holds {found}, not a CIFAR-10 batch (a dict with b'data' and b'labels'); it may be a "
            f"CIFAR-100 file or another pickle: unpack {CIFAR10_URL} again."
        )
    data = entry[b"data"]
    side = CIFAR10_SIDE
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * side**2:
        what = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(
            f"{path}: b'data' is {what}, expected uint8 (N, {3 * side**2}) (one 3×{side}×{side} image per row); "
            f"the file is damaged or not CIFAR-10: unpack {CIFAR10_URL} again."
        )
    if data.shape[0] == 0:
        raise DataError(f"{path} holds no images; unpack {CIFAR10_URL} again.")
    labels = np.asarray(entry[b"labels"])
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: b'labels' has shape {labels.shape} ({labels.dtype}), expected {data.shape[0]} integer "
            f"labels, one per image; the file is damaged: unpack {CIFAR10_URL} again."
        )
    if labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES):
        raise DataError(
            f"{path}: labels range over {labels.min()}..{labels.max()}, but CIFAR-10 has classes 0..9; "
            f"it is not a CIFAR-10 batch: unpack {CIFAR10_URL} again."
        )
    x = np.ascontiguousarray(data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1))
    return x, labels.astype(np.int32)


def _download_cifar10(data_root: Path) -> None:
    """Fetch the archive (md5-verified), unpack cifar-10-batches-py/ from it, then delete the archive."""
    archive = data_root / CIFAR10_ARCHIVE
    if not archive.is_file():
        _fetch(
            [CIFAR10_URL],
            archive,
            sha256=None,
            md5=CIFAR10_ARCHIVE_MD5,
            size=None,
            what="CIFAR-10",
            otherwise=f"unpack it by hand with `tar xzf {CIFAR10_ARCHIVE} -C {data_root}`.",
        )
    elif (found := _file_digest(archive, "md5")) != CIFAR10_ARCHIVE_MD5:
        raise DataError(
            f"{archive} has md5 {found}, expected {CIFAR10_ARCHIVE_MD5}: it is corrupt or not CIFAR-10's python "
            f"version; delete it and download {CIFAR10_URL} again."
        )
    extract_tar_folder(archive, data_root, CIFAR10_FOLDER)
    archive.unlink()


def extract_tar_folder(archive: Path, dest: Path, folder: str) -> None:
    """Unpack the regular files of `archive` that lie under `folder/` into `dest`, refusing anything else.

    A downloaded archive is checked entry by entry (absolute paths, `..`, links, devices are rejected) instead
    of trusting `extractall`, so a hostile or broken tarball cannot write outside `dest/folder`.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not parts or parts[0] != folder or ".." in parts or PurePosixPath(member.name).is_absolute():
                    raise DataError(
                        f"{archive} holds the entry {member.name!r}, outside {folder}/: it is not the expected "
                        "archive; refusing to unpack it. Delete it and download it again."
                    )
                if member.isdir():
                    continue
                if not member.isfile():
                    raise DataError(
                        f"{archive} holds {member.name!r}, which is a link or special file: refusing to unpack it. "
                        "Delete the archive and download it again."
                    )
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".part")
                source = tar.extractfile(member)
                with source, partial.open("wb") as out:
                    shutil.copyfileobj(source, out)
                os.replace(partial, target)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"could not unpack {archive} into {dest} ({exc}); delete it and download it again.") from exc


# ---------------------------------------------------------------- image folders


def load_image_folder(path: str | os.PathLike, resolution: int) -> ImageData:
    """A folder of image files: one subfolder per class (sorted names -> labels 0..K-1) or, with no class
    subfolders, the images directly in it (unlabelled). Each image is centre-cropped to a square and resized
    to `resolution` (PIL bilinear). Channels: one (L) when every image is greyscale, else RGB for all.
    """
    folder = Path(path).expanduser()
    if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer) or resolution < 1:
        raise DataError(f"image resolution must be a positive integer, got {resolution!r}; set data.resolution.")
    if not folder.exists():
        raise DataError(
            f"image folder {folder} not found; set data.path=DIR to a folder of images (one subfolder per class, "
            "or the images directly in it)."
        )
    if not folder.is_dir():
        raise DataError(f"data.path={folder} is a file, not a folder; data=folder reads a folder of images.")
    extensions = ", ".join(IMAGE_EXTENSIONS)
    subfolders = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_class = {d: _image_files(d, recursive=True) for d in subfolders}
    loose = _image_files(folder, recursive=False)
    if any(per_class.values()):
        if loose:
            raise DataError(
                f"{folder} holds both class subfolders and {len(loose)} images directly in it (e.g. {loose[0].name}); "
                "move those images into a class subfolder, or point data.path at a folder of one kind only."
            )
        empty = [d for d, files in per_class.items() if not files]
        if empty:
            raise DataError(
                f"class folder {empty[0]} holds no images ({extensions}); every subfolder of {folder} is a class: "
                "add images to it or move it out."
            )
        files = [f for d in subfolders for f in per_class[d]]
        y = np.concatenate([np.full(len(per_class[d]), k, np.int32) for k, d in enumerate(subfolders)])
        classes = tuple(d.name for d in subfolders)
    else:
        if not loose:
            raise DataError(
                f"image folder {folder} is empty: no images ({extensions}) in it or in class subfolders; "
                "point data.path at the folder that holds them."
            )
        files, y, classes = loose, None, None
    arrays = [_read_image(f, resolution) for f in files]
    grey = all(a.ndim == 2 for a in arrays)
    x = np.stack([a if grey or a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1) for a in arrays])
    return ImageData(x=x[..., None] if grey else x, y=y, name=folder.name, classes=classes)


def _image_files(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _read_image(path: Path, resolution: int) -> np.ndarray:
    """Decode, centre-crop to a square, resize: (r, r) uint8 for greyscale images, (r, r, 3) for the rest."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in GREY_MODES:
                if img.mode == "I" or img.mode.startswith("I;16"):  # 16-bit PNG greys: scale, do not clip
                    grey = np.asarray(img, np.float64) * (255.0 / 65535.0)
                    img = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L")
                else:
                    img = img.convert("L")
            else:
                img = img.convert("RGB")
            width, height = img.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            img = img.crop((left, top, left + side, top + side))
            if side != resolution:
                img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
            return np.asarray(img, np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image {path} ({type(exc).__name__}: {exc}): the file is corrupt, truncated or not an "
            "image; fix or delete it."
        ) from exc

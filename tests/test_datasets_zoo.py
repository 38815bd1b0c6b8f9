"""More image sets: Fashion-MNIST (IDX), CIFAR-10 (python pickles), image folders, and random horizontal flips.

No real data here: tiny fake files in the exact formats are written into tmp_path, loaded with checksums off, and
refused with checksums on. Nothing touches the network (downloads are served by a fake urlopen).
"""

import dataclasses
import gzip
import hashlib
import io
import os
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_config
from PIL import Image

from gan_jax.config import DataConfig
from gan_jax.data import images
from gan_jax.data.source import _sample_images, build_source, image_source
from gan_jax.errors import ConfigError, DataError

TRAIN_IMAGES, TRAIN_LABELS = images.MNIST_SPLITS["train"]
TEST_IMAGES, TEST_LABELS = images.MNIST_SPLITS["test"]


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file as the MNIST distributions ship it: gzip of magic (uint8, ndim), big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _write_idx_set(folder: Path, n: int, split: str = "test", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    images_file, labels_file = images.MNIST_SPLITS[split]
    (folder / images_file).write_bytes(_idx_bytes(x))
    (folder / labels_file).write_bytes(_idx_bytes(y))
    return x, y


def _fake_urlopen(payloads: dict[str, bytes]):
    def urlopen(url, timeout=None):
        if url not in payloads:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return io.BytesIO(payloads[url])

    return urlopen


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_loads_fake_idx_files(tmp_path):
    x_test, y_test = _write_idx_set(tmp_path / "fashion_mnist", 12, "test", seed=1)
    x_train, y_train = _write_idx_set(tmp_path / "fashion_mnist", 20, "train", seed=2)
    test = images.load_fashion_mnist(tmp_path, "test", verify_checksums=False)
    train = images.load_fashion_mnist(tmp_path, "train", verify_checksums=False)
    assert test.x.shape == (12, 28, 28, 1) and test.x.dtype == np.uint8 and test.name == "fashion_mnist-test"
    assert train.x.shape == (20, 28, 28, 1) and train.y.dtype == np.int32
    np.testing.assert_array_equal(test.x[..., 0], x_test)
    np.testing.assert_array_equal(train.x[..., 0], x_train)
    np.testing.assert_array_equal(test.y, y_test)
    np.testing.assert_array_equal(train.y, y_train)
    assert train.classes[0] == "T-shirt/top" and len(train.classes) == 10


def test_fashion_mnist_checksum_refuses_fake_file(tmp_path):
    _write_idx_set(tmp_path / "fashion_mnist", 4)
    md5 = images.FASHION_MNIST_FILES[TEST_IMAGES][1]
    assert md5 == "bef4ecab320f06d8554ea6380940ec79"
    with pytest.raises(DataError) as err:
        images.load_fashion_mnist(tmp_path, "test")
    message = str(err.value)
    for part in (TEST_IMAGES, f"expected {md5}", "has md5", "data.verify_checksums=false", "fashion-mnist"):
        assert part in message


def test_fashion_mnist_labels_outside_classes(tmp_path):
    folder = tmp_path / "fashion_mnist"
    _write_idx_set(folder, 4)
    (folder / TEST_LABELS).write_bytes(_idx_bytes(np.array([0, 1, 12, 3], np.uint8)))
    with pytest.raises(DataError, match=r"holds label 12, but Fashion-MNIST has 10 classes"):
        images.load_fashion_mnist(tmp_path, "test", verify_checksums=False)


def test_fashion_mnist_missing_file_says_where_and_what(tmp_path):
    with pytest.raises(DataError) as err:
        images.load_fashion_mnist(tmp_path, "train")
    message = str(err.value)
    for part in (
        "Fashion-MNIST file " + TRAIN_IMAGES,
        str(tmp_path / "fashion_mnist"),
        "md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" + TRAIN_IMAGES,
        "data.download=true",
        "GAN_JAX_DATA",
    ):
        assert part in message
    with pytest.raises(DataError, match=r"unknown Fashion-MNIST split 'val'.*train, test"):
        images.load_fashion_mnist(tmp_path, "val")


def test_mnist_verify_checksums_flag(tmp_path):
    """Fake MNIST files: refused by sha256 by default (as before), read when data.verify_checksums=false."""
    x, _ = _write_idx_set(tmp_path / "mnist", 6)
    with pytest.raises(DataError, match=rf"has sha256 .*expected {images.MNIST_FILES[TEST_IMAGES][0]}"):
        images.load_mnist(tmp_path)
    data = images.load_mnist(tmp_path, verify_checksums=False)
    np.testing.assert_array_equal(data.x[..., 0], x)
    _write_idx_set(tmp_path / "mnist", 6, "train")
    assert images.load_mnist(tmp_path, "train", verify_checksums=False).name == "mnist-train"


def test_fashion_mnist_download_md5_verified(tmp_path, monkeypatch):
    """The first mirror is down, the second serves the files: kept only when their md5 matches the table."""
    x = np.random.default_rng(3).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    files = {TEST_IMAGES: _idx_bytes(x), TEST_LABELS: _idx_bytes(np.arange(5, dtype=np.uint8))}
    mirror = images.FASHION_MNIST_MIRRORS[1]
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen({mirror + n: b for n, b in files.items()}))
    with pytest.raises(DataError, match=r"no mirror served the expected file.*md5.*download was deleted"):
        images.load_fashion_mnist(tmp_path, download=True)
    assert not any((tmp_path / "fashion_mnist").iterdir())
    for name, payload in files.items():  # pretend the fakes are the published files
        monkeypatch.setitem(images.FASHION_MNIST_FILES, name, (None, hashlib.md5(payload).hexdigest(), len(payload)))
    data = images.load_fashion_mnist(tmp_path, download=True)
    np.testing.assert_array_equal(data.x[..., 0], x)
    assert sorted(p.name for p in (tmp_path / "fashion_mnist").iterdir()) == sorted(files)


def test_fashion_mnist_download_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen({}))
    with pytest.raises(DataError, match=r"could not download t10k-images-idx3-ubyte.gz.*\(offline\?\).*md5 bef4"):
        images.load_fashion_mnist(tmp_path, download=True)


# ---------------------------------------------------------------- CIFAR-10


def _cifar_rows(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3072) rows built from a known (n, 3, 32, 32) CHW array, and the NHWC images they must load as."""
    nn, c, h, w = np.meshgrid(np.arange(n) + offset, np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    chw = ((nn * 37 + c * 101 + h * 7 + w * 3) % 256).astype(np.uint8)
    return chw.reshape(n, 3072), chw.transpose(0, 2, 3, 1)


def _write_batch(path: Path, data, labels, protocol: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {b"batch_label": b"fake batch", b"data": data, b"labels": labels, b"filenames": [b"x.png"] * len(labels)}
    path.write_bytes(pickle.dumps(entry, protocol=protocol))


def _write_cifar(root: Path, n: int = 4) -> dict[str, np.ndarray]:
    """All six batches (n images each, distinct pixels per batch); returns the expected NHWC images per file."""
    expected = {}
    for k, name in enumerate(images.CIFAR10_FILES):
        rows, nhwc = _cifar_rows(n, offset=10 * k)
        labels = [(k + i) % 10 for i in range(n)]
        # protocol 2 as the original (Python 2) files, 5 as numpy 2 writes arrays by default
        _write_batch(root / images.CIFAR10_FOLDER / name, rows, labels, protocol=2 if k % 2 == 0 else 5)
        expected[name] = nhwc
    return expected


def test_cifar10_pixel_layout(tmp_path):
    _write_cifar(tmp_path, n=3)
    data = images.load_cifar10(tmp_path, "test", verify_checksums=False)
    assert data.x.shape == (3, 32, 32, 3) and data.x.dtype == np.uint8 and data.y.dtype == np.int32
    rows = pickle.loads((tmp_path / images.CIFAR10_FOLDER / "test_batch").read_bytes(), encoding="bytes")[b"data"]
    for n in range(3):  # red plane, then green, then blue, each 32x32 row-major
        for c in range(3):
            for h in range(32):
                for w in range(32):
                    assert data.x[n, h, w, c] == rows[n, c * 1024 + h * 32 + w]
    assert data.x[1, 2, 5, 1] == (51 * 37 + 1 * 101 + 2 * 7 + 5 * 3) % 256  # image 1 of test_batch (offset 50)
    np.testing.assert_array_equal(data.y, [5, 6, 7])
    assert data.classes[0] == "airplane" and data.name == "cifar10-test"


def test_cifar10_train_is_the_five_batches_in_order(tmp_path):
    expected = _write_cifar(tmp_path, n=4)
    data = images.load_cifar10(tmp_path, "train", verify_checksums=False)
    assert data.x.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(data.x, np.concatenate([expected[f"data_batch_{i}"] for i in range(1, 6)]))
    np.testing.assert_array_equal(data.y, [(k + i) % 10 for k in range(5) for i in range(4)])


def test_cifar10_checksum_refuses_fake_file(tmp_path):
    _write_cifar(tmp_path, n=2)
    with pytest.raises(DataError) as err:
        images.load_cifar10(tmp_path, "train")
    message = str(err.value)
    for part in ("data_batch_1", "expected c99cafc152244af753f735de768cd75f", "data.verify_checksums=false"):
        assert part in message


def test_cifar10_missing_file_says_where_and_what(tmp_path):
    with pytest.raises(DataError) as err:
        images.load_cifar10(tmp_path, "test")
    message = str(err.value)
    for part in (
        "test_batch",
        str(tmp_path / images.CIFAR10_FOLDER),
        "40351d587109b95175f43aff81a1287e",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        f"tar xzf cifar-10-python.tar.gz -C {tmp_path}",
        "data.download=true",
    ):
        assert part in message
    with pytest.raises(DataError, match=r"unknown CIFAR-10 split 'valid'"):
        images.load_cifar10(tmp_path, "valid")


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:500]), r"not a readable CIFAR-10 batch.*truncated"),
        (lambda p: p.write_bytes(b"<html>404</html>"), r"not a readable CIFAR-10 batch"),
        (lambda p: _write_batch(p, np.zeros((2, 3000), np.uint8), [0, 1]), r"expected uint8 \(N, 3072\)"),
        (lambda p: _write_batch(p, np.zeros((2, 3072), np.float32), [0, 1]), r"float32 \(2, 3072\)"),
        (lambda p: _write_batch(p, np.zeros((2, 3072), np.uint8), [0, 1, 2]), r"b'labels' has shape \(3,\)"),
        (lambda p: _write_batch(p, np.zeros((2, 3072), np.uint8), [0, 10]), r"labels range over 0..10"),
        (lambda p: p.write_bytes(pickle.dumps({b"fine_labels": [1]})), r"keys b'fine_labels', not a CIFAR-10 batch"),
        (lambda p: p.write_bytes(pickle.dumps([1, 2])), r"holds a list, not a CIFAR-10 batch"),
    ],
)
def test_cifar10_bad_batches(tmp_path, damage, pattern):
    _write_cifar(tmp_path, n=2)
    damage(tmp_path / images.CIFAR10_FOLDER / "test_batch")
    with pytest.raises(DataError, match=pattern) as err:
        images.load_cifar10(tmp_path, "test", verify_checksums=False)
    assert "test_batch" in str(err.value)


class _Boom:
    def __reduce__(self):
        return (Path.touch, (Path("/nonexistent-dir/pwned"),))


def test_cifar10_unpickler_runs_no_code(tmp_path):
    _write_cifar(tmp_path, n=2)
    path = tmp_path / images.CIFAR10_FOLDER / "test_batch"
    path.write_bytes(pickle.dumps({b"data": _Boom(), b"labels": [0]}))
    with pytest.raises(DataError, match=r"refusing to load the global pathlib"):
        images.load_cifar10(tmp_path, "test", verify_checksums=False)


def _tarball(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_cifar10_download_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen({}))
    with pytest.raises(DataError, match=r"could not download cifar-10-python.tar.gz.*\(offline\?\).*c58f3010"):
        images.load_cifar10(tmp_path, "test", download=True)
    assert not (tmp_path / "cifar-10-python.tar.gz.part").exists()


def test_cifar10_download_verifies_and_unpacks(tmp_path, monkeypatch):
    source = tmp_path / "src"
    _write_cifar(source, n=2)
    entries = {f"{images.CIFAR10_FOLDER}/{p.name}": p.read_bytes() for p in (source / images.CIFAR10_FOLDER).iterdir()}
    archive = _tarball(entries)
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen({images.CIFAR10_URL: archive}))
    with pytest.raises(DataError, match=r"no mirror served.*expected md5 c58f30108f718f92721af3b95e74349a"):
        images.load_cifar10(tmp_path / "root", "test", download=True)
    monkeypatch.setattr(images, "CIFAR10_ARCHIVE_MD5", hashlib.md5(archive).hexdigest())
    data = images.load_cifar10(tmp_path / "root", "test", download=True, verify_checksums=False)
    assert data.x.shape == (2, 32, 32, 3)
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == [images.CIFAR10_FOLDER]  # archive removed


def test_tar_extraction_refuses_paths_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tarball({"cifar-10-batches-py/data_batch_1": b"x", "cifar-10-batches-py/../../evil": b"y"}))
    with pytest.raises(DataError, match=r"outside cifar-10-batches-py/.*refusing"):
        images.extract_tar_folder(archive, tmp_path / "out", images.CIFAR10_FOLDER)
    assert not (tmp_path / "evil").exists()


# ---------------------------------------------------------------- image folders


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_folder_labels_from_sorted_subfolders_greyscale(tmp_path):
    rng = np.random.default_rng(0)
    for name, count in (("zebra", 2), ("ant", 3), ("moth", 1)):
        for i in range(count):
            _save(tmp_path / "set" / name / f"{i}.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    (tmp_path / "set" / "ant" / "notes.txt").write_text("not an image")
    data = images.load_image_folder(tmp_path / "set", 8)
    assert data.x.shape == (6, 8, 8, 1) and data.x.dtype == np.uint8
    assert data.classes == ("ant", "moth", "zebra")
    np.testing.assert_array_equal(data.y, [0, 0, 0, 1, 2, 2])
    first = np.asarray(Image.open(tmp_path / "set" / "ant" / "0.png"))
    np.testing.assert_array_equal(data.x[0, ..., 0], first)


def test_folder_mixed_modes_become_rgb_and_are_cropped_and_resized(tmp_path):
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)  # H=20, W=40: the centre crop keeps columns 10..29
    grey = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    _save(tmp_path / "imgs" / "a.jpg", wide)
    _save(tmp_path / "imgs" / "b.png", grey)
    _save(tmp_path / "imgs" / "c.bmp", rng.integers(0, 256, (10, 10, 4), dtype=np.uint8), "RGBA")
    data = images.load_image_folder(tmp_path / "imgs", 10)
    assert data.x.shape == (3, 10, 10, 3) and data.y is None and data.classes is None and data.name == "imgs"
    decoded = Image.open(tmp_path / "imgs" / "a.jpg").convert("RGB")  # jpeg is lossy: compare with its decode
    want = decoded.crop((10, 0, 30, 20)).resize((10, 10), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(data.x[0], np.asarray(want))
    grey_small = np.asarray(Image.fromarray(grey).resize((10, 10), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(data.x[1], np.repeat(grey_small[..., None], 3, axis=-1))  # grey -> R = G = B


def test_folder_16bit_greys_are_scaled_not_clipped(tmp_path):
    _save(tmp_path / "g" / "a.png", np.array([[0, 65535], [32896, 257]], np.uint16))
    data = images.load_image_folder(tmp_path / "g", 2)
    np.testing.assert_array_equal(data.x[0, ..., 0], [[0, 255], [128, 1]])


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"image folder .*missing not found; set data.path=DIR"):
        images.load_image_folder(tmp_path / "missing", 8)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match=r"image folder .*empty is empty"):
        images.load_image_folder(tmp_path / "empty", 8)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match=r"is a file, not a folder"):
        images.load_image_folder(tmp_path / "file.png", 8)
    _save(tmp_path / "classes" / "cat" / "0.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "classes" / "dog").mkdir()
    with pytest.raises(DataError, match=r"class folder .*dog holds no images"):
        images.load_image_folder(tmp_path / "classes", 4)
    _save(tmp_path / "classes" / "dog" / "0.png", np.zeros((4, 4), np.uint8))
    _save(tmp_path / "classes" / "loose.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"both class subfolders and 1 images directly in it \(e.g. loose.png\)"):
        images.load_image_folder(tmp_path / "classes", 4)
    with pytest.raises(DataError, match="positive integer"):
        images.load_image_folder(tmp_path / "classes", 0)


@pytest.mark.parametrize("payload", [b"not an image at all", "truncated"])
def test_folder_corrupt_image_is_named(tmp_path, payload):
    _save(tmp_path / "set" / "ok.png", np.zeros((6, 6, 3), np.uint8))
    bad = tmp_path / "set" / "broken.jpg"
    if payload == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
        payload = buffer.getvalue()[:300]
    bad.write_bytes(payload)
    with pytest.raises(DataError, match=r"cannot read image .*broken.jpg.*corrupt, truncated or not an image"):
        images.load_image_folder(tmp_path / "set", 6)


# ---------------------------------------------------------------- random horizontal flip


def test_hflip_mirrors_about_half_and_keeps_indices():
    x = np.random.default_rng(0).integers(0, 256, (40, 6, 5, 3), dtype=np.uint8)  # no image is its own mirror
    data = images.ImageData(x=x, y=np.arange(40, dtype=np.int32) % 4, name="random")
    plain, flipping = image_source(data), image_source(data, hflip=True)
    key = jax.random.key(7)
    a = jax.jit(plain.sample, static_argnums=2)(plain.arrays, key, 2000)
    b = jax.jit(flipping.sample, static_argnums=2)(flipping.arrays, key, 2000)
    xa, xb = np.asarray(a["x"]), np.asarray(b["x"])
    np.testing.assert_array_equal(np.asarray(a["y"]), np.asarray(b["y"]))  # same examples drawn
    same = (xa == xb).all(axis=(1, 2, 3))
    mirrored = (xa[:, :, ::-1] == xb).all(axis=(1, 2, 3))
    assert (same ^ mirrored).all()  # each example is either untouched or exactly mirrored
    assert 0.45 < mirrored.mean() < 0.55


def test_hflip_off_is_the_batch_drawn_before():
    """hflip=false draws exactly what the sampler drew before flips existed: indices from the key itself."""
    x = np.random.default_rng(1).integers(0, 256, (30, 4, 4, 1), dtype=np.uint8)
    source = image_source(images.ImageData(x=x, y=None, name="r"))
    assert source.sample is _sample_images
    key = jax.random.PRNGKey(3)
    batch = source.sample(source.arrays, key, 64)
    idx = jax.random.randint(key, (64,), 0, 30)
    np.testing.assert_array_equal(
        np.asarray(batch["x"]), np.asarray(jnp.asarray(x)[idx].astype(jnp.float32) / 127.5 - 1)
    )


# ---------------------------------------------------------------- build_source


def test_build_source_for_each_new_set(tmp_path):
    _write_idx_set(tmp_path / "fashion_mnist", 10, "train")
    _write_cifar(tmp_path, n=3)
    for k in range(2):
        _save(tmp_path / "pics" / f"class{k}" / "0.png", np.full((12, 12, 3), 60 * k, np.uint8))
    fashion = build_source(DataConfig(name="fashion_mnist", root=str(tmp_path), split="train", verify_checksums=False))
    assert fashion.kind == "images" and fashion.example_shape == (32, 32, 1) and fashion.num_classes == 10
    cifar = build_source(DataConfig(name="cifar10", root=str(tmp_path), split="train", verify_checksums=False))
    assert cifar.example_shape == (32, 32, 3) and cifar.arrays["x"].shape[0] == 15
    folder = build_source(DataConfig(name="folder", path=str(tmp_path / "pics"), resolution=8, hflip=True))
    assert folder.example_shape == (8, 8, 3) and folder.num_classes == 2
    assert folder.sample(folder.arrays, jax.random.key(0), 4)["x"].shape == (4, 8, 8, 3)
    with pytest.raises(DataError, match="expected c99cafc152244af753f735de768cd75f"):
        build_source(DataConfig(name="cifar10", root=str(tmp_path), split="train"))
    with pytest.raises(ConfigError, match=r"data=folder needs data\.path=DIR"):
        build_source(DataConfig(name="folder"))
    with pytest.raises(ConfigError, match=r"data\.hflip=true flips images, but data=ring"):
        build_source(DataConfig(name="ring", hflip=True))


def test_data_configs_compose(tmp_path):
    _write_cifar(tmp_path, n=2)
    mlp = "model.g_output=tanh"  # the default toy MLP (linear output) is refused on images
    cfg = make_config("data=cifar10", f"data.root={tmp_path}", "data.verify_checksums=false", "data.hflip=true", mlp)
    assert (cfg.data.name, cfg.data.resolution, cfg.data.split, cfg.data.hflip) == ("cifar10", 32, "train", True)
    assert build_source(cfg.data).arrays["x"].shape == (10, 32, 32, 3)
    fashion = make_config("data=fashion_mnist", mlp).data
    assert (fashion.name, fashion.resolution, fashion.split, fashion.verify_checksums) == (
        "fashion_mnist",
        32,
        "train",
        True,
    )
    folder = make_config("data=folder", f"data.path={tmp_path}", mlp).data
    assert (folder.name, folder.path, folder.resolution) == ("folder", str(tmp_path), 32)


def test_fashion_mnist_full_from_debians_files():
    """The real Fashion-MNIST (Debian's dataset-fashion-mnist files in the shared data root): its .gz md5s are not
    Zalando's, its IDX contents are the standard ones, so it loads with checksums on; 60k train, 10k test."""
    from conftest import SHARED_DATA

    root = os.environ.get("GAN_JAX_DATA") or str(SHARED_DATA)
    if not (Path(root) / "fashion_mnist" / TRAIN_IMAGES).is_file():
        pytest.skip(f"no Fashion-MNIST under {root}")
    train = images.load_fashion_mnist(root, "train")
    test = images.load_fashion_mnist(root, "test")
    assert train.x.shape == (60000, 28, 28, 1) and test.x.shape == (10000, 28, 28, 1)
    assert np.bincount(train.y).tolist() == [6000] * 10 and np.bincount(test.y).tolist() == [1000] * 10
    assert images.FASHION_MNIST_FILES[TRAIN_IMAGES][1] != _md5(Path(root) / "fashion_mnist" / TRAIN_IMAGES)


def test_fashion_mnist_contents_are_checked_whatever_the_gzip(tmp_path):
    """A re-gzipped copy of the real files passes; one changed pixel inside does not."""
    from conftest import SHARED_DATA

    real = Path(os.environ.get("GAN_JAX_DATA") or SHARED_DATA) / "fashion_mnist"
    if not (real / TEST_IMAGES).is_file():
        pytest.skip(f"no Fashion-MNIST under {real.parent}")
    folder = tmp_path / "fashion_mnist"
    folder.mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        (folder / name).write_bytes(gzip.compress(gzip.decompress((real / name).read_bytes()), compresslevel=1))
    assert images.load_fashion_mnist(tmp_path, "test").x.shape == (10000, 28, 28, 1)
    payload = bytearray(gzip.decompress((folder / TEST_IMAGES).read_bytes()))
    payload[5000] ^= 0xFF
    (folder / TEST_IMAGES).write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(DataError, match="or IDX contents with sha256 5b4141f0"):
        images.load_fashion_mnist(tmp_path, "test")


def test_fashion_mnist_falls_back_to_the_system_package(tmp_path, monkeypatch):
    """With nothing under the data root, the folder Debian's package installs into is read (here a stand-in)."""
    system = tmp_path / "usr_share_datasets_fashion_mnist"
    x, y = _write_idx_set(system, 6, "test", seed=3)
    spec = dataclasses.replace(images.FASHION_MNIST, system_dirs=(str(system),))
    data = images.load_idx(spec, tmp_path / "empty_root", "test", verify_checksums=False)
    np.testing.assert_array_equal(data.x[..., 0], x)
    np.testing.assert_array_equal(data.y, y)
    with pytest.raises(DataError, match=f"and in {system}"):
        images.load_idx(spec, tmp_path / "empty_root", "train")

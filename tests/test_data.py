"""Toy mixtures, digits, MNIST IDX parsing and its error messages, and the uint8 <-> [-1, 1] convention."""

import gzip
import hashlib
import io
import itertools
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan_jax.data import images, toy
from gan_jax.errors import DataError

SHARED_DATA = [Path(__file__).resolve().parents[1] / "shared" / "data", Path("/work/shared/data")]
TEST_IMAGES, TEST_LABELS = images.MNIST_SPLITS["test"]
MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ---------------------------------------------------------------- toy mixtures


def test_mixture_means_geometry():
    ring = toy.mixture_means("ring")
    assert ring.shape == (8, 2) and ring.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1.0, atol=1e-6)
    angles = np.sort(np.mod(np.arctan2(ring[:, 1], ring[:, 0]), 2 * np.pi))
    np.testing.assert_allclose(angles, 2 * np.pi * np.arange(8) / 8, atol=1e-6)

    grid = toy.mixture_means("grid")
    assert grid.shape == (25, 2)
    assert {tuple(m) for m in grid.tolist()} == set(itertools.product([-4.0, -2.0, 0.0, 2.0, 4.0], repeat=2))
    pairwise = np.linalg.norm(grid[:, None] - grid[None], axis=-1)
    assert pairwise[~np.eye(25, dtype=bool)].min() == pytest.approx(2.0)

    for name in ("gaussian", "disk"):
        np.testing.assert_array_equal(toy.mixture_means(name), np.zeros((1, 2), np.float32))


def test_unknown_mixture_lists_valid_names():
    with pytest.raises(DataError, match=r"unknown toy mixture 'spiral'.*gaussian, disk, ring, grid"):
        toy.mixture_means("spiral")
    with pytest.raises(DataError, match="spiral"):
        toy.sample_mixture(jax.random.key(0), "spiral", jnp.zeros((1, 2)), 1.0, 4)
    with pytest.raises(DataError, match=r"shape \(K, 2\).*got \(3,\)"):
        toy.sample_mixture(jax.random.key(0), "ring", jnp.zeros(3), 1.0, 4)


@pytest.mark.parametrize(("name", "sigma"), [("ring", 0.02), ("grid", 0.05)])
def test_samples_sit_near_means_and_hit_every_component(name, sigma):
    means = toy.mixture_means(name)
    x = np.asarray(toy.sample_mixture(jax.random.key(1), name, means, sigma, 5000))
    assert x.shape == (5000, 2) and x.dtype == np.float32
    distance = np.linalg.norm(x[:, None] - means[None], axis=-1)
    assert distance.min(axis=1).max() < 5 * sigma
    counts = np.bincount(distance.argmin(axis=1), minlength=len(means))
    expected = 5000 / len(means)
    assert counts.min() > 0.7 * expected and counts.max() < 1.3 * expected


def test_gaussian_has_requested_spread():
    means = toy.mixture_means("gaussian")
    x = np.asarray(toy.sample_mixture(jax.random.key(2), "gaussian", means, 0.5, 20000))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(x.std(axis=0), 0.5, rtol=0.03)


def test_sampling_is_deterministic_per_key_and_jittable():
    means = toy.mixture_means("ring")
    a = toy.sample_mixture(jax.random.key(3), "ring", means, 0.1, 64)
    b = toy.sample_mixture(jax.random.key(3), "ring", means, 0.1, 64)
    c = toy.sample_mixture(jax.random.key(4), "ring", means, 0.1, 64)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))
    # sigma traced inside an outer jit (as in a train step): same result as the eager call.
    step = jax.jit(lambda key, sigma: toy.sample_mixture(key, "ring", jnp.asarray(means), sigma, 64))
    traced = step(jax.random.key(3), jnp.float32(0.1))
    np.testing.assert_allclose(np.asarray(traced), np.asarray(a), atol=1e-6)


def test_disk_is_uniform_in_unit_circle():
    x = np.asarray(toy.sample_mixture(jax.random.key(5), "disk", toy.mixture_means("disk"), 123.0, 20000))
    r = np.linalg.norm(x, axis=1)
    assert r.max() <= 1.0 + 1e-6
    assert np.mean(r < 0.5) == pytest.approx(0.25, abs=0.015)  # area ratio of the inner disk
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.02)


# ---------------------------------------------------------------- digits


@pytest.mark.parametrize("resolution", [8, 32])
def test_digits_shapes_and_ranges(resolution):
    data = images.load_digits(resolution)
    assert data.x.shape == (1797, resolution, resolution, 1) and data.x.dtype == np.uint8
    assert data.y.shape == (1797,) and data.y.dtype == np.int32
    assert set(np.unique(data.y).tolist()) == set(range(10))
    assert data.x.min() == 0 and data.x.max() >= 240
    if resolution == 8:  # 0..16 maps exactly onto 0..255
        assert data.x.max() == 255


def test_digits_rejects_unsupported_resolution():
    with pytest.raises(DataError, match=r"digits resolution 12.*8, 16, 28, 32"):
        images.load_digits(12)


def test_resize_matches_pil_bilinear_and_keeps_labels():
    data = images.load_digits(8)
    small = images.ImageData(x=data.x[:20], y=data.y[:20], name="digits")
    for resolution in (16, 28, 4):
        out = images.resize(small, resolution)
        assert out.x.shape == (20, resolution, resolution, 1) and out.x.dtype == np.uint8
        np.testing.assert_array_equal(out.y, small.y)
        for img, got in zip(small.x[..., 0], out.x[..., 0], strict=True):
            pil = Image.fromarray(img.astype(np.float32)).resize((resolution,) * 2, Image.Resampling.BILINEAR)
            assert np.abs(np.asarray(pil) - got.astype(np.float32)).max() <= 1.0
    assert images.resize(small, 8) is small
    with pytest.raises(DataError, match="positive integer"):
        images.resize(small, 0)


# ---------------------------------------------------------------- image checks and value convention


def test_validate_images_errors():
    images.validate_images(np.zeros((2, 4, 4, 3), np.uint8), "ok")
    with pytest.raises(DataError, match=r"'a'.*4-D NHWC.*x\[\.\.\., None\]"):
        images.validate_images(np.zeros((2, 4, 4), np.uint8), "a")
    with pytest.raises(DataError, match=r"'b'.*uint8.*float32.*to_uint8"):
        images.validate_images(np.zeros((2, 4, 4, 1), np.float32), "b")
    with pytest.raises(DataError, match=r"'c'.*1 or 3 channels.*transpose\(0, 2, 3, 1\)"):
        images.validate_images(np.zeros((2, 3, 4, 4), np.uint8), "c")
    with pytest.raises(DataError, match="'d' are empty"):
        images.validate_images(np.zeros((0, 4, 4, 1), np.uint8), "d")
    with pytest.raises(DataError, match="numpy array"):
        images.validate_images([[1, 2]], "e")
    with pytest.raises(DataError, match="labels of 'f' must be int32 with shape \\(2,\\)"):
        images.ImageData(x=np.zeros((2, 4, 4, 1), np.uint8), y=np.zeros(3, np.int32), name="f")


def test_model_space_round_trip():
    x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    z = images.to_model_space(x)
    assert z.dtype == np.float32 and z.min() == -1.0 and z.max() == 1.0
    np.testing.assert_array_equal(images.to_uint8(z), x)
    np.testing.assert_array_equal(images.to_uint8(np.array([-3.0, 0.0, 3.0])), [0, 128, 255])
    with pytest.raises(DataError, match="uint8"):
        images.to_model_space(z)


def test_resolve_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_JAX_DATA", str(tmp_path / "env"))
    assert images.resolve_data_root(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert images.resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("GAN_JAX_DATA")
    assert images.resolve_data_root(None) == Path.home() / ".cache" / "gan_jax" / "data"


# ---------------------------------------------------------------- MNIST


@pytest.fixture
def shared_root() -> Path:
    for root in SHARED_DATA:
        if (root / "mnist" / TEST_IMAGES).is_file() and (root / "mnist" / TEST_LABELS).is_file():
            return root
    pytest.skip("shared MNIST test files not found")


@pytest.fixture
def mnist_copy(shared_root, tmp_path) -> Path:
    """A writable root holding copies of the MNIST test files, for damaging them."""
    (tmp_path / "mnist").mkdir()
    for name in (TEST_IMAGES, TEST_LABELS):
        shutil.copy(shared_root / "mnist" / name, tmp_path / "mnist" / name)
    return tmp_path


def _rewrite(path: Path, edit) -> None:
    """Apply `edit` to the unpacked IDX bytes and re-gzip, so the damage is inside a valid gzip stream."""
    path.write_bytes(gzip.compress(edit(bytearray(gzip.decompress(path.read_bytes()))), compresslevel=1))


def test_mnist_test_split(shared_root):
    data = images.load_mnist(shared_root, split="test")
    assert data.x.shape == (10000, 28, 28, 1) and data.x.dtype == np.uint8
    assert data.y.dtype == np.int32
    assert np.bincount(data.y, minlength=10).tolist() == MNIST_TEST_CLASS_COUNTS
    assert data.x.max() == 255 and data.x.min() == 0


def test_mnist_root_from_environment(shared_root, monkeypatch):
    monkeypatch.setenv("GAN_JAX_DATA", str(shared_root))
    assert images.load_mnist(None).x.shape[0] == 10000


def test_mnist_missing_file_says_where_and_what(tmp_path):
    with pytest.raises(DataError) as err:
        images.load_mnist(tmp_path, split="test")
    message = str(err.value)
    sha256, md5, _ = images.MNIST_FILES[TEST_IMAGES]
    for part in (
        TEST_IMAGES,
        str(tmp_path / "mnist"),
        sha256,
        md5,
        "data.root=",
        "GAN_JAX_DATA",
        "https://ossci-datasets.s3.amazonaws.com/mnist/" + TEST_IMAGES,
    ):
        assert part in message


def test_mnist_unknown_split(tmp_path):
    with pytest.raises(DataError, match=r"unknown MNIST split 'val'.*train, test"):
        images.load_mnist(tmp_path, split="val")


def test_mnist_bad_magic(mnist_copy):
    _rewrite(mnist_copy / "mnist" / TEST_IMAGES, lambda b: (2049).to_bytes(4, "big") + b[4:])
    with pytest.raises(DataError, match=rf"{TEST_IMAGES} has magic number 2049, expected 2051"):
        images.load_mnist(mnist_copy)


def test_mnist_truncated_payload(mnist_copy):
    _rewrite(mnist_copy / "mnist" / TEST_IMAGES, lambda b: b[: 16 + 5000 * 784])
    with pytest.raises(DataError, match=r"is truncated: the header gives dims \(10000, 28, 28\)"):
        images.load_mnist(mnist_copy)


def test_mnist_truncated_download(mnist_copy):
    path = mnist_copy / "mnist" / TEST_IMAGES
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataError, match=r"not a readable gzip file.*incomplete download"):
        images.load_mnist(mnist_copy)


def test_mnist_count_mismatch(mnist_copy):
    def drop_last_label(b: bytearray) -> bytes:
        return b[:4] + (9999).to_bytes(4, "big") + b[8:-1]

    _rewrite(mnist_copy / "mnist" / TEST_LABELS, drop_last_label)
    with pytest.raises(DataError, match=r"has 10000 images but t10k-labels-idx1-ubyte.gz has 9999 labels"):
        images.load_mnist(mnist_copy)


def test_mnist_corrupted_copy_fails_checksum(mnist_copy):
    def flip_pixel(b: bytearray) -> bytearray:
        b[16 + 400] ^= 0xFF
        return b

    _rewrite(mnist_copy / "mnist" / TEST_IMAGES, flip_pixel)
    sha256 = images.MNIST_FILES[TEST_IMAGES][0]
    with pytest.raises(DataError, match=rf"expected {sha256}.*corrupt or a different version"):
        images.load_mnist(mnist_copy)


def _fake_urlopen(payloads: dict[str, bytes]):
    def urlopen(url, timeout=None):
        if url not in payloads:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return io.BytesIO(payloads[url])

    return urlopen


def test_mnist_download_verifies_and_keeps_good_file(shared_root, tmp_path, monkeypatch):
    mirror = images.MNIST_MIRRORS[1]  # the first mirror is "down": the second one must be tried
    names = (TEST_IMAGES, TEST_LABELS)
    payloads = {mirror + name: (shared_root / "mnist" / name).read_bytes() for name in names}
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen(payloads))
    data = images.load_mnist(tmp_path / "new", download=True)
    assert data.x.shape == (10000, 28, 28, 1)
    stored = (tmp_path / "new" / "mnist" / TEST_IMAGES).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == images.MNIST_FILES[TEST_IMAGES][0]
    assert sorted(p.name for p in (tmp_path / "new" / "mnist").iterdir()) == sorted(names)  # no .part left


def test_mnist_download_deletes_bad_checksum(tmp_path, monkeypatch):
    payloads = {mirror + TEST_IMAGES: b"<html>not mnist</html>" for mirror in images.MNIST_MIRRORS}
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen(payloads))
    with pytest.raises(DataError, match=r"no mirror served the expected file.*download was deleted"):
        images.load_mnist(tmp_path, download=True)
    assert list((tmp_path / "mnist").iterdir()) == []


def test_mnist_download_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", _fake_urlopen({}))
    with pytest.raises(DataError, match=r"could not download t10k-images-idx3-ubyte.gz.*\(offline\?\)"):
        images.load_mnist(tmp_path, download=True)

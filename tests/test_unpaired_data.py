"""data=unpaired: two real image domains (digits, MNIST, an RGB .npz), their held-out splits, channel conversion,
the jitted pair sampler and the one-line errors."""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
import pytest
from conftest import SHARED_DATA, make_config
from PIL import Image

from gan_jax.data import images
from gan_jax.data.source import _sample_images, build_source
from gan_jax.data.unpaired import LUMA, load_domain, split_indices, unpaired_source
from gan_jax.errors import ConfigError, DataError

R = 32


def _data(*overrides: str):
    """The data config `gan-jax-train data=unpaired model=cyclegan <overrides>` runs on (the gan family refuses
    data=unpaired, so the composed config names the translation model)."""
    return make_config("data=unpaired", "model=cyclegan", *overrides).data


def _data_root() -> str:
    """The shared data root, named explicitly: module fixtures run before conftest sets $GAN_JAX_DATA."""
    return os.environ.get("GAN_JAX_DATA") or str(SHARED_DATA)


@pytest.fixture(scope="module")
def digits_mnist():
    """Digits to MNIST, composed as the CLI composes it; built once (MNIST's 10k test images)."""
    return build_source(_data("data.a=digits", "data.b=mnist", f"data.root={_data_root()}"))


@pytest.fixture(scope="module")
def base():
    """A composed data=unpaired config on digits twice (no files): each test varies it."""
    return _data("data.a=digits", "data.b=digits")


@pytest.fixture
def rgb_npz(tmp_path):
    path = tmp_path / "rgb.npz"
    x = np.random.default_rng(0).integers(0, 256, (20, 16, 16, 3), dtype=np.uint8)
    np.savez(path, x=x)
    return path, x


def _originals():
    """Each domain's dataset as its own loader gives it at resolution R: what the splits must index."""
    mnist = images.load_idx(images.MNIST, _data_root(), "test")
    return {"a": images.load_digits(R), "b": images.resize(mnist, R)}


def test_digits_and_mnist_are_split_into_disjoint_labelled_halves(digits_mnist):
    source = digits_mnist
    assert source.kind == "unpaired" and source.name == "digits2mnist"
    assert source.example_shape == (R, R, 1) and source.num_classes is None
    assert set(source.arrays) == {"a", "b"}  # labels never reach the train arrays
    originals = _originals()
    for d, size in (("a", 1797), ("b", 10000)):
        dom, orig = source.info["domains"][d], originals[d]
        assert dom.name == {"a": "digits", "b": "mnist"}[d]
        assert dom.train.x.shape[1:] == dom.test.x.shape[1:] == (R, R, 1)
        assert source.arrays[d].dtype == np.uint8 and source.arrays[d].shape == dom.train.x.shape
        np.testing.assert_array_equal(np.asarray(source.arrays[d]), dom.train.x)
        assert len(dom.test_index) == round(size * 0.2) and len(dom.train_index) + len(dom.test_index) == size
        assert not set(dom.train_index) & set(dom.test_index)
        np.testing.assert_array_equal(np.sort(np.concatenate([dom.train_index, dom.test_index])), np.arange(size))
        for part, index in ((dom.train, dom.train_index), (dom.test, dom.test_index)):
            np.testing.assert_array_equal(part.x, orig.x[index])
            np.testing.assert_array_equal(part.y, orig.y[index])


def test_split_depends_on_split_seed_only(base):
    first, again = load_domain(base, "a"), load_domain(dataclasses.replace(base), "a")
    np.testing.assert_array_equal(first.test_index, again.test_index)
    np.testing.assert_array_equal(first.test.x, again.test.x)
    other = load_domain(dataclasses.replace(base, split_seed=1), "a")
    assert len(other.test_index) == len(first.test_index)
    assert not np.array_equal(other.test_index, first.test_index)
    train, test = split_indices(1797, 0.2, 0)
    np.testing.assert_array_equal(test, first.test_index)
    np.testing.assert_array_equal(train, first.train_index)


def test_sample_is_jittable_deterministic_and_independent_per_domain(base):
    source = build_source(base)  # digits in both domains: equal arrays, so equal draws would show
    sample = jax.jit(source.sample, static_argnums=2)
    batch = sample(source.arrays, jax.random.key(0), 64)
    assert set(batch) == {"a", "b"}
    for x in batch.values():
        assert x.shape == (64, R, R, 1) and x.dtype == np.float32
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert not np.array_equal(np.asarray(batch["a"]), np.asarray(batch["b"]))
    same = sample(source.arrays, jax.random.key(0), 64)
    other = sample(source.arrays, jax.random.key(1), 64)
    for d in ("a", "b"):
        np.testing.assert_array_equal(np.asarray(batch[d]), np.asarray(same[d]))
        assert not np.array_equal(np.asarray(batch[d]), np.asarray(other[d]))
    key_b = jax.random.fold_in(jax.random.key(0), 1)
    expected_b = _sample_images({"x": source.arrays["b"]}, key_b, 64)["x"]
    np.testing.assert_allclose(np.asarray(batch["b"]), np.clip(np.asarray(expected_b), -1, 1), atol=1e-6)


def test_hflip_is_allowed_and_mirrors_some_draws():
    cfg = _data("data.a=digits", "data.b=digits", "data.hflip=true")
    flipped = build_source(cfg)
    plain = build_source(dataclasses.replace(cfg, hflip=False))
    key = jax.random.key(3)
    got = jax.jit(flipped.sample, static_argnums=2)(flipped.arrays, key, 64)
    ref = jax.jit(plain.sample, static_argnums=2)(plain.arrays, key, 64)  # jitted both: the same float rounding
    for d in ("a", "b"):
        x, y = np.asarray(got[d]), np.asarray(ref[d])
        same = np.all(x == y, axis=(1, 2, 3))
        mirrored = np.all(x == y[:, :, ::-1], axis=(1, 2, 3))
        assert np.all(same | mirrored) and 0 < int((~same).sum()) < 64


def test_grey_and_rgb_domains_meet_at_three_channels_by_default(base, rgb_npz):
    path, x = rgb_npz
    source = build_source(dataclasses.replace(base, b="npz", b_path=str(path)))
    assert source.example_shape == (R, R, 3) and source.name == "digits2rgb"
    a, b = source.info["domains"]["a"], source.info["domains"]["b"]
    digits = images.load_digits(R).x
    np.testing.assert_array_equal(a.train.x, np.repeat(digits[a.train_index], 3, axis=-1))
    assert len(b.test_index) == 4 and len(b.train_index) == 16 and b.train.y is None
    resized = images.resize(images.ImageData(x=x, y=None, name="rgb"), R).x
    np.testing.assert_array_equal(b.train.x, resized[b.train_index])
    assert source.arrays["a"].shape == (len(a.train_index), R, R, 3)


def test_channels_1_turns_rgb_into_luma(base, rgb_npz):
    path, x = rgb_npz
    source = build_source(dataclasses.replace(base, a="npz", a_path=str(path), channels=1))
    assert source.example_shape == (R, R, 1)
    a = source.info["domains"]["a"]
    resized = images.resize(images.ImageData(x=x, y=None, name="rgb"), R).x
    luma = np.clip(np.rint(resized.astype(np.float64) @ LUMA), 0, 255).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(a.test.x, luma[a.test_index])
    pil = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in resized[a.test_index]])
    assert np.abs(a.test.x[..., 0].astype(int) - pil).max() <= 1  # PIL's fixed-point luma, same weights


def _one_line_error(cfg, kind, match):
    with pytest.raises(kind, match=match) as err:
        build_source(cfg)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(
    ("change", "kind", "match"),
    [
        ({"a": None}, ConfigError, r"data=unpaired needs data\.a=<dataset> and data\.b=<dataset> .*digits.*mnist"),
        ({"b": None}, ConfigError, r"needs data\.a=<dataset> and data\.b=<dataset> \(data\.b not set"),
        ({"a": "ring"}, ConfigError, r"data\.a=ring is not an image dataset \(its kind is toy\).*from: .*digits"),
        ({"a": "csv"}, ConfigError, r"data\.a=csv is not an image dataset \(its kind is table\).*choose data\.a from"),
        ({"b": "unpaired"}, ConfigError, r"data\.b=unpaired is not an image dataset \(its kind is unpaired\).*from"),
        ({"a": "nosuch"}, ConfigError, r"data\.a='nosuch' is not a known dataset.*choose one of: .*mnist"),
        ({"b": "mnsit"}, ConfigError, r"data\.b='mnsit' is not a known dataset \(did you mean mnist\?\)"),
        ({"a": "npz"}, ConfigError, r"data\.a=npz needs data\.a_path=FILE\.npz"),
        ({"channels": 2}, ConfigError, r"data\.channels=2 must be 1 \(grey\), 3 \(RGB\) or 0"),
        ({"test_fraction": 0.0}, ConfigError, r"data\.test_fraction=0\.0 must be in \(0, 1\).*0\.2"),
        ({"test_fraction": 1.0}, ConfigError, r"data\.test_fraction=1\.0 must be in \(0, 1\)"),
        ({"test_fraction": 0.0001}, ConfigError, r"leaves no test image of data\.a=digits \(1797 images\); choose"),
        ({"test_fraction": 0.9999}, ConfigError, r"leaves no train image of data\.a=digits.*choose a fraction"),
        ({"resolution": 4}, ConfigError, r"data\.resolution=4 must be an integer >= 8.*data\.resolution=32"),
        ({"resolution": 16.5}, ConfigError, r"data\.resolution=16\.5 must be an integer"),
        ({"resolution": True}, ConfigError, r"data\.resolution=True must be an integer"),
    ],
)
def test_config_errors_are_one_line_with_the_fix(base, change, kind, match):
    _one_line_error(dataclasses.replace(base, **change), kind, match)


def test_composed_config_without_domains_fails_at_composition():
    """The family's check runs the data checks that need no loading, so the error comes before any data is read."""
    with pytest.raises(ConfigError, match=r"data\.a and data\.b not set; image datasets") as err:
        _data()
    assert "\n" not in str(err.value)


def test_tiny_npz_domain_cannot_be_split(base, tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, x=np.zeros((1, 16, 16, 3), np.uint8))
    cfg = dataclasses.replace(base, b="npz", b_path=str(path))
    _one_line_error(cfg, DataError, r"data\.b=npz \(one\.npz\) has 1 image\(s\).*at least 2 images")
    with pytest.raises(ConfigError, match=r"leaves no test image of data\.b=npz \(2 images\)"):
        np.savez(path, x=np.zeros((2, 16, 16, 3), np.uint8))
        build_source(dataclasses.replace(cfg, test_fraction=0.2))


def test_loader_errors_pass_through_unchanged(base, tmp_path):
    """A missing MNIST file: the same message as data=mnist gives (the file, where it looked, its checksum)."""
    with pytest.raises(DataError) as direct:
        build_source(dataclasses.replace(base, name="mnist", root=str(tmp_path)))
    message = _one_line_error(dataclasses.replace(base, b="mnist", root=str(tmp_path)), DataError, "not found")
    assert message == str(direct.value) and "t10k-images-idx3-ubyte.gz" in message and "sha256" in message
    with pytest.raises(DataError, match="unknown MNIST split 'val'"):
        unpaired_source(dataclasses.replace(base, a="mnist", a_split="val"))

"""Stacked MNIST and the image mode-collapse / memorization diagnostics on inputs whose answers are known."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from gan_jax.data.images import load_mnist
from gan_jax.data.stacked import stacked_mnist
from gan_jax.errors import DataError
from gan_jax.metrics import (
    class_histogram_diagnostics,
    feature_diversity,
    near_duplicate_rate,
    nearest_real_distance,
    stacked_channel_labels,
    stacked_mnist_diagnostics,
)
from gan_jax.metrics.image_modes import nearest_neighbours


def coded_digits(n_per_digit=3, size=6):
    """Images whose pixel value encodes their label (25 * label + copy index), so channels can be decoded."""
    labels = np.repeat(np.arange(10), n_per_digit).astype(np.int32)
    values = 25 * labels + np.tile(np.arange(n_per_digit), 10)
    return np.broadcast_to(values[:, None, None, None], (len(labels), size, size, 1)).astype(np.uint8), labels


def decode(images):
    return images[..., 0, 0, :].astype(np.int64) // 25  # (n, 3) digit per channel


def test_stacked_mnist_labels_are_the_channel_digits():
    images, labels = coded_digits()
    x, y = stacked_mnist(images, labels, 2000, seed=0)
    assert x.shape == (2000, 6, 6, 3) and x.dtype == np.uint8 and y.dtype == np.int32
    np.testing.assert_array_equal(y, decode(x) @ [100, 10, 1])
    np.testing.assert_array_equal(x, stacked_mnist(images, labels, 2000, seed=0)[0])
    assert not np.array_equal(y, stacked_mnist(images, labels, 2000, seed=1)[1])
    # the channels come from independent draws: all (a, b) pairs show up
    assert len({(a, b) for a, b, _ in decode(x)}) == 100


def test_stacked_channel_labels_classifies_each_channel():
    images, labels = coded_digits()
    x, y = stacked_mnist(images, labels, 200, seed=1)
    calls = []

    def classify(grey):
        calls.append(grey.shape)
        return grey[:, 0, 0, 0].astype(np.int64) // 25

    channels = stacked_channel_labels(classify, x)
    assert calls == [(600, 6, 6, 1)]
    np.testing.assert_array_equal(channels @ [100, 10, 1], y)


def test_stacked_mnist_from_the_real_test_set():
    try:
        mnist = load_mnist(None, "test")
    except DataError as e:
        pytest.skip(f"MNIST not available: {e}")
    x, y = stacked_mnist(mnist.x, mnist.y, 20_000, seed=0)
    assert x.shape == (20_000, 28, 28, 3) and y.min() >= 0 and y.max() <= 999
    by_bytes = {img.tobytes(): int(label) for img, label in zip(mnist.x[..., 0], mnist.y, strict=True)}
    for img, label in zip(x[:100], y[:100], strict=True):
        digits = [by_bytes[np.ascontiguousarray(img[..., c]).tobytes()] for c in range(3)]
        assert 100 * digits[0] + 10 * digits[1] + digits[2] == label
    # true labels of real Stacked MNIST cover (nearly) every mode with a small KL to uniform
    result = stacked_mnist_diagnostics(np.stack([y // 100, y // 10 % 10, y % 10], axis=1))
    assert result["modes_covered"] >= 995 and result["kl"] < 0.05


def test_stacked_mnist_diagnostics_all_modes_against_collapse():
    every = np.array(list(itertools.product(range(10), repeat=3)))
    full = stacked_mnist_diagnostics(np.tile(every, (3, 1)))
    assert full == {"modes_covered": 1000, "num_modes": 1000, "kl": pytest.approx(0.0, abs=1e-12)}
    collapsed = stacked_mnist_diagnostics(np.tile([[3, 1, 4]], (3000, 1)))
    assert collapsed["modes_covered"] == 1 and collapsed["kl"] == pytest.approx(np.log(1000))
    half = stacked_mnist_diagnostics(every[every[:, 0] < 5])  # 500 modes, uniform among them
    assert half["modes_covered"] == 500 and half["kl"] == pytest.approx(np.log(2))


def test_class_histogram_diagnostics_against_a_data_histogram():
    balanced = class_histogram_diagnostics(np.arange(1000) % 10, 10)
    assert balanced == {"modes_covered": 10, "num_modes": 10, "reverse_kl": 0.0, "forward_kl": 0.0}
    collapsed = class_histogram_diagnostics(np.full(100, 7), 10)
    assert collapsed["modes_covered"] == 1
    assert collapsed["reverse_kl"] == pytest.approx(np.log(10)) and collapsed["forward_kl"] == np.inf
    data = np.array([2, 1, 1, 0])  # the data never shows class 3
    match = class_histogram_diagnostics(np.array([0, 0, 1, 2] * 5), 4, data)
    assert match["reverse_kl"] == pytest.approx(0.0, abs=1e-12) and match["forward_kl"] == pytest.approx(0.0)
    off_support = class_histogram_diagnostics(np.array([0, 1, 2, 3]), 4, data)
    assert off_support["reverse_kl"] == np.inf and off_support["modes_covered"] == 4
    with pytest.raises(DataError, match=r"0\.\.9"):
        class_histogram_diagnostics(np.array([0, 10]), 10)


def test_near_duplicate_rate_finds_planted_duplicates():
    x = np.random.default_rng(0).normal(size=(100, 32))
    assert near_duplicate_rate(x, threshold=1.0) == 0.0  # random 32-d points are ~8 apart
    x[90:] = x[:10]  # 10 exact copies: 20 samples have a duplicate
    assert near_duplicate_rate(x, threshold=0.0) == pytest.approx(0.2)
    x[80:90] = x[10:20] + 0.01  # 10 near copies
    assert near_duplicate_rate(x, threshold=0.0) == pytest.approx(0.2)
    assert near_duplicate_rate(x, threshold=0.1) == pytest.approx(0.4)
    images = np.zeros((4, 5, 5, 1), np.uint8)  # images are flattened; all four identical
    assert near_duplicate_rate(images, threshold=0.0) == 1.0


def test_nearest_neighbours_exclude_the_point_itself():
    x = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    index, dist = nearest_neighbours(x)
    np.testing.assert_array_equal(index, [2, 0, 0])
    np.testing.assert_allclose(dist, [1.0, 3.0, 1.0])


def test_memorization_detects_copies_of_training_images():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(600, 8))
    fresh = nearest_real_distance(rng.normal(size=(300, 8)), real)
    assert 0.8 < fresh["ratio"] < 1.25 and fresh["copy_fraction"] < 0.05
    copies = nearest_real_distance(real[:300] + 1e-3 * rng.normal(size=(300, 8)), real)
    assert copies["ratio"] < 0.01 and copies["copy_fraction"] == 1.0 and copies["nn_min"] < 0.01
    exact = nearest_real_distance(real[:10], real)
    assert exact["nn_min"] == 0.0 and exact["nn_mean"] == 0.0
    half = nearest_real_distance(np.concatenate([real[:150], rng.normal(size=(150, 8))]), real)
    assert 0.45 < half["copy_fraction"] < 0.6


def test_feature_diversity_is_the_mean_pairwise_distance():
    x = np.random.default_rng(2).normal(size=(50, 6))
    assert feature_diversity(x) == pytest.approx(pdist(x).mean(), rel=1e-9)
    assert feature_diversity(np.tile(x[:1], (20, 1))) == pytest.approx(0.0, abs=1e-6)
    assert feature_diversity(2 * x) == pytest.approx(2 * feature_diversity(x), rel=1e-9)

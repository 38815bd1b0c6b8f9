"""The Fashion-MNIST classifier behind classifier_fid / classes on data=fashion_mnist: trained on the train split
only, scored on the test split, cached, and its FID tells real clothing from noise.

Trains with STEPS steps (the default is DEFAULT_STEPS["fashion_mnist"]) at 28 px, so the file stays well under a
minute on two CPU cores; skipped when the Fashion-MNIST files are not under $GAN_JAX_DATA (or ../shared/data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA

from gan_jax.data.images import FASHION_MNIST_SYSTEM_DIRS, load_fashion_mnist
from gan_jax.errors import ConfigError
from gan_jax.metrics import classifier as clf
from gan_jax.metrics.evaluator import ImageEvaluator, check_metrics, default_image_metrics

STEPS = 300  # measured: 0.811 test accuracy at 28 px (0.825 at 400 steps; 0.892 at the default 2000 and 32 px)
MIN_ACCURACY = 0.78
RESOLUTION = 28  # the files' own size: no resize of 70k images
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")  # fmt: skip


@pytest.fixture(scope="module")
def fashion():
    """(data root, train split, test split), or a skip naming where the files were looked for."""
    root = Path(os.environ.get("GAN_JAX_DATA") or SHARED_DATA)
    folders = [root / "fashion_mnist", *map(Path, FASHION_MNIST_SYSTEM_DIRS)]  # where load_fashion_mnist looks
    if not any(all((folder / name).is_file() for name in FILES) for folder in folders):
        pytest.skip(f"Fashion-MNIST not available: no {', '.join(FILES)} in {' or '.join(map(str, folders))}")
    return root, load_fashion_mnist(root, "train"), load_fashion_mnist(root, "test")


@pytest.fixture(scope="module")
def trained(fashion, tmp_path_factory):
    """The classifier at STEPS steps in a fresh cache, with the images it was trained on recorded."""
    root, _, _ = fashion
    cache = tmp_path_factory.mktemp("cache")
    seen = []

    def spy(images, labels, *args, **kwargs):
        seen.append((np.asarray(images), np.asarray(labels)))
        return train_classifier(images, labels, *args, **kwargs)

    train_classifier = clf.train_classifier
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clf, "train_classifier", spy)
        model = clf.load_or_train_classifier("fashion_mnist", RESOLUTION, 0, cache, steps=STEPS, data_root=root)
    return model, cache, seen


def test_trains_on_the_train_split_and_scores_the_test_split(fashion, trained):
    _, train, test = fashion
    model, _, seen = trained
    assert len(seen) == 1
    images, labels = seen[0]
    np.testing.assert_array_equal(images, train.x)  # all 60k training images, none of the test split
    np.testing.assert_array_equal(labels, train.y)
    assert model.accuracy >= MIN_ACCURACY
    assert clf.accuracy(model.params, test.x, test.y) == pytest.approx(model.accuracy)
    meta = json.loads(model.path.with_suffix(".json").read_text())
    assert (meta["num_train"], meta["num_holdout"], meta["holdout_fraction"]) == (60000, 10000, 0.0)
    assert (meta["train_data"], meta["heldout_data"]) == ("fashion_mnist-train", "fashion_mnist-test")
    assert meta["steps"] == STEPS


def test_cached_weights_are_reloaded_without_training(fashion, trained, monkeypatch):
    root, _, _ = fashion
    model, cache, _ = trained

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(clf, "train_classifier", no_training)
    again = clf.load_or_train_classifier("fashion_mnist", RESOLUTION, 0, cache, steps=STEPS, data_root=root)
    assert (again.weights_sha256, again.accuracy, again.path) == (model.weights_sha256, model.accuracy, model.path)


def test_classifier_fid_of_real_test_images_is_far_below_noise(fashion, trained, monkeypatch):
    """The evaluator a data=fashion_mnist run builds (reference: train images), scoring the real test split and
    uniform noise; the classifier comes from the cache the fixture filled (same steps, same key). Measured at
    STEPS: classifier_fid 0.13 for test vs train, 337 for noise. (No KID here: 100 subsets cost ~5 s a call.)"""
    root, train, test = fashion
    model, cache, _ = trained
    monkeypatch.setitem(clf.DEFAULT_STEPS, "fashion_mnist", STEPS)
    metrics = ["classifier_fid", "classes"]
    evaluator = ImageEvaluator("fashion_mnist", "train", train, metrics, str(cache), str(root), num_real=5000)
    real, protocol = evaluator(test.x)
    noise = np.random.default_rng(0).integers(0, 256, (2000, RESOLUTION, RESOLUTION, 1), dtype=np.uint8)
    fake, _ = evaluator(noise)
    assert protocol["classifier"]["weights_sha256"] == model.weights_sha256
    assert protocol["classifier"]["split"] == "train[random 5000, seed 0]"
    assert real["classes_covered"] == 10 and real["class_reverse_kl"] < 0.05
    assert real["classifier_fid"] < 1.0 and real["classifier_fid"] * 100 < fake["classifier_fid"]


def test_auto_metrics_and_errors_name_fashion_mnist():
    from conftest import make_config

    from gan_jax.evaluation import image_metric_names

    auto = ["classifier_fid", "classifier_kid", "classes"]
    assert default_image_metrics("fashion_mnist") == auto
    assert image_metric_names(make_config("data=fashion_mnist", "model=dcgan")) == auto  # eval.metrics=auto
    conditional = make_config("data=fashion_mnist", "model=dcgan", "model.conditioning=cgan")
    assert image_metric_names(conditional) == [*auto, "class_accuracy"]
    check_metrics(["classifier_fid", "classifier_kid", "classes", "class_accuracy", "duplicates"], "fashion_mnist")
    with pytest.raises(ConfigError, match=r"digits, mnist, fashion_mnist, stacked_mnist, not data=cifar10"):
        check_metrics(["classifier_fid"], "cifar10")
    with pytest.raises(ConfigError, match="digits, mnist, fashion_mnist"):
        clf.load_or_train_classifier("cifar10", 32)

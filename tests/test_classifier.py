"""The digit classifier: accurate on held-out digits, reproducible from its seed, cached and reloaded intact."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gan_jax.data.images import load_digits, to_model_space
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import classifier as clf


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Sklearn digits at 8 px with half the default steps (the test budget), cached in a fresh directory."""
    cache = tmp_path_factory.mktemp("cache")
    return clf.load_or_train_classifier("digits", 8, seed=0, cache_dir=cache, steps=150), cache


def test_heldout_accuracy_on_digits(trained):
    model, _ = trained
    assert model.accuracy >= 0.9
    data = load_digits(8)
    _, holdout = clf.holdout_split(len(data.x), 0.2, seed=0)
    assert clf.accuracy(model.params, data.x[holdout], data.y[holdout]) == pytest.approx(model.accuracy)


def test_cache_round_trip_loads_identical_weights_without_training(trained, monkeypatch):
    model, cache = trained
    assert model.path.is_file() and model.path.parent == cache / "classifiers"

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(clf, "train_classifier", no_training)
    again = clf.load_or_train_classifier("digits", 8, seed=0, cache_dir=cache, steps=150)
    assert again.weights_sha256 == model.weights_sha256 and again.accuracy == model.accuracy
    jax.tree.map(np.testing.assert_array_equal, again.params, model.params)
    x = load_digits(8).x[:50]
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_damaged_cache_entry_is_retrained(trained, tmp_path):
    model, _ = trained
    small = clf.load_or_train_classifier("digits", 8, seed=0, cache_dir=tmp_path, steps=5)
    small.path.write_bytes(small.path.read_bytes()[:-10])  # truncated weights: the checksum no longer matches
    again = clf.load_or_train_classifier("digits", 8, seed=0, cache_dir=tmp_path, steps=5)
    assert again.weights_sha256 == small.weights_sha256  # retrained to the same weights, and rewritten
    assert small.path != model.path  # the step count is part of the cache key


def test_same_seed_gives_identical_params_and_another_seed_does_not():
    data = load_digits(8)
    train, _ = clf.holdout_split(len(data.x), 0.2, seed=0)
    x, y = data.x[train], data.y[train]  # the fixture's shapes: no new compilation
    a = clf.train_classifier(x, y, seed=3, steps=10)
    b = clf.train_classifier(x, y, seed=3, steps=10)
    c = clf.train_classifier(x, y, seed=4, steps=10)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["Dense_1"]["kernel"], c["Dense_1"]["kernel"])


def test_uint8_and_model_space_inputs_agree_and_features_have_128_dims(trained):
    model, _ = trained
    x = load_digits(8).x[:64]
    labels, probs = clf.classify(model.params, x)
    labels_f, _ = clf.classify(model.params, to_model_space(x))
    np.testing.assert_array_equal(labels, labels_f)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    feats = clf.classifier_features(model.params, x)
    assert feats.shape == (64, clf.FEATURE_DIM) and (feats >= 0).all()
    # batching (with a padded last batch) does not change the outputs
    logits, _ = clf.classifier_outputs(model.params, x, batch_size=64)
    logits_b, _ = clf.classifier_outputs(model.params, x, batch_size=25)
    np.testing.assert_allclose(logits, logits_b, rtol=1e-5, atol=1e-5)


def test_bad_inputs_name_the_fix():
    with pytest.raises(DataError, match="Stacked-MNIST"):
        clf.classify({}, np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ConfigError, match="digits, mnist"):
        clf.load_or_train_classifier("cifar", 32)
    with pytest.raises(DataError, match="labels"):
        clf.train_classifier(np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 2, 10]), seed=0, steps=1)

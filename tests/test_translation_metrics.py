"""Translation metrics on real digits: label preservation, its baselines, classifier FID/KID, cycle L1, the cache.

Two "domains" from scikit-learn's digits at 16 px: the digits and their inverted copies (255 - x), split by one
seeded permutation, so inverting back is a perfect translator and leaving the images alone is the source-only
baseline. Classifiers train for 150 steps (the test budget), cached once per module.
"""

from __future__ import annotations

import json
import time

import jax
import numpy as np
import pytest

from gan_jax.data.images import ImageData, load_digits, to_model_space
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics.translation import TranslationMetrics, cycle_l1, domain_classifier

STEPS = 150
N_TRAIN = 1197  # of 1797: 600 test images per domain


def _domain(x: np.ndarray, y: np.ndarray, name: str, perm: np.ndarray) -> tuple[ImageData, ImageData]:
    train, test = perm[:N_TRAIN], perm[N_TRAIN:]
    return ImageData(x[train], y[train], name), ImageData(x[test], y[test], name)


@pytest.fixture(scope="module")
def digits():
    data = load_digits(16)
    perm = np.random.default_rng(0).permutation(len(data.x))
    normal = _domain(data.x, data.y, "digits", perm)
    inverted = _domain(255 - data.x, data.y, "inverted", perm)
    return normal, inverted


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def identity(digits, cache):
    """A == B: the same labelled digits on both sides (one classifier, trained once and then loaded)."""
    normal, _ = digits
    return TranslationMetrics(normal, normal, classifier_steps=STEPS, cache_dir=cache)


@pytest.fixture(scope="module")
def inverted(digits, cache):
    normal, inv = digits
    return TranslationMetrics(normal, inv, classifier_steps=STEPS, cache_dir=cache)


def test_identity_translation_scores_the_ceiling(identity, digits):
    x = digits[0][1].x
    scores = identity.score(x, x, x, x)
    names = ("label_acc", "cfid", "ckid", "cycle_l1", "source_only_acc", "source_only_cfid", "source_only_ckid")
    expected = {f"{d}_{m}" for d in ("a2b", "b2a") for m in names} | {"a_ceiling_acc", "b_ceiling_acc"}
    assert set(scores) == expected and all(type(v) is float for v in scores.values())
    assert scores["b_ceiling_acc"] >= 0.85
    for d in ("a2b", "b2a"):
        assert scores[f"{d}_label_acc"] == scores[f"{d}_source_only_acc"] == scores["b_ceiling_acc"]
        # identical feature sets: FID 0 up to round-off; the unbiased KID of a set against itself is <= 0
        assert scores[f"{d}_cfid"] < 1e-6 and scores[f"{d}_ckid"] <= 0.0
        assert scores[f"{d}_cycle_l1"] == 0.0
    # one training: the second domain's classifier has the same data, so it is loaded from the cache
    a, b = identity.classifier("a"), identity.classifier("b")
    assert a.weights_sha256 == b.weights_sha256 and {a.from_cache, b.from_cache} == {True, False}


def test_inverting_back_recovers_the_ceiling_and_doing_nothing_does_not(inverted, digits):
    (_, a_test), (_, b_test) = digits
    scores = inverted.score(255 - a_test.x, 255 - b_test.x)
    assert "a2b_cycle_l1" not in scores and "b2a_cycle_l1" not in scores
    for d, target in (("a2b", "b"), ("b2a", "a")):
        ceiling = scores[f"{target}_ceiling_acc"]
        assert ceiling >= 0.85
        assert scores[f"{d}_source_only_acc"] < ceiling - 0.3  # the other domain's classifier fails on raw images
        assert abs(scores[f"{d}_label_acc"] - ceiling) <= 0.02
        assert scores[f"{d}_cfid"] < 0.1 * scores[f"{d}_source_only_cfid"]
        assert scores[f"{d}_ckid"] < 0.1 * scores[f"{d}_source_only_ckid"]
    assert inverted.baselines() == {k: v for k, v in scores.items() if "source_only" in k or "ceiling" in k}


def test_a_translation_that_changes_the_digit_loses_label_accuracy(identity, digits):
    test = digits[0][1]
    by_class = {c: np.flatnonzero(test.y == c) for c in range(10)}
    other = np.array([by_class[(c + 1) % 10][i % len(by_class[(c + 1) % 10])] for i, c in enumerate(test.y)])
    scrambled = test.x[other]  # each image replaced by a test image of the next class
    scores = identity.score(scrambled, scrambled)
    assert scores["a2b_label_acc"] < 0.2 < scores["a2b_source_only_acc"]


def test_cycle_l1_is_the_mean_absolute_error_in_model_space(identity, digits):
    x = digits[0][1].x
    rng = np.random.default_rng(1)
    rec = np.clip(x.astype(np.int32) + rng.integers(-40, 41, x.shape), 0, 255).astype(np.uint8)
    by_hand = np.abs(x.astype(np.float64) / 127.5 - rec.astype(np.float64) / 127.5).mean()
    assert by_hand > 0.05
    scores = identity.score(x, x, rec_a=x, rec_b=rec)
    assert scores["a2b_cycle_l1"] == 0.0
    assert scores["b2a_cycle_l1"] == pytest.approx(by_hand, rel=1e-6)
    rec_float = np.clip(to_model_space(x) + 0.25, -1.0, 1.0)
    by_hand_float = np.abs(x / 127.5 - 1.0 - rec_float.astype(np.float64)).mean()
    assert cycle_l1(x, rec_float) == pytest.approx(by_hand_float, rel=1e-6)
    assert cycle_l1(to_model_space(x), rec) == pytest.approx(by_hand, rel=1e-6)


def test_uint8_and_model_space_inputs_give_the_same_scores(inverted, digits):
    (_, a_test), (_, b_test) = digits
    a2b, b2a = 255 - a_test.x, (255 - b_test.x) // 2 + 60  # an imperfect b2a, so the scores are not trivial
    as_uint8 = inverted.score(a2b, b2a, rec_a=a_test.x // 2, rec_b=b_test.x)
    as_float = inverted.score(to_model_space(a2b), to_model_space(b2a), to_model_space(a_test.x // 2), b_test.x)
    assert as_uint8 == as_float


def test_three_channels_and_labels_past_nine(digits, cache):
    rgb = tuple(ImageData(np.repeat(d.x, 3, axis=-1), d.y + 3, "digits_rgb") for d in digits[0])
    metrics = TranslationMetrics(rgb, rgb, classifier_steps=STEPS, cache_dir=cache)
    x = rgb[1].x
    scores = metrics.score(x, to_model_space(x))
    clf = metrics.classifier("b")
    assert clf.num_classes == 13 and clf.params["Conv_0"]["kernel"].shape[2] == 3
    assert scores["b_ceiling_acc"] >= 0.85 and scores["a2b_label_acc"] == scores["b_ceiling_acc"]
    assert metrics.protocol()["channels"] == 3
    with pytest.raises(DataError, match="a2b must have shape"):
        metrics.score(digits[0][1].x, x)  # grey translations for an RGB domain


def test_classifier_cache_loads_retrains_on_new_data_and_on_corruption(tmp_path):
    data = load_digits(8)
    train, test = ImageData(data.x[:400], data.y[:400], "digits"), ImageData(data.x[400:600], data.y[400:600], "d")
    first = domain_classifier(train, test, steps=60, cache_dir=tmp_path)
    assert not first.from_cache and first.path.parent == tmp_path / "classifiers"
    assert first.path.name.startswith("domain-digits-8px-") and first.path.with_suffix(".json").is_file()
    start = time.perf_counter()
    again = domain_classifier(train, test, steps=60, cache_dir=tmp_path)
    assert again.from_cache and time.perf_counter() - start < first.train_seconds
    assert again.weights_sha256 == first.weights_sha256 and again.path == first.path
    assert again.test_accuracy == first.test_accuracy
    jax.tree.map(np.testing.assert_array_equal, again.params, first.params)

    x = train.x.copy()
    x[0] = 255 - x[0]  # one image differs: another key, another file
    other = domain_classifier(ImageData(x, train.y, "digits"), test, steps=60, cache_dir=tmp_path)
    assert not other.from_cache and other.path != first.path and first.path.is_file()

    first.path.write_bytes(b"not msgpack")
    repaired = domain_classifier(train, test, steps=60, cache_dir=tmp_path)
    assert not repaired.from_cache and repaired.weights_sha256 == first.weights_sha256  # deterministic retraining
    first.path.with_suffix(".json").write_text("{")
    assert not domain_classifier(train, test, steps=60, cache_dir=tmp_path).from_cache
    assert domain_classifier(train, test, steps=60, cache_dir=tmp_path).from_cache  # rewritten intact
    meta = json.loads(first.path.with_suffix(".json").read_text())
    assert meta["weights_sha256"] == first.weights_sha256 and meta["num_train"] == 400


def test_unlabelled_domains_and_misshapen_inputs_are_one_line_errors(identity, digits, tmp_path):
    normal = digits[0]
    photos = ImageData(normal[0].x, None, "photos")
    for call in (
        lambda: domain_classifier(photos, normal[1], steps=5, cache_dir=tmp_path),
        lambda: TranslationMetrics((photos, normal[1]), normal, cache_dir=tmp_path),
    ):
        with pytest.raises(ConfigError, match=r"photos.*eval\.metrics=\[cycle_l1\]") as err:
            call()
        assert "\n" not in str(err.value) and "label" in str(err.value)
    x = normal[1].x
    bad = [
        ((x[:-1], x), "a2b must have shape"),
        ((x, x[:, :8]), "b2a must have shape"),
        ((x, x, x.astype(np.float32)), "outside \\[-1, 1\\]"),
        ((x, x, None, x.astype(np.int64)), "rec_b must be uint8"),
    ]
    for args, message in bad:
        with pytest.raises(DataError, match=message) as err:
            identity.score(*args)
        assert "\n" not in str(err.value)
    small = tuple(ImageData(d.x[:, :8, :8], d.y, d.name) for d in normal)
    with pytest.raises(DataError, match="one size and channel count"):
        TranslationMetrics(normal, small, cache_dir=tmp_path)


def test_protocol_names_the_weights_and_splits(inverted):
    protocol = inverted.protocol()
    json.dumps(protocol)  # a table's metadata: plain JSON
    for letter in ("a", "b"):
        clf = inverted.classifier(letter)
        assert protocol["classifiers"][letter]["weights_sha256"] == clf.weights_sha256
        assert protocol["classifiers"][letter]["test_accuracy"] == clf.test_accuracy
    assert protocol["classifiers"]["a"]["weights_sha256"] != protocol["classifiers"]["b"]["weights_sha256"]
    sizes = {key: protocol[key] for key in ("n_a_test", "n_b_test", "resolution", "channels")}
    assert sizes == {"n_a_test": 600, "n_b_test": 600, "resolution": 16, "channels": 1}
    assert protocol["classifier"]["steps"] == STEPS and protocol["kid"]["subset_size"] == {"a2b": 600, "b2a": 600}

"""FID, KID, IS and PRDC on fixed random features against scipy / `prdc` / direct formulas; the stats cache."""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings

import numpy as np
import pytest
import scipy.linalg

from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import feature_stats, fid, frechet_distance, inception_score, kid, prdc
from gan_jax.metrics.kid import polynomial_mmd2
from gan_jax.metrics.reference_stats import load_or_compute, make_spec, stats_key

compute_prdc = pytest.importorskip("prdc").compute_prdc
prdc_module = importlib.import_module("gan_jax.metrics.prdc")  # `gan_jax.metrics.prdc` is the function


def scipy_fid(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's `calculate_frechet_distance` (scipy.linalg.sqrtm of the product, eps offset if singular)."""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def features(seed, n, d, scale=1.0, shift=0.0, correlated=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if correlated:
        x = x @ rng.normal(size=(d, d)) / np.sqrt(d)
    return (x * scale + shift).astype(np.float32)


@pytest.mark.parametrize(
    ("n", "d"),
    [(600, 32), (2000, 64), (40, 64)],  # the last: fewer samples than dimensions, so both covariances are singular
)
def test_fid_matches_scipy_sqrtm_formula(n, d):
    real = features(0, n, d, correlated=True)
    fake = features(1, n, d, scale=1.3, shift=0.2)
    expected = scipy_fid(*feature_stats(real), *feature_stats(fake))
    assert fid(real, fake) == pytest.approx(expected, rel=1e-6)
    assert np.linalg.matrix_rank(feature_stats(real)[1]) == min(n - 1, d)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    real = features(2, 500, 16, correlated=True)
    trace = np.trace(feature_stats(real)[1])
    assert fid(real, real) <= 1e-9 * trace
    assert fid(real, real + 0.5) == pytest.approx(16 * 0.25, rel=1e-5)  # a mean shift adds |Δμ|² and nothing else


def test_frechet_distance_of_1d_gaussians_has_the_closed_form():
    # W2² of N(m1, s1²) and N(m2, s2²) is (m1 - m2)² + (s1 - s2)².
    got = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-0.5]), np.array([[0.25]]))
    assert got == pytest.approx(1.5**2 + (2.0 - 0.5) ** 2, rel=1e-12)


def test_fid_rejects_mismatched_widths():
    with pytest.raises(DataError, match="same network"):
        fid(features(0, 10, 4), features(1, 10, 5))


def slow_mmd2(x, y):
    """Unbiased MMD² written out pair by pair (Bińkowski et al. 2018, eq. 3) with k(a, b) = (a·b / d + 1)³."""
    m, d = x.shape

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_matches_a_direct_pairwise_implementation():
    real = features(3, 40, 6).astype(np.float64)
    fake = features(4, 40, 6, scale=1.5, shift=0.3).astype(np.float64)
    expected = slow_mmd2(fake, real)
    assert polynomial_mmd2(fake, real) == pytest.approx(expected, rel=1e-10)
    # subset_size >= N: every subset is the whole set (permuted), so all subsets agree with the direct value
    mean, std = kid(real, fake, num_subsets=3, subset_size=1000)
    assert mean == pytest.approx(expected, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_subsets_are_reproducible_and_average_the_per_subset_estimates():
    real, fake = features(5, 300, 8), features(6, 200, 8, shift=0.1)
    rng = np.random.default_rng(7)
    values = []
    for _ in range(4):
        x = fake[rng.choice(200, 50, replace=False)].astype(np.float64)
        y = real[rng.choice(300, 50, replace=False)].astype(np.float64)
        values.append(slow_mmd2(x, y))
    assert kid(real, fake, num_subsets=4, subset_size=50, seed=7) == pytest.approx((np.mean(values), np.std(values)))
    assert kid(real, fake, num_subsets=4, subset_size=50, seed=8) != kid(real, fake, num_subsets=4, subset_size=50)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_clearly_positive_for_two():
    same = [kid(features(10 + s, 100, 8), features(50 + s, 100, 8), subset_size=100)[0] for s in range(8)]
    shifted = kid(features(0, 100, 8), features(1, 100, 8, shift=0.5), subset_size=100)[0]
    assert min(same) < 0 < max(same)  # an unbiased estimator of 0 takes both signs (a biased one would not)
    assert abs(np.mean(same)) < 0.05 * shifted


def test_inception_score_on_known_logits():
    assert inception_score(np.zeros((100, 10)), splits=10) == pytest.approx((1.0, 0.0), abs=1e-12)
    for k in (1, 4, 10):
        logits = np.tile(60.0 * np.eye(10)[:k], (20, 1))  # each split holds every one of the k classes equally
        mean, std = inception_score(logits, splits=10)
        assert mean == pytest.approx(k, rel=1e-9)
        assert std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_matches_the_formula_and_ignores_logit_offsets():
    logits = np.random.default_rng(0).normal(size=(60, 7)) * 3
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), axis=1)))
    assert inception_score(logits, splits=1)[0] == pytest.approx(expected, rel=1e-12)
    assert inception_score(logits + 100.0, splits=3) == pytest.approx(inception_score(logits, splits=3), rel=1e-12)


def reference_prdc(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes
        return {key: float(v) for key, v in compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_equals_the_prdc_package(k, monkeypatch):
    real = features(20, 400, 16)
    fake = features(21, 300, 16, scale=1.2, shift=0.15)
    expected = reference_prdc(real, fake, k)
    got = prdc(real, fake, k_pr=k, k_dc=k)
    assert got == pytest.approx(expected, abs=1e-9)
    assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1
    monkeypatch.setattr(prdc_module, "BLOCK_BYTES", 8 * 300 * 37)  # 37-row blocks: same numbers
    assert prdc(real, fake, k_pr=k, k_dc=k) == got


def test_prdc_defaults_take_precision_recall_at_k3_and_density_coverage_at_k5():
    real, fake = features(22, 300, 8), features(23, 300, 8, shift=0.3)
    at3, at5 = reference_prdc(real, fake, 3), reference_prdc(real, fake, 5)
    expected = {"precision": at3["precision"], "recall": at3["recall"], **{k: at5[k] for k in ("density", "coverage")}}
    assert prdc(real, fake) == pytest.approx(expected, abs=1e-9)


def test_prdc_needs_more_samples_than_k():
    with pytest.raises(DataError, match="k_dc=5"):
        prdc(features(0, 5, 3), features(1, 50, 3))


def spec(**changes):
    base = {
        "dataset": "digits",
        "split": "all",
        "count": 50,
        "extractor": "digit_classifier_digits",
        "weights_sha256": "ab" * 32,
        "preprocessing": {"resolution": 8},
    }
    return make_spec(**(base | changes))


def test_reference_stats_cache_hits_misses_and_stores_its_spec(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return features(30, 50, 4)

    first = load_or_compute(spec(), compute, tmp_path)
    assert first.path == tmp_path / "fid_stats" / f"{stats_key(spec())}.npz" and first.path.is_file()
    np.testing.assert_allclose(first.mu, features(30, 50, 4).mean(0), rtol=1e-6)
    second = load_or_compute(spec(), compute, tmp_path)
    assert len(calls) == 1  # the second call read the file
    np.testing.assert_array_equal(second.sigma, first.sigma)
    assert second.spec == spec()
    third = load_or_compute(spec(), compute, tmp_path, keep_features=True)  # cached without features: recompute
    assert len(calls) == 2 and third.features.shape == (50, 4)
    first.path.write_bytes(b"not an npz")  # a damaged entry is recomputed, not trusted
    load_or_compute(spec(), compute, tmp_path)
    assert len(calls) == 3


def test_reference_stats_key_changes_with_every_part_of_the_spec():
    keys = {
        stats_key(s)
        for s in (
            spec(),
            spec(dataset="mnist"),
            spec(split="test"),
            spec(count=51),
            spec(extractor="inception_v3_fid_2015_12_05"),
            spec(weights_sha256="cd" * 32),
            spec(preprocessing={"resolution": 32}),
        )
    }
    assert len(keys) == 7
    reordered = dict(reversed(list(spec().items())))
    assert stats_key(reordered) == stats_key(spec())  # canonical JSON: key order does not matter
    with pytest.raises(ConfigError, match="preprocessing"):
        stats_key({k: v for k, v in spec().items() if k != "preprocessing"})


def test_reference_stats_reject_a_feature_count_that_contradicts_the_spec(tmp_path):
    with pytest.raises(DataError, match="count=50"):
        load_or_compute(spec(), lambda: features(0, 49, 4), tmp_path)

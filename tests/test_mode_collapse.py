"""Mode-collapse diagnostics on hand-built sample sets whose answers are known in closed form."""

import math

import numpy as np
import pytest

from gan_jax.data.toy import mixture_means
from gan_jax.metrics.mode_collapse import mixture_diagnostics

RING = mixture_means("ring")
SIGMA = 0.02


def _on_modes(modes: list[int], per_mode: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.repeat(RING[modes], per_mode, axis=0).astype(np.float64)
    return x + noise * rng.standard_normal(x.shape)


def test_perfect_ring_samples():
    exact = mixture_diagnostics(_on_modes(list(range(8)), 100), RING, SIGMA)
    assert exact == {"hq_fraction": 1.0, "modes_covered": 8, "num_modes": 8, "reverse_kl": pytest.approx(0.0)}

    noisy = mixture_diagnostics(_on_modes(list(range(8)), 1000, noise=SIGMA), RING, SIGMA)
    assert noisy["modes_covered"] == 8
    assert noisy["hq_fraction"] > 0.98  # P(chi_2 > 9) = exp(-4.5) ≈ 1.1%
    assert noisy["reverse_kl"] < 0.01


def test_one_mode_only():
    d = mixture_diagnostics(_on_modes([3], 500, noise=SIGMA), RING, SIGMA)
    assert d["modes_covered"] == 1 and d["num_modes"] == 8
    assert d["reverse_kl"] == pytest.approx(math.log(8))


def test_far_samples_are_not_high_quality():
    far = np.full((100, 2), 10.0)
    between = np.tile(RING[:2].mean(axis=0), (100, 1))  # midway between two modes: far from both at σ = 0.02
    for samples in (far, between):
        d = mixture_diagnostics(samples, RING, SIGMA)
        assert d["hq_fraction"] == 0.0 and d["modes_covered"] == 0
        assert d["reverse_kl"] == math.inf


def test_half_split_reverse_kl():
    # p = (1/2, 1/2) on 2 of 8 modes: KL = 2 * 1/2 * log(8/2) = log 4.
    half = mixture_diagnostics(_on_modes([0, 5], 200), RING, SIGMA)
    assert half["modes_covered"] == 2
    assert half["reverse_kl"] == pytest.approx(math.log(4))

    # Uneven 3:1 plus 400 far samples, which lower hq_fraction but do not enter p = (3/4, 1/4):
    # KL = 3/4 log(3/4 * 8) + 1/4 log(1/4 * 8) = 3/4 log 6 + 1/4 log 2.
    samples = np.concatenate([_on_modes([0], 300), _on_modes([1], 100), np.full((400, 2), -7.0)])
    d = mixture_diagnostics(samples, RING, SIGMA)
    assert d["hq_fraction"] == pytest.approx(0.5)
    assert d["reverse_kl"] == pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2))


def test_three_sigma_boundary():
    offsets = np.array([[2.9 * SIGMA, 0.0], [3.1 * SIGMA, 0.0]])
    d = mixture_diagnostics(RING[0] + offsets, RING, SIGMA)
    assert d["hq_fraction"] == pytest.approx(0.5)


def test_non_finite_samples_are_not_high_quality():
    good = _on_modes(list(range(8)), 10)
    bad = np.array([[np.nan, 0.0], [np.inf, 1.0], [-np.inf, np.nan], [0.0, np.nan]] * 20)
    d = mixture_diagnostics(np.concatenate([good, bad]), RING, SIGMA)
    assert d["hq_fraction"] == pytest.approx(80 / 160)
    assert d["modes_covered"] == 8 and d["reverse_kl"] == pytest.approx(0.0)

    all_bad = mixture_diagnostics(bad, RING, SIGMA)
    assert all_bad["hq_fraction"] == 0.0 and all_bad["reverse_kl"] == math.inf


def test_grid_counts_25_modes():
    grid = mixture_means("grid")
    d = mixture_diagnostics(np.repeat(grid, 4, axis=0), grid, 0.05)
    assert d == {"hq_fraction": 1.0, "modes_covered": 25, "num_modes": 25, "reverse_kl": pytest.approx(0.0)}


def test_shape_and_sigma_errors():
    with pytest.raises(ValueError, match="samples must be"):
        mixture_diagnostics(np.zeros((4, 3)), RING, SIGMA)
    with pytest.raises(ValueError, match="sigma must be positive"):
        mixture_diagnostics(np.zeros((4, 2)), RING, 0.0)

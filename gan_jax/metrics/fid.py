"""Fréchet distance between Gaussians fitted to two feature sets (FID when the features are Inception pool3).

Reference: M. Heusel, H. Ramsauer, T. Unterthiner, B. Nessler, S. Hochreiter, "GANs Trained by a Two Time-Scale
Update Rule Converge to a Local Nash Equilibrium", NeurIPS 2017. The value is the one pytorch-fid / TTUR compute,
||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1 S2)^½), in float64.

The trace of the matrix square root is computed from the eigenvalues of the symmetric PSD matrix
S1^½ S2 S1^½, which has the same spectrum as S1 S2. This avoids `scipy.linalg.sqrtm` of a non-symmetric
product: no complex round-off to discard, no eps-offset retry for singular (rank-deficient) covariances, and it is
several times faster at 2048 dimensions. It agrees with the sqrtm formula to ~1e-9 relative (tests check 1e-6).
"""

import numpy as np

from gan_jax.errors import DataError


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ddof=1) covariance of (N, D) features in float64: what FID and its cache store."""
    feats = as_features(feats, "feats")
    if feats.shape[0] < 2:
        raise DataError(f"feature statistics need at least 2 samples, got {feats.shape[0]}; pass more samples.")
    return feats.mean(axis=0), np.cov(feats, rowvar=False).reshape(feats.shape[1], feats.shape[1])


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); float64, clipped at 0 against round-off."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise DataError(
            f"Fréchet distance needs means (D,) and covariances (D, D) of one D; got {mu1.shape}, {sigma1.shape}, "
            f"{mu2.shape}, {sigma2.shape}: compare features from the same extractor (and reference statistics made "
            "with it)."
        )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise DataError(f"{name} holds NaN or Inf: the features it came from are not finite (diverged model?).")
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2), 0.0))


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^½) for symmetric PSD S1, S2, via the eigenvalues of S1^½ S2 S1^½ (same spectrum as S1 S2)."""
    sigma1 = (sigma1 + sigma1.T) / 2.0  # np.cov is symmetric up to round-off; eigh reads one triangle
    w, v = np.linalg.eigh(sigma1)
    sqrt1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt1 @ sigma2 @ sqrt1
    eigenvalues = np.linalg.eigvalsh((m + m.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def fid(real_feats: np.ndarray, fake_feats: np.ndarray) -> float:
    """FID between two (N, D) feature sets (e.g. Inception pool3 or classifier penultimate features)."""
    real_feats, fake_feats = as_features(real_feats, "real_feats"), as_features(fake_feats, "fake_feats")
    if real_feats.shape[1] != fake_feats.shape[1]:
        raise DataError(
            f"real and fake features have different widths ({real_feats.shape[1]} vs {fake_feats.shape[1]}); "
            "extract both with the same network."
        )
    return frechet_distance(*feature_stats(real_feats), *feature_stats(fake_feats))


def as_features(feats: np.ndarray, name: str) -> np.ndarray:
    """(N, D) float64 features, or a DataError naming the array: the input check every feature metric shares."""
    feats = np.asarray(feats, np.float64)
    if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty (N, D) feature array, got shape {feats.shape}; flatten it.")
    if not np.isfinite(feats).all():
        raise DataError(f"{name} holds NaN or Inf: the samples they came from are not finite (diverged model?).")
    return feats

"""Mode-collapse diagnostics for 2-D Gaussian mixtures, as defined by VEEGAN and PacGAN.

References: A. Srivastava, L. Valkov, C. Russell, M. U. Gutmann, C. Sutton, "VEEGAN: Reducing Mode Collapse in
GANs using Implicit Variational Learning", NeurIPS 2017; Z. Lin, A. Khetan, G. Fanti, S. Oh, "PacGAN: The
power of two samples in generative adversarial networks", NeurIPS 2018. Using their definitions gives the
numbers the same meaning as in those papers' ring and grid tables.

Checked against both: VEEGAN's text (a sample is high quality when within three standard deviations of the nearest
mode; modes captured = mixture components whose mean is nearest to at least one high-quality sample; 2,500
samples) and PacGAN's metric code (fjxmlzn/PacGAN, synthetic_data_experiments/PacGAN/pacgan/extensions.py,
`MetricLogger`: nearest mode by σ-scaled distance, high quality when that distance is < 3, coverage = modes with
a high-quality sample, "good points percentage" = high-quality / all samples, and the entropy H of the
high-quality mode histogram, from which the reverse KL to the uniform target is log K - H). The one difference,
≤ 3σ here against < 3σ there, only matters on a set of measure zero.
"""

import numpy as np


def high_quality_assignment(samples: np.ndarray, means: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest mean of each sample and whether it is high quality (finite and within 3σ of that mean)."""
    samples = np.asarray(samples, np.float64)
    means = np.asarray(means, np.float64)
    if samples.ndim != 2 or means.ndim != 2 or samples.shape[1] != means.shape[1]:
        raise ValueError(f"samples must be (N, D) and means (K, D); got {samples.shape} and {means.shape}")
    if samples.shape[0] == 0 or means.shape[0] == 0:
        raise ValueError(f"need at least one sample and one mean, got {samples.shape} and {means.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    finite = np.isfinite(samples).all(axis=1)
    safe = np.where(finite[:, None], samples, 0.0)  # placeholder rows, masked out below
    sq_dist = ((safe[:, None, :] - means[None, :, :]) ** 2).sum(axis=-1)
    nearest = sq_dist.argmin(axis=1)
    distance = np.sqrt(sq_dist[np.arange(len(samples)), nearest])
    return nearest, finite & (distance <= 3.0 * sigma)


def mode_counts(samples: np.ndarray, means: np.ndarray, sigma: float) -> np.ndarray:
    """High-quality samples per mixture component (the histogram behind `modes_covered` and `reverse_kl`)."""
    nearest, high_quality = high_quality_assignment(samples, means, sigma)
    return np.bincount(nearest[high_quality], minlength=len(means))


def mixture_diagnostics(samples: np.ndarray, means: np.ndarray, sigma: float) -> dict[str, float]:
    """Score generated 2-D samples against the K mixture means; float64 throughout.

    - `hq_fraction`: share of samples within 3σ (Euclidean) of their nearest mean ("high quality").
    - `modes_covered`: number of means that are the nearest mean of at least one high-quality sample.
    - `num_modes`: K.
    - `reverse_kl`: KL(p ‖ uniform over K) = Σ p_k log(K p_k), with p the normalised histogram of
      high-quality samples over their nearest modes (empty modes add 0). It is 0 for balanced coverage and
      log K when every high-quality sample sits on one mode. With no high-quality sample p is undefined;
      we return `inf` so a fully collapsed or diverged generator still compares as the worst.

    Samples with NaN or Inf (a diverged generator) are kept in the denominator and never count as high
    quality, so divergence lowers `hq_fraction` instead of raising an error mid-run.
    """
    nearest, high_quality = high_quality_assignment(samples, means, sigma)
    num_modes = len(means)
    counts = np.bincount(nearest[high_quality], minlength=num_modes)
    total = counts.sum()
    if total == 0:
        reverse_kl = float("inf")
    else:
        p = counts[counts > 0] / total
        reverse_kl = float(np.sum(p * np.log(p * num_modes)))
    return {
        "hq_fraction": float(high_quality.mean()),
        "modes_covered": int((counts > 0).sum()),
        "num_modes": int(num_modes),
        "reverse_kl": reverse_kl,
    }

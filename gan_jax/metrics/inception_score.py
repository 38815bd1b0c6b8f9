"""Inception Score from classifier logits.

Reference: T. Salimans, I. Goodfellow, W. Zaremba, V. Cheung, A. Radford, X. Chen, "Improved Techniques for
Training GANs", NeurIPS 2016, and its code (openai/improved-gan `inception_score.py`): p(y|x) is the softmax of the
logits, the samples are cut into `splits` consecutive chunks (no shuffling), each chunk scores
exp(E_x KL(p(y|x) ‖ p(y))) with p(y) the chunk's mean prediction, and the result is the mean and std (ddof=0) over
chunks.

Logits: the softmax is taken over every column given. The FID Inception network has 1008 outputs (1000 ImageNet
classes plus 8 unused ones); the published IS (improved-gan, TTUR, torch-fidelity's `logits_unbiased`) takes the
softmax over all 1008, so pass all 1008 to compare with published numbers. With a domain classifier pass its 10
logits: that IS is on a different scale (at most 10) and is only comparable with itself.
"""

import numpy as np
from scipy.special import log_softmax, logsumexp

from gan_jax.errors import DataError


def inception_score(logits: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of exp(E KL(p(y|x) ‖ p(y))) over `splits` chunks of (N, C) logits, in float64."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise DataError(f"logits must be (N, C) with C >= 2 classes, got shape {logits.shape}.")
    if not np.isfinite(logits).all():
        raise DataError("logits hold NaN or Inf: the samples were not finite (diverged model?).")
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise DataError(f"inception_score needs 1 <= splits <= N samples, got splits={splits} for N={n}.")
    log_p = log_softmax(logits, axis=1)
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        log_marginal = logsumexp(part, axis=0) - np.log(part.shape[0])  # log of the chunk's mean p(y|x)
        kl = (np.exp(part) * (part - log_marginal)).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))

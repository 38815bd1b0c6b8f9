"""Evaluation metrics: pure functions of samples, features or labels (nothing here trains or imports train/).

Feature metrics (`fid`, `kid`, `inception_score`, `prdc`) take (N, D) arrays from any extractor; image
diagnostics take classifier labels or features; the digit classifier is `gan_jax.metrics.classifier` and the FID
Inception network `gan_jax.metrics.features` (imported on demand: they load weights).
"""

from gan_jax.metrics.fid import feature_stats, fid, frechet_distance
from gan_jax.metrics.image_modes import (
    class_histogram_diagnostics,
    feature_diversity,
    near_duplicate_rate,
    nearest_real_distance,
    stacked_channel_labels,
    stacked_mnist_diagnostics,
)
from gan_jax.metrics.inception_score import inception_score
from gan_jax.metrics.kid import kid
from gan_jax.metrics.mode_collapse import mixture_diagnostics, mode_counts
from gan_jax.metrics.prdc import prdc

__all__ = [
    "class_histogram_diagnostics",
    "feature_diversity",
    "feature_stats",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "mixture_diagnostics",
    "mode_counts",
    "near_duplicate_rate",
    "nearest_real_distance",
    "prdc",
    "stacked_channel_labels",
    "stacked_mnist_diagnostics",
]

"""Mode-collapse and memorization diagnostics for generated images, on classifier labels or features.

- Class histograms (labels from `gan_jax.metrics.classifier`): modes covered and the KL divergences between the
  generated and the data label distributions.
- Stacked MNIST (1,000 modes), with the definitions of VEEGAN (Srivastava et al., NeurIPS 2017, Table 2) and PacGAN
  (Lin et al., NeurIPS 2018, Table 2), which follow Unrolled GAN (Metz et al., ICLR 2017): a pretrained MNIST
  classifier labels each channel, "modes" is the number of the 1,000 3-digit classes with at least one sample,
  "KL" is KL(generated label distribution ‖ uniform over 1,000).
- Near duplicates among samples, distance of samples to their nearest training image (memorization), and the mean
  pairwise distance within a batch (diversity).

Inputs are host arrays; features may be any (N, ...) array (images are flattened), distances are Euclidean in
float64. Everything here is a pure function: no network and no training.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gan_jax.data.stacked import NUM_STACKED_MODES
from gan_jax.errors import DataError
from gan_jax.metrics.prdc import pairwise_distance_blocks


def class_histogram(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts per class (num_classes,) of int labels in 0..num_classes-1."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"labels must lie in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}.")
    return np.bincount(labels, minlength=num_classes)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p ‖ q) = Σ p log(p / q) of two histograms (normalised here); terms with p = 0 add 0, inf where q = 0 < p."""
    p = np.asarray(p, np.float64) / np.sum(p)
    q = np.asarray(q, np.float64) / np.sum(q)
    support = p > 0
    if np.any(q[support] == 0):
        return float("inf")
    return float(np.sum(p[support] * np.log(p[support] / q[support])))


def class_histogram_diagnostics(
    pred_labels: np.ndarray, num_classes: int, data_label_hist: np.ndarray | None = None
) -> dict[str, float]:
    """Modes covered and KLs of the predicted-label histogram of N samples against the data's label histogram.

    - `modes_covered`: classes with at least one sample (of `num_classes`).
    - `reverse_kl`: KL(generated ‖ data), the direction of the Stacked-MNIST tables and of `mode_collapse`'s
      `reverse_kl`: finite whenever the data has every class, 0 for a perfect match, log K for collapse to one class
      when the data is uniform.
    - `forward_kl`: KL(data ‖ generated): inf as soon as a data class gets no sample, so it flags dropped modes.

    `data_label_hist` may be counts or probabilities; None means uniform.
    """
    counts = class_histogram(pred_labels, num_classes)
    if counts.sum() == 0:
        raise DataError("class_histogram_diagnostics needs at least one sample.")
    data = np.ones(num_classes) if data_label_hist is None else np.asarray(data_label_hist, np.float64)
    if data.shape != (num_classes,) or np.any(data < 0) or data.sum() <= 0:
        raise DataError(f"data_label_hist must be ({num_classes},) non-negative counts, got shape {data.shape}.")
    return {
        "modes_covered": int((counts > 0).sum()),
        "num_modes": int(num_classes),
        "reverse_kl": kl_divergence(counts, data),
        "forward_kl": kl_divergence(data, counts),
    }


def stacked_channel_labels(classify_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """(N, 3) digit labels of Stacked-MNIST images (N, H, W, 3): each channel classified as a grey digit.

    `classify_fn` maps (M, H, W, 1) images to (M,) labels, e.g. `TrainedClassifier.predict` of an MNIST classifier.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"Stacked-MNIST images must be (N, H, W, 3), got shape {images.shape}.")
    grey = np.moveaxis(images, -1, 1).reshape(-1, *images.shape[1:3], 1)  # (N*3, H, W, 1), channel-major per image
    return np.asarray(classify_fn(grey)).reshape(images.shape[0], 3)


def stacked_mnist_diagnostics(channel_labels: np.ndarray) -> dict[str, float]:
    """VEEGAN/PacGAN Stacked-MNIST numbers from (N, 3) per-channel digits: modes (of 1,000) with >= 1 sample and
    KL(generated ‖ uniform over 1,000), 0 for perfect balance and log 1000 ≈ 6.91 for collapse to one mode."""
    channel_labels = np.asarray(channel_labels)
    if channel_labels.ndim != 2 or channel_labels.shape[1] != 3:
        raise DataError(f"channel_labels must be (N, 3) digits per channel, got shape {channel_labels.shape}.")
    if not np.issubdtype(channel_labels.dtype, np.integer) or channel_labels.min() < 0 or channel_labels.max() > 9:
        raise DataError("channel_labels must be integer digits 0..9 (argmax of an MNIST classifier).")
    modes = channel_labels.astype(np.int64) @ np.array([100, 10, 1])
    out = class_histogram_diagnostics(modes, NUM_STACKED_MODES)
    return {"modes_covered": out["modes_covered"], "num_modes": NUM_STACKED_MODES, "kl": out["reverse_kl"]}


def nearest_neighbours(x: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each row of x's nearest row of y; y=None searches x itself, excluding the row itself.

    Candidates come from the blocked |x|² + |y|² - 2 x·y distances; the winners' distances are recomputed as
    ||x - y|| so exact copies get distance 0 (the expansion leaves ~1e-8·|x| round-off).
    """
    x = _flat(x, "x")
    same = y is None
    y = x if same else _flat(y, "y")
    if x.shape[1] != y.shape[1]:
        raise DataError(f"x and y have different widths ({x.shape[1]} vs {y.shape[1]}); use one feature space.")
    if len(y) < (2 if same else 1):
        raise DataError("nearest neighbours need at least one candidate row (two when searching a set itself).")
    index = np.empty(len(x), np.int64)
    for rows, dist in pairwise_distance_blocks(x, None if same else y):
        if same:
            idx = np.arange(rows.start, rows.stop)
            dist[idx - rows.start, idx] = np.inf
        index[rows] = dist.argmin(axis=1)
    return index, np.linalg.norm(x - y[index], axis=1)


def near_duplicate_rate(features: np.ndarray, threshold: float) -> float:
    """Share of samples with another sample within `threshold` (Euclidean, inclusive) in the given space.

    A collapsed generator repeats itself: the rate rises. `threshold` is in the features' units (for uint8 pixels
    flattened, 0 catches exact repeats only).
    """
    if threshold < 0:
        raise DataError(f"threshold must be >= 0, got {threshold}.")
    _, dist = nearest_neighbours(features)
    return float((dist <= threshold).mean())


def nearest_real_distance(
    fake_feats: np.ndarray, real_feats: np.ndarray, copy_quantile: float = 0.01
) -> dict[str, float]:
    """Memorization: how close samples are to their nearest training image, relative to real data's own spacing.

    - `nn_mean`, `nn_median`, `nn_min`: distance of each sample to its nearest real image.
    - `real_nn_mean`: the same for each real image to its nearest *other* real image (leave-one-out).
    - `ratio` = nn_mean / real_nn_mean: ≈ 1 for fresh samples from the data distribution, well below 1 when samples
      copy training images (above 1: samples lie off the data).
    - `copy_fraction`: share of samples closer to the training set than `copy_threshold`, the `copy_quantile`
      quantile of the real leave-one-out distances; ≈ copy_quantile for fresh samples, up to 1 for copies.
    """
    if not 0 < copy_quantile < 1:
        raise DataError(f"copy_quantile must be in (0, 1), got {copy_quantile}.")
    _, fake_nn = nearest_neighbours(fake_feats, real_feats)
    _, real_nn = nearest_neighbours(real_feats)
    threshold = float(np.quantile(real_nn, copy_quantile))
    real_mean = float(real_nn.mean())
    return {
        "nn_mean": float(fake_nn.mean()),
        "nn_median": float(np.median(fake_nn)),
        "nn_min": float(fake_nn.min()),
        "real_nn_mean": real_mean,
        "ratio": float(fake_nn.mean() / real_mean) if real_mean > 0 else float("inf"),
        "copy_threshold": threshold,
        "copy_fraction": float((fake_nn < threshold).mean()) if threshold > 0 else float((fake_nn == 0).mean()),
    }


def feature_diversity(features: np.ndarray) -> float:
    """Mean Euclidean distance over all distinct pairs of a batch: falls towards 0 as samples collapse."""
    x = _flat(features, "features")
    if len(x) < 2:
        raise DataError(f"feature_diversity needs at least 2 samples, got {len(x)}.")
    total = sum(float(dist.sum()) for _, dist in pairwise_distance_blocks(x))  # diagonal is 0
    return total / (len(x) * (len(x) - 1))


def _flat(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise DataError(f"{name} must be (N, ...) with N >= 1 samples, got shape {x.shape}.")
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if not np.isfinite(x).all():
        raise DataError(f"{name} holds NaN or Inf: the samples were not finite (diverged model?).")
    return x

"""Stacked MNIST: three MNIST digits as the three channels of one image, a dataset with 1,000 known modes.

Reference: L. Metz, B. Poole, D. Pfau, J. Sohl-Dickstein, "Unrolled Generative Adversarial Networks", ICLR 2017;
used with the same definitions by VEEGAN (Srivastava et al., NeurIPS 2017) and PacGAN (Lin et al., NeurIPS 2018).
Each image draws three digits independently and uniformly from the MNIST images; its mode is the 3-digit number
100·a + 10·b + c of the channels' labels (channel 0 = a, 1 = b, 2 = c), so a generator that covers the data covers all
1,000 modes and mode collapse shows up as missing numbers (see `gan_jax.metrics.image_modes`).
"""

from __future__ import annotations

import os

import numpy as np

from gan_jax.data.images import ImageData, load_mnist
from gan_jax.errors import DataError

NUM_STACKED_MODES = 1000


def stacked_mnist(images: np.ndarray, labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n stacked images (n, H, W, 3) uint8 and their modes (n,) int32 in 0..999, from grey (N, H, W[, 1]) digits.

    The three source indices of every image are drawn with replacement by numpy's PCG64 from `seed`.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"stacked_mnist takes grey uint8 digits (N, H, W) or (N, H, W, 1), got {images.dtype} {images.shape}; "
            "pass load_mnist(...).x."
        )
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or labels.size == 0 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"labels must be (N,) digits 0..9 matching {images.shape[0]} images, got {labels.shape}.")
    if n < 1:
        raise DataError(f"n must be positive, got {n}.")
    idx = np.random.default_rng(seed).integers(0, images.shape[0], size=(n, 3))
    stacked = np.moveaxis(images[idx], 1, -1)  # (n, 3, H, W) -> (n, H, W, 3)
    digits = labels[idx].astype(np.int32)
    return np.ascontiguousarray(stacked), digits @ np.array([100, 10, 1], np.int32)


def load_stacked_mnist(root: str | os.PathLike | None, n: int, seed: int = 0, split: str = "test") -> ImageData:
    """Stacked MNIST built from the MNIST `split` under `root` (the test set in ../shared/data), as ImageData."""
    mnist = load_mnist(root, split)
    x, y = stacked_mnist(mnist.x, mnist.y, n, seed)
    return ImageData(x=x, y=y, name=f"stacked-mnist-{split}")

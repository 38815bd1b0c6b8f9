"""Improved precision / recall and density / coverage of generated features against real ones.

References: T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, "Improved Precision and Recall Metric for
Assessing Generative Models", NeurIPS 2019 (k = 3); M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo, "Reliable
Fidelity and Diversity Metrics for Generative Models", ICML 2020 (density and coverage, k = 5). The definitions
are those of the authors' `prdc` package (`compute_prdc`): k-NN radii count the point itself (the (k+1)-th
smallest distance within a set), comparisons are strict, distances are Euclidean via |x|² + |y|² - 2 x·y in
float64. With k_pr == k_dc == k the result equals `prdc.compute_prdc(real, fake, k)`.

Unlike `compute_prdc` nothing here holds a full N×N matrix: rows are processed in blocks, so 50k×50k fits in memory.
"""

from collections.abc import Iterator

import numpy as np

from gan_jax.errors import DataError
from gan_jax.metrics.fid import as_features

BLOCK_BYTES = 1 << 28  # ~256 MB of float64 distances per block


def prdc(real: np.ndarray, fake: np.ndarray, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """Precision and recall with k_pr neighbours, density and coverage with k_dc neighbours (paper defaults)."""
    real, fake = as_features(real, "real"), as_features(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise DataError(
            f"real and fake features have different widths ({real.shape[1]} vs {fake.shape[1]}); "
            "extract both with the same network."
        )
    for name, k in (("k_pr", k_pr), ("k_dc", k_dc)):
        if not 1 <= k < min(len(real), len(fake)):
            raise DataError(
                f"{name}={k} needs more than {k} real and fake samples (got {len(real)} and {len(fake)}) and k >= 1."
            )
    ks = sorted({k_pr, k_dc})
    real_radii = dict(zip(ks, kth_neighbour_distances(real, ks), strict=True))
    (fake_radii,) = kth_neighbour_distances(fake, [k_pr])
    r_pr, r_dc = real_radii[k_pr], real_radii[k_dc]

    inside_pr = np.zeros(len(fake), bool)  # fake j inside some real k_pr-ball (precision)
    inside_dc = np.zeros(len(fake), np.int64)  # number of real k_dc-balls holding fake j (density)
    recalled = np.empty(len(real), bool)  # real i inside some fake k_pr-ball (recall)
    covered = np.empty(len(real), bool)  # nearest fake of real i inside its k_dc-ball (coverage)
    for rows, dist in pairwise_distance_blocks(real, fake):
        inside_pr |= (dist < r_pr[rows, None]).any(axis=0)
        inside_dc += (dist < r_dc[rows, None]).sum(axis=0)
        recalled[rows] = (dist < fake_radii[None, :]).any(axis=1)
        covered[rows] = dist.min(axis=1) < r_dc[rows]
    return {
        "precision": float(inside_pr.mean()),
        "recall": float(recalled.mean()),
        "density": float(inside_dc.mean() / k_dc),
        "coverage": float(covered.mean()),
    }


def pairwise_distance_blocks(x: np.ndarray, y: np.ndarray | None = None) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, distances of x[rows] to every row of y) in blocks of ~BLOCK_BYTES; y=None means y=x, diagonal 0.

    Same arithmetic as scikit-learn's `euclidean_distances` (what `prdc` uses): -2 x·y + |x|² + |y|², clipped at 0.
    """
    same = y is None
    y = x if same else y
    x_sq = np.einsum("ij,ij->i", x, x)
    y_sq = x_sq if same else np.einsum("ij,ij->i", y, y)
    block = max(1, min(len(x), BLOCK_BYTES // (8 * max(len(y), 1))))
    for start in range(0, len(x), block):
        rows = slice(start, min(start + block, len(x)))
        d2 = -2.0 * (x[rows] @ y.T)
        d2 += x_sq[rows, None]
        d2 += y_sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        if same:
            idx = np.arange(rows.start, rows.stop)
            d2[idx - rows.start, idx] = 0.0
        yield rows, np.sqrt(d2, out=d2)


def kth_neighbour_distances(x: np.ndarray, ks: list[int]) -> list[np.ndarray]:
    """For each k, every row's distance to its k-th nearest other row (the (k+1)-th smallest, self included)."""
    out = [np.empty(len(x)) for _ in ks]
    for rows, dist in pairwise_distance_blocks(x):
        part = np.partition(dist, ks, axis=1)
        for radii, k in zip(out, ks, strict=True):
            radii[rows] = part[:, k]
    return out

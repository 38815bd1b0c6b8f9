"""The jittable conditional-vector sampler of CTGAN-style GANs (CTGAN's DataSampler, on device).

`ConditionSampler` holds precomputed arrays (rows grouped by category, CSR-style), so a batch of conditional vectors
and matching real rows is drawn on device inside a jitted step from one key. It is kept apart from
`table_transformer` because it needs only the layout of the transformed rows (their `Span`s), not the fitted
columns; the pure functions here (`sample_train_cond`, `sample_original_cond`, `fixed_cond`) are what the train and
sample steps call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.table_spans import Span
from gan_jax.errors import ConfigError, DataError

Array = jax.Array


# ----------------------------------------------------------------------------------------------------------------
# Conditional vectors and training-by-sampling, on device
# ----------------------------------------------------------------------------------------------------------------


class CondArrays(NamedTuple):
    """Precomputed arrays for drawing conditional vectors and matching rows in JAX (a pytree: device_put it once
    and pass it to the jitted step like any dataset array). D = discrete columns, K = most categories in one,
    C = sum of categories (the cond width), N = rows.

    Rows are grouped by category CSR-style: `row_order[d]` lists the row indices sorted by column d's category,
    and category c (global index) owns `row_order[d, cat_start[c] : cat_start[c] + cat_count[c]]`. That is D x N
    int32 in all, where padded per-category tables would be C x (largest category).
    """

    col_offset: np.ndarray  # (D,) int32: where column d starts in the cond vector
    train_logits: np.ndarray  # (D, K) float32: log of log-frequency probabilities, -inf padding
    sample_logits: np.ndarray  # (D, K) float32: log of empirical frequencies, -inf padding
    row_order: np.ndarray  # (D, N) int32
    cat_start: np.ndarray  # (C,) int32
    cat_count: np.ndarray  # (C,) int32


class CondBatch(NamedTuple):
    cond: Array  # (B, C) one-hot of the chosen category (all zeros when the table has no discrete column)
    mask: Array  # (B, D) one-hot of the chosen column
    rows: Array  # (B,) int32: real rows having that category, to index the transformed data with


def sample_train_cond(arrays: CondArrays, key: Array, batch_size: int) -> CondBatch:
    """CTGAN's training-by-sampling: a discrete column uniformly, a category by log-frequency, and a real row with
    that category uniformly. Pure and jittable (`batch_size` static)."""
    k_col, k_cat, k_row = jax.random.split(key, 3)
    n_discrete, n_rows = arrays.row_order.shape
    cond_dim = arrays.cat_start.shape[0]
    if n_discrete == 0:
        rows = jax.random.randint(k_row, (batch_size,), 0, n_rows)
        return CondBatch(jnp.zeros((batch_size, 0)), jnp.zeros((batch_size, 0)), rows)
    if n_rows == 0:
        raise ConfigError("this ConditionSampler has no row tables (built from counts); build it with from_data.")
    col = jax.random.randint(k_col, (batch_size,), 0, n_discrete)
    cat = jax.random.categorical(k_cat, jnp.asarray(arrays.train_logits)[col])
    c = jnp.asarray(arrays.col_offset)[col] + cat
    count = jnp.asarray(arrays.cat_count)[c]
    within = jax.random.randint(k_row, (batch_size,), 0, jnp.maximum(count, 1))
    rows = jnp.asarray(arrays.row_order)[col, jnp.asarray(arrays.cat_start)[c] + within]
    cond = jax.nn.one_hot(c, cond_dim, dtype=jnp.float32)
    mask = jax.nn.one_hot(col, n_discrete, dtype=jnp.float32)
    return CondBatch(cond, mask, rows)


def sample_original_cond(arrays: CondArrays, key: Array, batch_size: int) -> Array:
    """Conditional vectors for generation: a discrete column uniformly, a category by its empirical frequency
    (CTGAN's sample_original_condvec, with the frequencies it intends). Pure and jittable."""
    k_col, k_cat = jax.random.split(key)
    n_discrete = arrays.col_offset.shape[0]
    cond_dim = arrays.cat_start.shape[0]
    if n_discrete == 0:
        return jnp.zeros((batch_size, 0))
    col = jax.random.randint(k_col, (batch_size,), 0, n_discrete)
    cat = jax.random.categorical(k_cat, jnp.asarray(arrays.sample_logits)[col])
    return jax.nn.one_hot(jnp.asarray(arrays.col_offset)[col] + cat, cond_dim, dtype=jnp.float32)


def fixed_cond(cond_dim: int, index: int | Array, batch_size: int) -> Array:
    """Every row conditioned on one category (`TableTransformer.cond_index(column, value)`)."""
    return jax.nn.one_hot(jnp.full((batch_size,), index), cond_dim, dtype=jnp.float32)


@dataclass(frozen=True, eq=False)
class ConditionSampler:
    """Host-side holder of `CondArrays` plus convenience methods; the pure functions above are what a jitted
    train step calls with `jax.device_put(sampler.arrays)`."""

    arrays: CondArrays
    sizes: tuple[int, ...] = field(default=())  # categories per discrete column

    @classmethod
    def from_data(cls, data: np.ndarray, output_info: Sequence[Span], log_frequency: bool = True) -> ConditionSampler:
        """From the transformed training matrix (one-hot discrete spans), as CTGAN's DataSampler."""
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != sum(s.dim for s in output_info):
            raise DataError(
                f"data of shape {data.shape} does not match output_info (width {sum(s.dim for s in output_info)}); "
                "pass the matrix TableTransformer.transform returned, with its output_info."
            )
        codes, sizes, start = [], [], 0
        for span in output_info:
            if span.discrete:
                codes.append(data[:, start : start + span.dim].argmax(axis=1))
                sizes.append(span.dim)
            start += span.dim
        codes_arr = np.stack(codes, axis=1) if codes else np.zeros((len(data), 0), np.int64)
        return cls.from_codes(codes_arr, sizes, log_frequency)

    @classmethod
    def from_codes(cls, codes: np.ndarray, sizes: Sequence[int], log_frequency: bool = True) -> ConditionSampler:
        """From category codes (N, D) of each discrete column and the number of categories of each."""
        codes = np.asarray(codes, np.int64)
        n_rows, n_discrete = codes.shape
        counts = [np.bincount(codes[:, d], minlength=sizes[d]) for d in range(n_discrete)]
        row_order = np.zeros((0, n_rows), np.int64)
        if n_discrete:
            row_order = np.stack([np.argsort(codes[:, d], kind="stable") for d in range(n_discrete)])
        return cls._build(counts, sizes, row_order, log_frequency)

    @classmethod
    def from_counts(cls, counts: Sequence[np.ndarray], log_frequency: bool = True) -> ConditionSampler:
        """For generation only (no row tables): from `TableTransformer.category_counts()`, e.g. after loading a
        saved transformer without the data."""
        sizes = [len(c) for c in counts]
        return cls._build([np.asarray(c) for c in counts], sizes, np.zeros((len(counts), 0), np.int64), log_frequency)

    @classmethod
    def _build(
        cls, counts: list[np.ndarray], sizes: Sequence[int], row_order: np.ndarray, log_frequency: bool
    ) -> ConditionSampler:
        n_discrete = len(sizes)
        width = max(sizes, default=1)
        train_logits = np.full((n_discrete, width), -np.inf, np.float32)
        sample_logits = np.full((n_discrete, width), -np.inf, np.float32)
        cat_start, cat_count = [], []
        for d, (count, size) in enumerate(zip(counts, sizes, strict=True)):
            count = count.astype(np.float64)
            weight = np.log1p(count) if log_frequency else count  # log(count + 1), as CTGAN
            with np.errstate(divide="ignore"):
                train_logits[d, :size] = np.log(weight / weight.sum())
                sample_logits[d, :size] = np.log(count / count.sum())
            cat_start.extend(np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64))
            cat_count.extend(count.astype(np.int64))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_discrete else np.zeros(0)
        arrays = CondArrays(
            col_offset=np.asarray(offsets, np.int32),
            train_logits=train_logits,
            sample_logits=sample_logits,
            row_order=row_order.astype(np.int32),
            cat_start=np.asarray(cat_start, np.int32),
            cat_count=np.asarray(cat_count, np.int32),
        )
        return cls(arrays, tuple(int(s) for s in sizes))

    @property
    def n_discrete(self) -> int:
        return len(self.sizes)

    @property
    def cond_dim(self) -> int:
        return int(sum(self.sizes))

    def train_probabilities(self) -> list[np.ndarray]:
        """Per discrete column, the probability training-by-sampling gives each category (for checks/logs)."""
        return [np.exp(self.arrays.train_logits[d, :size]) for d, size in enumerate(self.sizes)]

    def sample_train(self, key: Array, batch_size: int) -> CondBatch:
        return _sample_train_jit(self.arrays, key, batch_size)

    def sample_original(self, key: Array, batch_size: int) -> Array:
        return _sample_original_jit(self.arrays, key, batch_size)

    def fixed(self, index: int, batch_size: int) -> Array:
        if not 0 <= index < self.cond_dim:
            raise ConfigError(f"condition index {index} is outside the conditional vector (width {self.cond_dim}).")
        return fixed_cond(self.cond_dim, index, batch_size)


_sample_train_jit = jax.jit(sample_train_cond, static_argnums=2)
_sample_original_jit = jax.jit(sample_original_cond, static_argnums=2)

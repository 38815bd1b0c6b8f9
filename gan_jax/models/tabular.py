"""CTGAN's networks and output heads in Flax Linen (Xu et al. 2019, "Modeling Tabular data using Conditional GAN").

- `CTGANGenerator`: residual blocks (Linear -> BatchNorm -> ReLU, output concatenated with the block's input),
  then a linear layer to the model-space width. It returns raw values; `apply_output_activation` turns them into
  rows (tanh scalars, Gumbel-softmax one-hots), and `conditional_loss` reads the raw values, as CTGAN does.
- `CTGANCritic`: PacGAN packing (pac rows -> one critic input), Linear -> LeakyReLU(0.2) -> Dropout(0.5) blocks,
  then one score per pack. Trained with WGAN-GP (lambda = 10) using `packed_gradient_penalty`.

Layers use PyTorch's default initialisation (uniform in +-1/sqrt(fan_in) for weights and biases), which the CTGAN
recipe (Adam 2e-4, betas (0.5, 0.9)) was tuned with. `output_info` is `TableTransformer.output_info`: a tuple of
`Span(dim, activation, discrete, column)`, hashable, so it can be a static argument of a jitted function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.table_spans import Span
from gan_jax.errors import ConfigError

Array = jax.Array

GUMBEL_TAU = 0.2
GP_WEIGHT = 10.0
PAC = 10


def _torch_uniform(scale_by_fan_in: int) -> nn.initializers.Initializer:
    bound = 1.0 / float(scale_by_fan_in) ** 0.5

    def init(key: Array, shape: Sequence[int], dtype=jnp.float32) -> Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def torch_dense(features: int, fan_in: int, name: str | None = None) -> nn.Dense:
    """nn.Dense initialised like torch.nn.Linear (kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in)))."""
    return nn.Dense(
        features,
        kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
        bias_init=_torch_uniform(fan_in),
        name=name,
    )


class Residual(nn.Module):
    """CTGAN's residual block: concat([ReLU(BN(Linear(x))), x]) — the width grows by `features` each block."""

    features: int

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        h = torch_dense(self.features, x.shape[-1])(x)
        # PyTorch BatchNorm1d: eps 1e-5, running-average momentum 0.1 (Flax's momentum is 1 - PyTorch's).
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(h)
        return jnp.concatenate([nn.relu(h), x], axis=-1)


class CTGANGenerator(nn.Module):
    """(z, cond) -> raw model-space row (B, data_dim). BatchNorm statistics live in the 'batch_stats' collection:
    apply with `mutable=["batch_stats"]` when `train`."""

    data_dim: int
    dims: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, z: Array, cond: Array | None = None, *, train: bool) -> Array:
        h = z if cond is None or cond.shape[-1] == 0 else jnp.concatenate([z, cond.astype(z.dtype)], axis=-1)
        for width in self.dims:
            h = Residual(width)(h, train=train)
        return torch_dense(self.data_dim, h.shape[-1])(h)


def check_pac(batch_size: int, pac: int) -> None:
    """Packing needs whole packs: refuse a batch size that is not a multiple of `pac` with the fix."""
    if pac < 1:
        raise ConfigError(f"pac must be a positive integer, got {pac}.")
    if batch_size % pac != 0:
        lower = max(pac, batch_size - batch_size % pac)
        raise ConfigError(
            f"batch size {batch_size} is not divisible by pac={pac}: the packed critic scores groups of {pac} rows; "
            f"set the batch size to a multiple of {pac} (e.g. {lower} or {lower + pac}) or change pac."
        )


class CTGANCritic(nn.Module):
    """(x, cond) -> one score per pack of `pac` rows: shape (B // pac,). Dropout is active when `train` and then
    needs a 'dropout' rng."""

    dims: Sequence[int] = (256, 256)
    pac: int = PAC
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: Array, cond: Array | None = None, *, train: bool) -> Array:
        check_pac(x.shape[0], self.pac)
        h = x if cond is None or cond.shape[-1] == 0 else jnp.concatenate([x, cond.astype(x.dtype)], axis=-1)
        h = h.reshape(h.shape[0] // self.pac, self.pac * h.shape[-1])
        for width in self.dims:
            h = torch_dense(width, h.shape[-1])(h)
            h = nn.leaky_relu(h, 0.2)
            h = nn.Dropout(self.dropout, deterministic=not train)(h)
        return torch_dense(1, h.shape[-1])(h)[:, 0]


def _check_width(raw: Array, output_info: Sequence[Span], who: str) -> None:
    width = sum(s.dim for s in output_info)
    if raw.shape[-1] != width:
        raise ConfigError(
            f"{who}: generator output has width {raw.shape[-1]} but output_info spans {width}; build the generator "
            "with data_dim=transformer.output_dim."
        )


class _Segments(NamedTuple):
    """Static index arrays that let one set of vectorised ops handle every span (see `apply_output_activation`)."""

    is_tanh: np.ndarray  # (W,) bool: feature gets tanh
    segment: np.ndarray  # (W,) int32: the span each feature belongs to (sorted)
    members: np.ndarray  # (W, S) float: one-hot of `segment`
    discrete_segment: np.ndarray  # (C,) int32: the discrete column each cond-vector entry belongs to
    discrete_select: np.ndarray  # (W, C) float: picks the cond-vector entries' features out of a row
    discrete_members: np.ndarray  # (C, D) float: which discrete column each cond entry belongs to


@lru_cache(maxsize=64)
def _segments(output_info: tuple[Span, ...]) -> _Segments:
    is_tanh, segment, discrete_features, discrete_column = [], [], [], []
    start = 0
    for i, span in enumerate(output_info):
        if span.activation not in ("tanh", "softmax"):
            raise ConfigError(f"span activation {span.activation!r} is unknown; expected 'tanh' or 'softmax'.")
        is_tanh += [span.activation == "tanh"] * span.dim
        segment += [i] * span.dim
        if span.discrete:
            discrete_features += range(start, start + span.dim)
            discrete_column += [len(set(discrete_column))] * span.dim
        start += span.dim
    n_discrete = len(set(discrete_column))
    return _Segments(
        is_tanh=np.asarray(is_tanh, bool),
        segment=np.asarray(segment, np.int32),
        members=np.eye(len(output_info), dtype=np.float32)[np.asarray(segment, np.int32)],
        discrete_segment=np.asarray(discrete_column, np.int32),
        discrete_select=np.eye(start, dtype=np.float32)[:, np.asarray(discrete_features, np.int32)],
        discrete_members=np.eye(n_discrete, dtype=np.float32)[np.asarray(discrete_column, np.int32)],
    )


def _segment_log_softmax(x: Array, segment: np.ndarray, members: np.ndarray) -> Array:
    """log-softmax of x (B, W) within each segment, all segments at once (`segment`: (W,) sorted span ids,
    `members`: its (W, S) one-hot): a per-segment max for stability, then matmuls for the per-segment sums and to
    spread them back (cheaper to compile and to differentiate on CPU than gathers)."""
    spread = members.T  # (S, W)
    seg_max = jax.ops.segment_max(x.T, segment, members.shape[1], indices_are_sorted=True).T  # (B, S)
    shifted = x - _exact_dot(jax.lax.stop_gradient(seg_max), spread)
    log_sum = jnp.log(_exact_dot(jnp.exp(shifted), members))  # (B, S)
    return shifted - _exact_dot(log_sum, spread)


def _exact_dot(a: Array, b: np.ndarray) -> Array:
    """a @ b at full float32 precision: a GPU's default TF32 would round values moved by a 0/1 matrix."""
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def apply_output_activation(raw: Array, output_info: Sequence[Span], key: Array, tau: float = GUMBEL_TAU) -> Array:
    """CTGAN's `_apply_activate`: tanh on 'tanh' spans, Gumbel-softmax (temperature `tau`) on 'softmax' spans.

    Vectorised over spans: one Gumbel draw for the whole row and a segmented softmax, so the compiled program does
    not grow with the number of columns. (A loop over spans with a draw per span took XLA:CPU 25 s to compile for
    Adult's 21 spans; slicing alone still cost 2.4 s.)
    """
    _check_width(raw, output_info, "apply_output_activation")
    if raw.shape[-1] == 0:
        return raw
    seg = _segments(tuple(output_info))
    noisy = (raw + jax.random.gumbel(key, raw.shape, raw.dtype)) / tau
    soft = jnp.exp(_segment_log_softmax(noisy, seg.segment, seg.members))
    return jnp.where(seg.is_tanh, jnp.tanh(raw), soft)


def conditional_loss(raw: Array, cond: Array, mask: Array, output_info: Sequence[Span]) -> Array:
    """CTGAN's `_cond_loss`: cross-entropy between the generator's raw logits on each discrete column and the
    category the conditional vector asked for, counted only on the chosen column (`mask`), summed and divided by
    the batch size. Zero-width cond (no discrete column) gives 0."""
    _check_width(raw, output_info, "conditional_loss")
    seg = _segments(tuple(output_info))
    n_cond, n_discrete = seg.discrete_members.shape
    if n_cond == 0:
        return jnp.zeros((), raw.dtype)
    if cond.shape[-1] != n_cond or mask.shape[-1] != n_discrete:
        raise ConfigError(
            f"conditional_loss: cond width {cond.shape[-1]} / mask width {mask.shape[-1]} do not match output_info "
            f"({n_cond} categories in {n_discrete} discrete columns); draw them with the matching ConditionSampler."
        )
    logits = _exact_dot(raw, seg.discrete_select)  # (B, C): the discrete spans' logits, in cond-vector order
    log_p = _segment_log_softmax(logits, seg.discrete_segment, seg.discrete_members)
    per_column = -_exact_dot(cond * log_p, seg.discrete_members)  # (B, D): cross-entropy of each discrete column
    return jnp.sum(per_column * mask) / raw.shape[0]


def packed_gradient_penalty(
    critic_fn: Callable[[Array], Array], real: Array, fake: Array, key: Array, pac: int
) -> Array:
    """WGAN-GP for a packed critic, as CTGAN computes it: one interpolation weight per pack, and the gradient norm
    taken over the whole pack (pac x d inputs). `critic_fn` maps (B, d) -> (B // pac,) scores; `real`/`fake` are
    the critic's inputs (rows concatenated with their cond vectors). Returns E[(||grad|| - 1)^2], unweighted:
    multiply by lambda (`GP_WEIGHT` = 10 in CTGAN)."""
    check_pac(real.shape[0], pac)
    n_packs, d = real.shape[0] // pac, real.shape[-1]
    alpha = jnp.repeat(jax.random.uniform(key, (n_packs, 1), real.dtype), pac, axis=0)
    x_hat = alpha * real + (1.0 - alpha) * fake
    grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(n_packs, pac * d)), axis=1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


class TableGenerator(nn.Module):
    """The generator `model=ctgan` trains: CTGAN's residual network, then its output heads (tanh scalars,
    Gumbel-softmax one-hots, drawn with the 'sample' rng). `y` is the batch's condition {"cond", ["mask"]}; with
    a mask (training) the conditional cross-entropy is sown into the 'losses' collection, which the train step
    adds to the generator's loss (CTGAN: loss_g = -E[D(G(z, c))] + cross_entropy)."""

    output_info: tuple[Span, ...]
    dims: Sequence[int] = (256, 256)
    tau: float = GUMBEL_TAU
    cond_loss_weight: float = 1.0

    @nn.compact
    def __call__(self, z: Array, y: dict[str, Array] | None = None, *, train: bool) -> Array:
        cond = None if y is None else y["cond"]
        raw = CTGANGenerator(sum(s.dim for s in self.output_info), tuple(self.dims))(z, cond, train=train)
        if y is not None and "mask" in y and self.cond_loss_weight > 0:
            loss = conditional_loss(raw, y["cond"], y["mask"], self.output_info)
            self.sow("losses", "conditional", self.cond_loss_weight * loss)
        return apply_output_activation(raw, self.output_info, self.make_rng("sample"), self.tau)


class TableCritic(nn.Module):
    """CTGAN's packed critic on rows and their condition: one score per pack of `pac` rows."""

    dims: Sequence[int] = (256, 256)
    pac: int = PAC
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: Array, y: dict[str, Array] | None = None, *, train: bool) -> Array:
        cond = None if y is None else y["cond"]
        return CTGANCritic(tuple(self.dims), self.pac, self.dropout)(x, cond, train=train)

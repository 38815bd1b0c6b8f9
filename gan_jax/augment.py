"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

With little data the critic memorises the real images and its feedback to G degrades. DiffAugment applies the same
kind of random augmentation to every image the critic sees, real and fake, in both the critic and the generator
update; because every op is differentiable in the image, G's gradient passes through it. This is a JAX port of the
behaviour of the official `DiffAugment_pytorch.py` (mit-han-lab/data-efficient-gans), for NHWC images in [-1, 1]:

- "color": brightness x + U(-0.5, 0.5), then saturation (x - mean_c) * U(0, 2) + mean_c (mean over channels),
  then contrast (x - mean) * U(0.5, 1.5) + mean (mean over the whole image);
- "translation": an integer shift of up to size // 8 pixels on each axis, zero-filled;
- "cutout": one (H // 2) x (W // 2) square set to zero, its centre anywhere in the image (clipped at the border).

Every parameter is drawn per example, so real and fake may go through one call on their concatenation (the
critic's usual batch); two separate calls with the same key would give real[i] and fake[i] the same draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError

Array = jax.Array

POLICIES = ("color", "translation", "cutout")
TRANSLATION_DIVISOR = 8  # shifts of up to size // 8 pixels (the reference's ratio 1/8)
CUTOUT_DIVISOR = 2  # a square of size // 2 on a side (the reference's ratio 1/2)


def _uniform(key: Array, x: Array, low: float, high: float) -> Array:
    """One draw per example, broadcastable against NHWC `x`, in its dtype."""
    return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def _brightness(x: Array, key: Array) -> Array:
    return x + _uniform(key, x, -0.5, 0.5)


def _saturation(x: Array, key: Array) -> Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)  # per pixel, over channels: a no-op for one channel
    return (x - mean) * _uniform(key, x, 0.0, 2.0) + mean


def _contrast(x: Array, key: Array) -> Array:
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)  # per example
    return (x - mean) * _uniform(key, x, 0.5, 1.5) + mean


def _color(x: Array, key: Array) -> Array:
    k_brightness, k_saturation, k_contrast = jax.random.split(key, 3)
    return _contrast(_saturation(_brightness(x, k_brightness), k_saturation), k_contrast)


def _translation_shifts(key: Array, batch: int, height: int, width: int) -> tuple[Array, Array]:
    """Integer shifts per example, uniform on [-size // 8, size // 8] for each axis, as the reference."""
    k_h, k_w = jax.random.split(key)
    max_h, max_w = height // TRANSLATION_DIVISOR, width // TRANSLATION_DIVISOR
    return (
        jax.random.randint(k_h, (batch,), -max_h, max_h + 1),
        jax.random.randint(k_w, (batch,), -max_w, max_w + 1),
    )


def _translate(x: Array, shift_h: Array, shift_w: Array) -> Array:
    """out[b, i, j] = x[b, i + shift_h[b], j + shift_w[b]], zero where that falls outside the image.

    As the reference: indices into a one-pixel zero border, clamped onto it; a gather, so the gradient is a
    scatter-add of the output's gradient back to the pixels it came from."""
    batch, height, width, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = jnp.clip(jnp.arange(height)[None, :] + shift_h[:, None] + 1, 0, height + 1)  # [B, H]
    cols = jnp.clip(jnp.arange(width)[None, :] + shift_w[:, None] + 1, 0, width + 1)  # [B, W]
    return padded[jnp.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _translation(x: Array, key: Array) -> Array:
    return _translate(x, *_translation_shifts(key, x.shape[0], x.shape[1], x.shape[2]))


def _cutout_offsets(key: Array, batch: int, height: int, width: int) -> tuple[Array, Array]:
    """The square's centre per example, as the reference: uniform on [0, size - (cut % 2)] for each axis."""
    k_h, k_w = jax.random.split(key)
    cut_h, cut_w = height // CUTOUT_DIVISOR, width // CUTOUT_DIVISOR
    return (
        jax.random.randint(k_h, (batch,), 0, height + 1 - cut_h % 2),
        jax.random.randint(k_w, (batch,), 0, width + 1 - cut_w % 2),
    )


def _cutout_at(x: Array, offset_h: Array, offset_w: Array) -> Array:
    """Zeroes rows [o_h - cut_h // 2, o_h - cut_h // 2 + cut_h) x the same for columns, clipped to the image.

    The reference scatters zeros at those indices clamped into the image; a clamped index lands on a border
    row or column the square already covers, so this is the same mask, built by comparisons (no scatter)."""
    _, height, width, _ = x.shape
    cut_h, cut_w = height // CUTOUT_DIVISOR, width // CUTOUT_DIVISOR
    top = (offset_h - cut_h // 2)[:, None]
    left = (offset_w - cut_w // 2)[:, None]
    rows = jnp.arange(height)[None, :]
    cols = jnp.arange(width)[None, :]
    in_rows = (rows >= top) & (rows < top + cut_h)  # [B, H]
    in_cols = (cols >= left) & (cols < left + cut_w)  # [B, W]
    inside = in_rows[:, :, None, None] & in_cols[:, None, :, None]  # [B, H, W, 1]
    return jnp.where(inside, jnp.zeros((), x.dtype), x)


def _cutout(x: Array, key: Array) -> Array:
    return _cutout_at(x, *_cutout_offsets(key, x.shape[0], x.shape[1], x.shape[2]))


_OPS: dict[str, Callable[[Array, Array], Array]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def parse_policy(policy: Sequence[str] | str) -> tuple[str, ...]:
    """The op names of a policy, checked: a sequence of names, or the reference's comma-separated string."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip()) if isinstance(policy, str) else tuple(policy)
    unknown = [name for name in names if name not in _OPS]
    if unknown:
        raise ConfigError(f"unknown DiffAugment op(s) {unknown}: choose from {list(POLICIES)}")
    return names


def diff_augment(x: Array, key: Array, policy: Sequence[str] | str) -> Array:
    """Applies the ops of `policy` in order to NHWC images `x`, op i with key fold_in(key, i).

    Differentiable in `x` and jit-able (the policy is static); shape and dtype are kept. An empty policy
    returns `x` unchanged. Unknown op names raise ConfigError.
    """
    names = parse_policy(policy)
    if not names:
        return x
    if x.ndim != 4:
        raise ConfigError(f"DiffAugment needs NHWC images; got shape {x.shape}: turn augmentation off for this data")
    for index, name in enumerate(names):
        x = _OPS[name](x, jax.random.fold_in(key, index))
    return x

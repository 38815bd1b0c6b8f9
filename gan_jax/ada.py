"""ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data").

With little data the critic memorises the reals. ADA augments everything the critic sees, reals and fakes, with
probability p per transform, and tunes p during training from the critic's overfitting signal r_t = E[sign(D(x))]
(`adjust_p`). While p stays below about 0.8, the augmented distribution still determines the clean one, so the
augmentations do not "leak" into G's samples. This is a JAX port of
NVlabs/stylegan2-ada-pytorch's `training/augment.py` (`AugmentPipe`) for NHWC images in [-1, 1]:

- geometric ops (x-flip, 90-degree rotations, integer translation, isotropic scaling, pre/post rotation,
  anisotropic scaling, fractional translation) are composed into one inverse 3x3 matrix per example and applied
  once: reflect padding, 2x up-sampling with the `sym6` wavelet low-pass, bilinear sampling, 2x down-sampling
  with the same filter;
- colour ops (brightness, contrast, luma flip, hue rotation, saturation) are composed into one 4x4 matrix per
  example in RGB; a 1-channel image is treated as grey RGB and gets the mean of the output channels (hue and
  saturation do nothing to it), as the reference;
- then image-space filtering (4 frequency bands), additive noise and cutout.

Each op draws its values per example and applies them with probability p * strength (`AdaSpec`), from its own
row of one block of draws, so enabling one op does not change the draws of another. p is a traced scalar:
changing it does not recompile. Every op is differentiable in the image (gathers, pads, `conv_nhwc` filters:
reverse mode at any order, no feature-grouped convolutions); the draws do not depend on the image.

Deliberate differences from the reference:

- Static padding. The reference pads by the batch's largest margin, computed from the drawn matrices and clamped
  to size - 1; a jitted program needs a static shape, so the geometric stage always pads by that clamp (size - 1
  per side; for a spec without the general ops, by the bound its integer translation allows). The reference's
  narrower padding covers the region it samples, so the outputs agree (measured: within 6e-5 per example, 2e-5
  for a whole batch, at 16 and 32 pixels); a by-product is that an example's output no longer depends on the
  rest of its batch. The price is memory: the up-sampled
  padded image is ~36x the input's pixels (the reference reaches that only when a batch needs the clamp).
- Exact pixel blitting (`AdaSpec.exact_blit`, on by default). The reference sends the blit ops (x-flip, 90-degree
  rotations, integer translation) through the same resampling as the general ones; `sym6` is not symmetric, so
  up- then down-sampling a flipped or rotated image is not the flipped image (up to 0.3 on white noise at
  16x16): flipped examples get a different high-frequency response from unflipped ones. With `exact_blit`, an
  example whose drawn transform has no general op is moved by an exact pixel gather (reflect at the border, as
  the padding); examples with a general op take the reference's path, blit ops included. `exact_blit=False`
  resamples every transformed example, as the reference.
- Untransformed examples are passed through. The reference resamples (and colour-transforms) the whole batch
  when any example is transformed, which changes the untouched ones by rounding (~1e-6); here an example whose
  matrix is exactly the identity keeps its input bit for bit, and a stage none of the batch needs is skipped
  (`lax.cond`), so p = 0 returns the input unchanged at little cost.
- 90-degree rotation matrices are built from exact 0 / +-1 entries (the reference's float32 cos(pi / 2) is
  -4e-8, a slightly off-grid sample).
- Image-space filtering reflects repeatedly when the filter (43 taps) is wider than the image (the reference's
  reflect padding fails below 22 pixels).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan_jax.errors import ConfigError
from gan_jax.models.layers import conv_nhwc

Array = jax.Array

# The low-pass filters of the reference (orthogonal wavelets' decomposition filters).
_SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
    0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
    0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip
_SYM2 = (-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025)
_GEOM_FILTER = tuple(float(v) for v in np.asarray(_SYM6, np.float32) / np.float32(np.sum(np.float32(_SYM6))))
_GEOM_PAD = len(_SYM6) // 4  # the reference's Hz_pad: the sampled margin around the output, in pixels
_EXPECTED_POWER = np.array([10.0, 1.0, 1.0, 1.0], np.float32) / 13.0  # of the 4 bands (a 1/f spectrum)
_LUMA = np.array([1.0, 1.0, 1.0, 0.0], np.float32) / np.sqrt(np.float32(3.0))  # the luma axis in homogeneous RGB


def _filter_bank() -> np.ndarray:
    """The reference's 4 band-pass filters [4, 43]: each level zero-inserts, low-passes, and adds one high band."""
    lo = np.asarray(_SYM2)
    hi = lo * (-1.0) ** np.arange(lo.size)
    lo2, hi2 = np.convolve(lo, lo[::-1]) / 2, np.convolve(hi, hi[::-1]) / 2
    bank = np.eye(4, 1)
    for band in range(1, bank.shape[0]):
        inserted = np.zeros((bank.shape[0], 2 * bank.shape[1] - 1))
        inserted[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in inserted])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank.astype(np.float32)


_FILTER_BANK = _filter_bank()


@dataclass(frozen=True)
class AdaSpec:
    """Per-op probability multipliers (0: off) and the ranges of their draws; the reference's names and defaults.

    Hashable, so it can be a static argument of a jitted function."""

    xflip: float = 0.0  # pixel blitting
    rotate90: float = 0.0
    xint: float = 0.0
    xint_max: float = 0.125  # integer translation, relative to the image size
    scale: float = 0.0  # general geometric transforms
    rotate: float = 0.0
    aniso: float = 0.0
    xfrac: float = 0.0
    scale_std: float = 0.2  # log2
    rotate_max: float = 1.0  # 1 = full circle
    aniso_std: float = 0.2  # log2
    xfrac_std: float = 0.125  # relative to the image size
    brightness: float = 0.0  # colour transforms
    contrast: float = 0.0
    lumaflip: float = 0.0
    hue: float = 0.0
    saturation: float = 0.0
    brightness_std: float = 0.2
    contrast_std: float = 0.5  # log2
    hue_max: float = 1.0  # 1 = full circle
    saturation_std: float = 1.0  # log2
    imgfilter: float = 0.0  # image-space filtering
    imgfilter_bands: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    imgfilter_std: float = 1.0  # log2
    noise: float = 0.0  # image-space corruptions
    cutout: float = 0.0
    noise_std: float = 0.1
    cutout_size: float = 0.5  # relative to the image size
    exact_blit: bool = True  # blit-only examples by exact pixel gathers (see the module docstring)

    @property
    def blit_on(self) -> bool:
        return max(self.xflip, self.rotate90, self.xint) > 0

    @property
    def general_on(self) -> bool:
        return max(self.scale, self.rotate, self.aniso, self.xfrac) > 0

    @property
    def color_on(self) -> bool:
        return max(self.brightness, self.contrast, self.lumaflip, self.hue, self.saturation) > 0


_BLIT = {"xflip": 1, "rotate90": 1, "xint": 1}
_GEOM = {"scale": 1, "rotate": 1, "aniso": 1, "xfrac": 1}
_COLOR = {"brightness": 1, "contrast": 1, "lumaflip": 1, "hue": 1, "saturation": 1}
# The reference's train.py `augpipe_specs`.
PRESETS: MappingProxyType[str, AdaSpec] = MappingProxyType(
    {
        "blit": AdaSpec(**_BLIT),
        "geom": AdaSpec(**_GEOM),
        "color": AdaSpec(**_COLOR),
        "filter": AdaSpec(imgfilter=1),
        "noise": AdaSpec(noise=1),
        "cutout": AdaSpec(cutout=1),
        "bg": AdaSpec(**_BLIT, **_GEOM),
        "bgc": AdaSpec(**_BLIT, **_GEOM, **_COLOR),
        "bgcf": AdaSpec(**_BLIT, **_GEOM, **_COLOR, imgfilter=1),
        "bgcfn": AdaSpec(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1),
        "bgcfnc": AdaSpec(**_BLIT, **_GEOM, **_COLOR, imgfilter=1, noise=1, cutout=1),
    }
)


def spec_from_name(name: str, **overrides: Any) -> AdaSpec:
    """The preset `name` (the reference's `--augpipe`), with fields replaced by `overrides` (e.g. xint_max)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown ADA pipeline {name!r}: choose from {sorted(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(AdaSpec)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"unknown ADA option(s) {unknown}: choose from {sorted(fields)}")
    return dataclasses.replace(PRESETS[name], **overrides)


# ----------------------------------------------------------------------------------------------------------------
# _Draws: per op, a coin per example (applied with probability p * strength) and the values of its transform.

_OPS = (
    *("xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post", "xfrac"),
    *("brightness", "contrast", "lumaflip", "hue", "saturation", "imgfilter", "noise", "cutout"),
)
_OP_IDS = {name: i for i, name in enumerate(_OPS)}
_SLOTS = 4  # draws per op and example: a coin and up to 3 values (imgfilter: 4 coins, 4 gains)


class _Draws(NamedTuple):
    """All the per-example random numbers of one call, drawn at once (two RNG calls keep the program small):
    op i reads row i whatever the spec enables, so enabling an op leaves the other ops' draws unchanged."""

    uniform: Array  # [ops, slots, B] in [0, 1)
    normal: Array  # [ops, slots, B]
    pixels: Array  # the key of the noise op's per-pixel draws

    def coin(self, op: str, prob: Array, slot: int = 0) -> Array:
        """Whether `op` applies, per example [B], with probability `prob`."""
        return self.uniform[_OP_IDS[op], slot] < prob

    def u(self, op: str, slot: int = 1) -> Array:
        return self.uniform[_OP_IDS[op], slot]

    def n(self, op: str, slot: int = 0) -> Array:
        return self.normal[_OP_IDS[op], slot]


def _draws(key: Array, batch: int) -> _Draws:
    """The draws of `augment(images, key, ...)` for a batch of `batch`."""
    k_uniform, k_normal, k_pixels = jax.random.split(key, 3)
    shape = (len(_OPS), _SLOTS, batch)
    return _Draws(jax.random.uniform(k_uniform, shape), jax.random.normal(k_normal, shape), k_pixels)


def _stack(rows: Sequence[Sequence[Any]], batch: int) -> Array:
    """A [B, n, m] float32 matrix from rows of Python numbers and [B] arrays: the numbers as one constant, each
    array added at its entry (few ops: small programs compile fast)."""
    const = np.array([[e if isinstance(e, int | float) else 0.0 for e in row] for row in rows], np.float32)
    out = jnp.broadcast_to(jnp.asarray(const), (batch, *const.shape))
    for i, row in enumerate(rows):
        for j, entry in enumerate(row):
            if not isinstance(entry, int | float):
                basis = np.zeros(const.shape, np.float32)
                basis[i, j] = 1.0
                out = out + jnp.asarray(entry, jnp.float32)[:, None, None] * basis
    return out


def _matmul(a: Array, b: Array) -> Array:
    """Batched small matrix product as exact float32 sums (no TF32 / bf16 matmul passes on accelerators)."""
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


def _then(mat: Array, applied: Array, op: Array, right: bool) -> Array:
    """`mat @ op` (right) or `op @ mat` where applied, else `mat` untouched (so untouched stays exactly I)."""
    product = _matmul(mat, op) if right else _matmul(op, mat)
    return jnp.where(applied[:, None, None], product, mat)


def _rotate2d(theta: Array, batch: int) -> Array:
    c, s = jnp.cos(theta), jnp.sin(theta)
    return _stack([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch)


def _blit_matrix(d: _Draws, p: Array, spec: AdaSpec, size: int) -> Array:
    """The inverse (output -> input pixel) matrix of the blit ops, in pixels about the image centre [B, 3, 3]."""
    batch = d.uniform.shape[-1]
    mat = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (batch, 3, 3))
    if spec.xflip > 0:
        applied = d.coin("xflip", spec.xflip * p)
        sign = 1.0 - 2.0 * jnp.floor(d.u("xflip") * 2)
        mat = _then(mat, applied, _stack([[sign, 0, 0], [0, 1, 0], [0, 0, 1]], batch), True)
    if spec.rotate90 > 0:
        applied = d.coin("rotate90", spec.rotate90 * p)
        quarter = jnp.floor(d.u("rotate90") * 4).astype(jnp.int32)  # the reference's rotate2d(pi/2 i)
        c, s = jnp.array([1.0, 0.0, -1.0, 0.0])[quarter], jnp.array([0.0, 1.0, 0.0, -1.0])[quarter]
        mat = _then(mat, applied, _stack([[c, -s, 0], [s, c, 0], [0, 0, 1]], batch), True)
    if spec.xint > 0:
        applied = d.coin("xint", spec.xint * p)
        tx = -jnp.round((d.u("xint", 1) * 2 - 1) * spec.xint_max * size)
        ty = -jnp.round((d.u("xint", 2) * 2 - 1) * spec.xint_max * size)
        mat = _then(mat, applied, _stack([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch), True)
    return mat


def _general_matrix(d: _Draws, p: Array, spec: AdaSpec, size: int) -> Array:
    """The inverse matrix of the general geometric ops [B, 3, 3] (applied after the blit ops, as the reference)."""
    batch = d.uniform.shape[-1]
    mat = jnp.broadcast_to(jnp.eye(3, dtype=jnp.float32), (batch, 3, 3))
    if spec.scale > 0:
        applied = d.coin("scale", spec.scale * p)
        inv = jnp.exp2(-d.n("scale") * spec.scale_std)
        mat = _then(mat, applied, _stack([[inv, 0, 0], [0, inv, 0], [0, 0, 1]], batch), True)
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - spec.rotate * p, 0, 1))  # P(pre or post) = rotate * p
    if spec.rotate > 0:
        applied = d.coin("rotate_pre", p_rot)
        theta = (d.u("rotate_pre") * 2 - 1) * np.pi * spec.rotate_max
        mat = _then(mat, applied, _rotate2d(theta, batch), True)
    if spec.aniso > 0:
        applied = d.coin("aniso", spec.aniso * p)
        s = jnp.exp2(d.n("aniso") * spec.aniso_std)
        mat = _then(mat, applied, _stack([[1 / s, 0, 0], [0, s, 0], [0, 0, 1]], batch), True)
    if spec.rotate > 0:
        applied = d.coin("rotate_post", p_rot)
        theta = (d.u("rotate_post") * 2 - 1) * np.pi * spec.rotate_max
        mat = _then(mat, applied, _rotate2d(theta, batch), True)
    if spec.xfrac > 0:
        applied = d.coin("xfrac", spec.xfrac * p)
        tx, ty = -d.n("xfrac", 0) * spec.xfrac_std * size, -d.n("xfrac", 1) * spec.xfrac_std * size
        mat = _then(mat, applied, _stack([[1, 0, tx], [0, 1, ty], [0, 0, 1]], batch), True)
    return mat


def _color_matrix(d: _Draws, p: Array, spec: AdaSpec, channels: int) -> Array:
    """The colour transform [B, 4, 4] in homogeneous RGB (input -> output); hue and saturation only for RGB."""
    batch = d.uniform.shape[-1]
    eye = jnp.eye(4, dtype=jnp.float32)
    vv = jnp.outer(_LUMA, _LUMA)
    mat = jnp.broadcast_to(eye, (batch, 4, 4))
    if spec.brightness > 0:
        applied = d.coin("brightness", spec.brightness * p)
        b = d.n("brightness") * spec.brightness_std
        mat = _then(mat, applied, _stack([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]], batch), False)
    if spec.contrast > 0:
        applied = d.coin("contrast", spec.contrast * p)
        c = jnp.exp2(d.n("contrast") * spec.contrast_std)
        mat = _then(mat, applied, _stack([[c, 0, 0, 0], [0, c, 0, 0], [0, 0, c, 0], [0, 0, 0, 1]], batch), False)
    if spec.lumaflip > 0:
        applied = d.coin("lumaflip", spec.lumaflip * p)
        flip = jnp.floor(d.u("lumaflip") * 2)[:, None, None]
        mat = _then(mat, applied, eye - 2 * vv * flip, False)  # a Householder reflection of the luma axis
    if spec.hue > 0 and channels > 1:
        applied = d.coin("hue", spec.hue * p)
        theta = (d.u("hue") * 2 - 1) * np.pi * spec.hue_max
        mat = _then(mat, applied, _rotate3d(theta, batch), False)
    if spec.saturation > 0 and channels > 1:
        applied = d.coin("saturation", spec.saturation * p)
        s = jnp.exp2(d.n("saturation") * spec.saturation_std)[:, None, None]
        mat = _then(mat, applied, vv + (eye - vv) * s, False)
    return mat


def _rotate3d(theta: Array, batch: int) -> Array:
    """Rotation by theta about the luma axis (the reference's rotate3d(v, theta))."""
    vx, vy, vz = (float(c) for c in _LUMA[:3])
    s, c = jnp.sin(theta), jnp.cos(theta)
    cc = 1 - c
    return _stack(
        [
            [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0],
            [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0],
            [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0],
            [0, 0, 0, 1],
        ],
        batch,
    )


# ----------------------------------------------------------------------------------------------------------------
# Execution.


def _is_identity(mat: Array) -> Array:
    """Per example [B]: is the matrix exactly I (no op applied), so the input may pass untouched."""
    return jnp.all(mat == jnp.eye(mat.shape[-1], dtype=mat.dtype), axis=(-2, -1))


def _only_where(mask: Array, fn: Callable[[Array], Array], x: Array, fallback: Array) -> Array:
    """`fn(x)` for the examples in `mask`, `fallback` for the rest; `fn` runs only if some example needs it."""

    def run(operands: tuple[Array, Array]) -> Array:
        x, fallback = operands
        return jnp.where(mask[:, None, None, None], fn(x), fallback)

    return lax.cond(jnp.any(mask), run, lambda operands: operands[1], (x, fallback))


def _reflect_index(i: Array, n: int) -> Array:
    """Index into [0, n) of the reflection (edge not repeated, period 2n - 2) of position i, as reflect padding."""
    period = 2 * n - 2
    i = jnp.mod(i, period)
    return jnp.where(i >= n, period - i, i)


def _gather(x: Array, rows: Array, cols: Array) -> Array:
    """x[b, rows[b, i, j], cols[b, i, j]] for NHWC x and int index maps [B, h, w]."""
    batch, height, width, channels = x.shape
    flat = (rows * width + cols).reshape(batch, -1, 1)
    out = jnp.take_along_axis(x.reshape(batch, height * width, channels), flat, axis=1, mode="clip")
    return out.reshape(*rows.shape, channels)


def _blit(x: Array, mat: Array) -> Array:
    """Moves each image by its blit matrix (0 / +-1 rotation part, integer shift) by an exact pixel gather."""
    size = x.shape[1]
    centred = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    cx, cy = centred[None, None, :], centred[None, :, None]
    m = mat[:, :, :, None, None]
    src_x = m[:, 0, 0] * cx + m[:, 0, 1] * cy + m[:, 0, 2] + (size - 1) / 2
    src_y = m[:, 1, 0] * cx + m[:, 1, 1] * cy + m[:, 1, 2] + (size - 1) / 2
    to_index = lambda v: _reflect_index(jnp.round(v).astype(jnp.int32), size)  # noqa: E731
    return _gather(x, to_index(src_y), to_index(src_x))


def _conv_axis(x: Array, taps: Sequence[float], axis: int, pads: tuple[int, int]) -> Array:
    """Correlation of each channel of NHWC `x` with `taps` along `axis` (1: rows, 2: columns), zero pads
    (negative: crops), as one plain convolution (a diagonal C x C kernel: no feature groups)."""
    channels = x.shape[-1]
    kernel = np.asarray(taps, np.float32)[:, None, None] * np.eye(channels, dtype=np.float32)  # [T, C, C]
    kernel = kernel[:, None] if axis == 1 else kernel[None, :]
    padding = (pads, (0, 0)) if axis == 1 else ((0, 0), pads)
    return conv_nhwc(x, jnp.asarray(kernel), padding)


def _upsample(x: Array, axis: int) -> Array:
    """The reference's upsample2d along one axis: zero insertion, pad (6, 5), convolution with 2 * sym6."""
    n = x.shape[axis]
    inserted = jnp.stack([x, jnp.zeros_like(x)], axis=axis + 1).reshape(*x.shape[:axis], 2 * n, *x.shape[axis + 1 :])
    taps = len(_GEOM_FILTER)
    flipped = [2.0 * v for v in reversed(_GEOM_FILTER)]  # a convolution is a correlation with the flipped filter
    return _conv_axis(inserted, flipped, axis, ((taps + 1) // 2, (taps - 2) // 2))


def _downsample(x: Array, axis: int) -> Array:
    """The reference's downsample2d(padding=-2 * Hz_pad, flip_filter=True) on one axis: crop 1, correlate, stride 2."""
    filtered = _conv_axis(x, _GEOM_FILTER, axis, (-1, -1))
    return lax.slice_in_dim(filtered, 0, filtered.shape[axis], 2, axis)


def _bilinear(x: Array, px: Array, py: Array) -> Array:
    """grid_sample(mode='bilinear', padding_mode='zeros') at pixel coordinates px, py [B, h, w] of NHWC x."""
    _, height, width, _ = x.shape
    x0, y0 = jnp.floor(px), jnp.floor(py)
    fx, fy = (px - x0)[..., None], (py - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    out = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            r, c = y0 + dy, x0 + dx
            inside = ((r >= 0) & (r < height) & (c >= 0) & (c < width))[..., None]
            sample = _gather(x, jnp.clip(r, 0, height - 1), jnp.clip(c, 0, width - 1))
            out = out + jnp.where(inside, sample, 0.0) * (wx * wy)
    return out


def _resample(x: Array, mat: Array, pad: int) -> Array:
    """The reference's geometric execution with a static pad: reflect pad, up 2x, sample, down 2x and crop."""
    size = x.shape[1]
    padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    up = _upsample(_upsample(padded, 2), 1)  # [B, 2 (size + 2 pad), .., C]
    out_len = 2 * (size + 2 * _GEOM_PAD)  # the sampled grid: the output and a margin of Hz_pad pixels
    # Output grid pixel j sits at (j + 1) / 2 - out_len / 4 original pixels from the centre; its source, G_inv of
    # that, at 2 G_inv(.) + up_len / 2 - 1 up-sampled pixels (the reference's chain of matrices, in closed form).
    centred = (jnp.arange(out_len, dtype=jnp.float32) + 1) / 2 - out_len / 4
    cx, cy = centred[None, None, :], centred[None, :, None]
    m = mat[:, :, :, None, None]
    offset = up.shape[1] / 2 - 1
    px = 2 * (m[:, 0, 0] * cx + m[:, 0, 1] * cy + m[:, 0, 2]) + offset
    py = 2 * (m[:, 1, 0] * cx + m[:, 1, 1] * cy + m[:, 1, 2]) + offset
    sampled = _bilinear(up, px, py)
    return _downsample(_downsample(sampled, 1), 2)


def _resample_pad(spec: AdaSpec, size: int) -> int:
    """The static padding: the reference's clamp (size - 1), or, with only blit ops, the most they can need."""
    if spec.general_on:
        return size - 1
    return min(size - 1, math.ceil(spec.xint_max * size) + 2 * _GEOM_PAD)


def _geometric(x: Array, d: _Draws, p: Array, spec: AdaSpec) -> Array:
    """The geometric stage: exact blits where the draw allows (`exact_blit`), the reference's resampling else."""
    size = x.shape[1]
    blit = _blit_matrix(d, p, spec, size)
    general = _general_matrix(d, p, spec, size) if spec.general_on else None
    full = blit if general is None else _matmul(blit, general)
    resample = lambda v: _resample(v, full, _resample_pad(spec, size))  # noqa: E731
    if not spec.exact_blit:
        return _only_where(~_is_identity(full), resample, x, x)
    out = _only_where(~_is_identity(blit), lambda v: _blit(v, blit), x, x) if spec.blit_on else x
    if general is None:
        return out
    return _only_where(~_is_identity(general), resample, x, out)


def _apply_color(x: Array, mat: Array) -> Array:
    """The reference's colour execution: RGB through the 3x4 part; grey through the mean of its output rows."""
    m = mat[:, :, :, None, None, None]  # [B, 4, 4, 1, 1, 1] against [B, H, W, 1] channel slices
    if x.shape[-1] == 3:
        channels = [x[..., j : j + 1] for j in range(3)]
        rows = [sum(m[:, i, j] * channels[j] for j in range(3)) + m[:, i, 3] for i in range(3)]
        return jnp.concatenate(rows, axis=-1)
    row = jnp.mean(mat[:, :3, :], axis=1)  # [B, 4]
    return x * jnp.sum(row[:, :3], axis=1)[:, None, None, None] + row[:, 3][:, None, None, None]


def _band_gains(d: _Draws, p: Array, spec: AdaSpec) -> tuple[Array, Array]:
    """Per-example gains of the 4 bands [B, 4] (each band amplified with probability p * imgfilter * its
    strength, the total power kept), and whether any band was drawn [B]."""
    bands = _FILTER_BANK.shape[0]
    if len(spec.imgfilter_bands) != bands:
        raise ConfigError(f"ADA imgfilter_bands needs {bands} values, got {list(spec.imgfilter_bands)}")
    batch = d.uniform.shape[-1]
    gain = jnp.ones((batch, bands), jnp.float32)
    any_applied = jnp.zeros((batch,), bool)
    for i, band_strength in enumerate(spec.imgfilter_bands):
        applied = d.coin("imgfilter", spec.imgfilter * p * band_strength, slot=i)
        t_i = jnp.exp2(d.n("imgfilter", i) * spec.imgfilter_std)
        t = jnp.ones((batch, bands), jnp.float32).at[:, i].set(jnp.where(applied, t_i, 1.0))
        gain = gain * t / jnp.sqrt(jnp.sum(_EXPECTED_POWER * t * t, axis=-1, keepdims=True))
        any_applied = any_applied | applied
    return gain, any_applied


def _filter_bands(x: Array, gain: Array) -> Array:
    """The reference's execution: reflect pad, then the separable filter gain @ bank along width, then height.

    Per example the filter is sum_k gain_k bank_k: each channel plane goes through the 4 fixed band filters (one
    convolution, 4 outputs) and the outputs are mixed by that example's gains, once per axis."""
    batch, height, width, channels = x.shape
    half = _FILTER_BANK.shape[1] // 2
    padded = jnp.pad(x, ((0, 0), (half, half), (half, half), (0, 0)), mode="reflect")
    planes = padded.transpose(0, 3, 1, 2).reshape(batch * channels, height + 2 * half, width + 2 * half, 1)
    weights = jnp.repeat(gain, channels, axis=0)[:, None, None, :]  # [B * C, 1, 1, bands]
    bank = _FILTER_BANK.T[:, None, :]  # [taps, 1 (in), bands (out)]
    along_w = conv_nhwc(planes, jnp.asarray(bank[None]), ((0, 0), (0, 0)))
    along_w = jnp.sum(along_w * weights, axis=-1, keepdims=True)
    along_h = jnp.sum(conv_nhwc(along_w, jnp.asarray(bank[:, None]), ((0, 0), (0, 0))) * weights, axis=-1)
    return along_h.reshape(batch, channels, height, width).transpose(0, 2, 3, 1)


def _imgfilter(x: Array, d: _Draws, p: Array, spec: AdaSpec) -> Array:
    """Image-space filtering, only for the examples that drew a band (the filter is never exactly the identity)."""
    gain, any_applied = _band_gains(d, p, spec)
    return _only_where(any_applied, lambda v: _filter_bands(v, gain), x, x)


def _noise(x: Array, d: _Draws, p: Array, spec: AdaSpec) -> Array:
    """Additive Gaussian noise with a per-example sigma ~ |N(0, noise_std^2)|."""
    applied = d.coin("noise", spec.noise * p)
    sigma = (jnp.abs(d.n("noise")) * spec.noise_std)[:, None, None, None]
    return _only_where(applied, lambda v: v + jax.random.normal(d.pixels, v.shape) * sigma, x, x)


def _cutout(x: Array, d: _Draws, p: Array, spec: AdaSpec) -> Array:
    """Zeroes a cutout_size square (relative) centred uniformly in the image (clipped at its border)."""
    _, height, width, _ = x.shape
    applied = d.coin("cutout", spec.cutout * p)
    centre_x, centre_y = d.u("cutout", 1)[:, None, None], d.u("cutout", 2)[:, None, None]
    half = jnp.where(applied, spec.cutout_size, 0.0)[:, None, None] / 2
    cols = (jnp.arange(width, dtype=jnp.float32)[None, None, :] + 0.5) / width
    rows = (jnp.arange(height, dtype=jnp.float32)[None, :, None] + 0.5) / height
    keep = (jnp.abs(cols - centre_x) >= half) | (jnp.abs(rows - centre_y) >= half)
    return x * keep[..., None].astype(x.dtype)


def augment(images: Array, key: Array, p: Array | float, spec: AdaSpec) -> Array:
    """ADA's augmentation of NHWC `images` in [-1, 1]: each op of `spec` per example with probability p * strength.

    `p` may be traced (the train state's value): no recompilation when it changes. p = 0 returns `images`
    bit for bit. Differentiable in `images`; shape and dtype are kept (the work is done in float32).
    """
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[1] < 8:
        raise ConfigError(f"ADA needs square NHWC images of at least 8x8; got shape {images.shape}")
    if spec.color_on and images.shape[-1] not in (1, 3):
        raise ConfigError(f"ADA's colour ops need 1 or 3 channels; got {images.shape[-1]}: use a spec without them")
    p = jnp.asarray(p, jnp.float32)
    x = images.astype(jnp.float32)
    d = _draws(key, x.shape[0])
    if spec.blit_on or spec.general_on:
        x = _geometric(x, d, p, spec)
    if spec.color_on:
        mat = _color_matrix(d, p, spec, x.shape[-1])
        x = jnp.where(_is_identity(mat)[:, None, None, None], x, _apply_color(x, mat))
    if spec.imgfilter > 0:
        x = _imgfilter(x, d, p, spec)
    if spec.noise > 0:
        x = _noise(x, d, p, spec)
    if spec.cutout > 0:
        x = _cutout(x, d, p, spec)
    return x.astype(images.dtype)


def adjust_p(
    p: Array | float,
    rt_sign_mean: Array | float,
    batch_size: int,
    interval: int,
    target: float = 0.6,
    speed_kimg: float = 500.0,
) -> Array:
    """ADA's heuristic (the reference's training loop): p moves by batch_size * interval / (speed_kimg * 1000)
    towards more augmentation when r_t = E[sign(D(real))] exceeds `target` (the critic overfits), towards less
    when below; p stays >= 0 (the reference sets no upper bound)."""
    step = jnp.sign(jnp.asarray(rt_sign_mean, jnp.float32) - target) * (batch_size * interval) / (speed_kimg * 1000)
    return jnp.maximum(jnp.asarray(p, jnp.float32) + step, 0.0)

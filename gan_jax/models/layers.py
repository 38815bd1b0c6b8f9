"""Convolutions that stay on XLA:CPU's fast path in the forward pass and in every gradient.

XLA:CPU hands a convolution to a library (Eigen, or YNNPACK by default in jaxlib 0.10) only if it has
NHWC/HWIO dimension labels and no window reversal (`PotentiallyImplementedAsEigenConvolution`); any other
convolution is emitted as a naive loop, 10-100x slower. Flax's layers produce such convolutions:

- JAX's conv gradients have other labels (weight grad `f01b_i01o->01bf`, input grad `b01f_01oi->b01f`) and rely
  on XLA's `ConvCanonicalization` pass to transpose them, but that pass only visits the entry computation, so
  inside `lax.scan`/`fori_loop` bodies (the n_critic loop, multi-step dispatch) every conv gradient is slow.
- The weight gradient of `nn.ConvTranspose` (a conv with an lhs-dilated operand) is swapped by the algebraic
  simplifier into a window-reversed conv after canonicalization ran, so it is slow even at top level.

Here every convolution is written in canonical form by hand. `conv_nhwc` is a stride-1 conv whose custom VJP
is again `conv_nhwc` calls, so this holds at any order of reverse-mode differentiation. `Conv` and
`ConvTranspose` are drop-ins for `nn.Conv` / `nn.ConvTranspose` (same parameter names, shapes, initializers
and function): strided convs keep XLA's strided forward but get canonical gradients (`conv_strided`), and
transposed convs are computed by sub-pixel phase decomposition. A custom VJP has no forward-mode (jvp) rule.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

Initializer = nn.initializers.Initializer
Pads = tuple[tuple[int, int], tuple[int, int]]
_NHWC = ("NHWC", "HWIO", "NHWC")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_nhwc(x: jax.Array, w: jax.Array, padding: Pads) -> jax.Array:
    """Stride-1 NHWC x HWIO convolution with explicit (low, high) zero padding (negative pads crop)."""
    return _conv_oriented(x, w, padding)


def _conv_oriented(x: jax.Array, w: jax.Array, padding: Pads) -> jax.Array:
    """The canonical conv, laid out so that XLA's ConvOperandSwapper leaves it alone.

    That pass swaps input and kernel when the kernel's spatial extent exceeds the input's (ignoring dims where
    they match without padding), which yields a window-reversed, non-NHWC conv: a naive loop on XLA:CPU. Such
    convs appear in second-order gradients (a gradient penalty through a VALID conv); here the swap is done
    in canonical layout instead: the kernel becomes the input, the input the kernel, and the output is flipped.
    """
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for (lo, hi), n in zip(padding, x.shape[1:3], strict=True))
    x = x[:, crop[0], crop[1]]
    padding = tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)
    extents = [(k, n) for k, n, p in zip(w.shape[:2], x.shape[1:3], padding, strict=True) if (k, p) != (n, (0, 0))]
    if math.prod(k for k, _ in extents) <= math.prod(n for _, n in extents):
        return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=_NHWC)
    out = [n + lo + hi - k + 1 for n, k, (lo, hi) in zip(x.shape[1:3], w.shape[:2], padding, strict=True)]
    swapped = tuple((o - 1 - lo, o - 1 - hi) for o, (lo, hi) in zip(out, padding, strict=True))
    y = _conv_oriented(w.transpose(3, 0, 1, 2), x.transpose(1, 2, 3, 0), swapped)  # (cout, h, w, batch)
    return jnp.flip(y, (1, 2)).transpose(3, 1, 2, 0)


def _conv_nhwc_fwd(x: jax.Array, w: jax.Array, padding: Pads) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return conv_nhwc(x, w, padding), (x, w)


def _conv_nhwc_bwd(padding: Pads, res: tuple[jax.Array, jax.Array], g: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, w = res
    kh, kw = w.shape[:2]
    (ph_lo, ph_hi), (pw_lo, pw_hi) = padding
    # dx: the cotangent correlated with the spatially flipped kernel, in/out channels swapped.
    back = ((kh - 1 - ph_lo, kh - 1 - ph_hi), (kw - 1 - pw_lo, kw - 1 - pw_hi))
    dx = conv_nhwc(g, jnp.flip(w, (0, 1)).swapaxes(2, 3), back)
    # dw: input channels play the batch, the batch plays the input channels, the cotangent is the kernel.
    dw = conv_nhwc(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), padding)
    return dx, dw.transpose(1, 2, 0, 3)


conv_nhwc.defvjp(_conv_nhwc_fwd, _conv_nhwc_bwd)


def cpu_compiler_options() -> dict[str, str]:
    """Options for `jax.jit(..., compiler_options=...)` of conv-heavy steps: on CPU, convolutions go to Eigen.

    XLA:CPU (jaxlib 0.10) hands convolutions, dots and reductions to YNNPACK by default; on a 2-core AVX2 host
    Eigen ran the DCGAN convolutions 1.3-4x faster and the whole DCGAN step about 1.35x faster. This keeps
    dots and reductions on YNNPACK (the same as XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=
    -individual_convolution, but per jit). Empty on other backends.
    """
    if jax.default_backend() != "cpu":
        return {}
    return {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(i, int) and i > 0 for i in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {v!r}")
    return pair  # type: ignore[return-value]


def _explicit_pads(
    padding: str | int | Sequence, in_hw: Sequence[int], kernel: tuple[int, int], strides: tuple[int, int]
) -> Pads:
    """Flax/lax padding spec ('SAME', 'VALID', int, or (lo, hi) pairs) -> ((lo, hi), (lo, hi))."""
    if isinstance(padding, str) and padding in ("SAME", "VALID"):
        return tuple(lax.padtype_to_pads(in_hw, kernel, strides, padding))  # type: ignore[return-value]
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    if isinstance(padding, Sequence) and len(padding) == 2:
        pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
        if all(len(p) == 2 and all(isinstance(i, int) for i in p) for p in pairs):
            return pairs  # type: ignore[return-value]
    raise ValueError(f"padding must be 'SAME', 'VALID', an int or two (low, high) pairs, got {padding!r}")


def _compute_dtype(dtype: Any, x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Casts input and (float32) kernel to the compute dtype; the cast's gradient brings it back to float32."""
    dtype = dtype or x.dtype
    return x.astype(dtype), kernel.astype(dtype)


def _check_nhwc(x: jax.Array, who: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{who} expects NHWC input (4 dims), got shape {x.shape}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_strided(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Pads) -> jax.Array:
    """Strided NHWC x HWIO convolution whose gradients are canonical convolutions.

    JAX's input gradient would be an lhs-dilated conv (slow on XLA:CPU, non-canonical in loop bodies); here it
    is the input gradient of the same conv written as a stride-1 `conv_nhwc` on the space-to-depth input.
    The weight gradient is one canonical conv with the cotangent, dilated by the stride, as its kernel.
    """
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=_NHWC)


def _conv_strided_fwd(x: jax.Array, w: jax.Array, strides: tuple[int, int], padding: Pads):
    return conv_strided(x, w, strides, padding), (x, w)


def _conv_strided_bwd(strides: tuple[int, int], padding: Pads, res: tuple[jax.Array, jax.Array], g: jax.Array):
    x, w = res
    dx = jax.vjp(lambda x: _space_to_depth_conv(x, w, strides, padding), x)[1](g)[0]
    # Input rows the conv reads run from -lo to (out - 1) * stride + k - 1 - lo: pad to, or crop at, that end.
    pads, crop = [], [slice(None)] * 4
    for axis, (k, s, (lo, _)) in enumerate(zip(w.shape[:2], strides, padding, strict=True), start=1):
        hi = (g.shape[axis] - 1) * s + k - lo - x.shape[axis]
        pads.append((lo, max(hi, 0)))
        crop[axis] = slice(0, x.shape[axis] + min(hi, 0))
    x = x[tuple(crop)]
    dims = dict(rhs_dilation=strides, dimension_numbers=_NHWC)
    dw = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), pads, **dims)
    return dx, dw.transpose(1, 2, 0, 3)


conv_strided.defvjp(_conv_strided_fwd, _conv_strided_bwd)


def _space_to_depth_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], pads: Pads) -> jax.Array:
    """The strided conv as a stride-1 conv: input and kernel (zero-padded to whole blocks) folded by stride."""
    b, _, _, cin = x.shape
    kh, kw, _, cout = kernel.shape
    (sh, sw) = strides
    blocks_h, blocks_w = math.ceil(kh / sh), math.ceil(kw / sw)
    out_h = (x.shape[1] + sum(pads[0]) - kh) // sh + 1
    out_w = (x.shape[2] + sum(pads[1]) - kw) // sw + 1
    # Pad (or crop: negative high pad) to exactly the out + blocks - 1 stride-sized blocks the outputs read;
    # rows added past the conv's own padding only ever meet the zero taps of the padded kernel.
    len_h, len_w = sh * (out_h + blocks_h - 1), sw * (out_w + blocks_w - 1)
    (ph, _), (pw, _) = pads
    config = ((0, 0, 0), (ph, len_h - x.shape[1] - ph, 0), (pw, len_w - x.shape[2] - pw, 0), (0, 0, 0))
    x = lax.pad(x, jnp.zeros((), x.dtype), config)
    x = x.reshape(b, len_h // sh, sh, len_w // sw, sw, cin).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, len_h // sh, len_w // sw, sh * sw * cin)
    w = jnp.pad(kernel, ((0, sh * blocks_h - kh), (0, sw * blocks_w - kw), (0, 0), (0, 0)))
    w = w.reshape(blocks_h, sh, blocks_w, sw, cin, cout).transpose(0, 2, 1, 3, 4, 5)
    w = w.reshape(blocks_h, blocks_w, sh * sw * cin, cout)
    return conv_nhwc(x, w, ((0, 0), (0, 0)))


class Conv(nn.Module):
    """Drop-in for 2-D `nn.Conv(features, kernel_size, strides, padding)` on NHWC input: same parameters and
    function, but forward and gradients are canonical convolutions (`conv_nhwc` / `conv_strided`)."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: int | tuple[int, int] = 1
    padding: str | int | Sequence = "SAME"
    use_bias: bool = True
    kernel_init: Initializer = nn.linear.default_kernel_init
    bias_init: Initializer = nn.initializers.zeros_init()
    dtype: Any = None  # compute dtype (e.g. jnp.bfloat16); None: the input's. Parameters stay float32.

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_nhwc(x, "Conv")
        k, s = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        pads = _explicit_pads(self.padding, x.shape[1:3], k, s)
        kernel = self.param("kernel", self.kernel_init, (*k, x.shape[-1], self.features))
        x, kernel = _compute_dtype(self.dtype, x, kernel)
        y = conv_nhwc(x, kernel, pads) if s == (1, 1) else conv_strided(x, kernel, s, pads)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
        return y


class ConvTranspose(nn.Module):
    """Drop-in for 2-D `nn.ConvTranspose(features, kernel_size, strides, padding="SAME")` on NHWC input.

    Sub-pixel decomposition: output pixel s*m + r only meets the kernel taps t with r + t - pad = 0 mod s, so
    each of the s*s output phases is a small stride-1 conv of the undilated input; the phases are then
    interleaved (depth-to-space). Same `kernel` (kh, kw, cin, cout) and `bias` as Flax.
    """

    features: int
    kernel_size: tuple[int, int] = (4, 4)
    strides: tuple[int, int] = (2, 2)
    padding: str = "SAME"
    use_bias: bool = True
    kernel_init: Initializer = nn.linear.default_kernel_init
    bias_init: Initializer = nn.initializers.zeros_init()
    dtype: Any = None  # compute dtype (e.g. jnp.bfloat16); None: the input's. Parameters stay float32.

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.padding != "SAME":
            raise ValueError(f"ConvTranspose supports only padding='SAME', got {self.padding!r}")
        _check_nhwc(x, "ConvTranspose")
        k, s = _pair(self.kernel_size, "kernel_size"), _pair(self.strides, "strides")
        kernel = self.param("kernel", self.kernel_init, (*k, x.shape[-1], self.features))
        x, kernel = _compute_dtype(self.dtype, x, kernel)
        rows, phases_w = [], _phase_taps(k[1], s[1])
        for th, pad_h in _phase_taps(k[0], s[0]):
            cols = [conv_nhwc(x, kernel[th :: s[0], tw :: s[1]], (pad_h, pad_w)) for tw, pad_w in phases_w]
            rows.append(jnp.stack(cols, axis=3))
        y = jnp.stack(rows, axis=3)  # (b, h, w, phase_h, phase_w, cout)
        b, h, w = x.shape[:3]
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * s[0], w * s[1], self.features)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,)).astype(y.dtype)
        return y


def _phase_taps(k: int, s: int) -> list[tuple[int, tuple[int, int]]]:
    """Per output phase r: its first kernel tap (the others follow every s taps) and its conv's (lo, hi) pads.

    `lax.conv_transpose(padding="SAME")` pads the s-dilated input by `pad` in front, so output s*m + r reads
    input pixel m + d through tap t whenever d = (r + t - pad) / s is an integer.
    """
    pad = k - 1 if s > k - 1 else math.ceil((k + s - 2) / 2)
    phases = []
    for r in range(s):
        taps = [t for t in range(k) if (r + t - pad) % s == 0]
        if not taps:
            raise ValueError(f"ConvTranspose: kernel size {k} < stride {s} leaves output phase {r} empty")
        d_first, d_last = (r + taps[0] - pad) // s, (r + taps[-1] - pad) // s
        phases.append((taps[0], (-d_first, d_last)))
    return phases

"""StyleGAN2 generator and discriminator (Karras et al. 2020) in Flax Linen, after NVlabs/stylegan2-ada-pytorch.

A port of the reference's `training/networks.py` (commit d72cc7d): the same layers, gains, paddings, defaults
and parameter counts, so a reference `state_dict()` converts mechanically (`stylegan2_convert.py`).

Layout and naming:
- Images are NHWC in [-1, 1]. Conv weights are HWIO (reference: OIHW), FC weights [in, out] (reference:
  [out, in]), the synthesis `const` is [H, W, C] (reference: [C, H, W]); the epilogue's `fc` reads its input
  flattened in the reference's NCHW order, so every FC weight converts by a plain transpose.
- The parameter tree mirrors the reference's module tree: `mapping/fc0/weight`, `mapping/embed/bias`,
  `synthesis/b4/const`, `synthesis/b8/conv0/affine/weight`, `synthesis/b8/conv1/noise_strength`,
  `synthesis/b32/torgb/weight`, `synthesis/b8/skip/weight`, D's `b32/fromrgb/weight`, `b32/skip/weight`,
  `b4/conv/weight`, `b4/fc/weight`, `b4/out/bias` (the epilogue is `b4`, as in the reference; its `mbstd`
  layer has no parameters) and D's label `mapping/...`.
- Collections: "params" (trainable, float32) and "stats" (buffers: the mapping's `w_avg`, each synthesis
  layer's `noise_const`). Rng streams: "params" at init (also draws `noise_const`), "noise" for
  noise_mode="random" (an `init` without a "noise" rng runs with the const noise instead).

Equalized learning rate is a runtime weight gain, as in the reference: weights are stored N(0, 1)
(FC: N(0, 1) / lr_multiplier) and scaled by 1/sqrt(fan_in) (FC: lr_multiplier/sqrt(fan_in)) when used.

Modulated convs use the reference's non-fused path (x * styles -> ordinary conv -> * demodulation coefficients),
so every convolution is a plain `conv_nhwc` (see `layers.py`): NHWC/HWIO, no window reversal, canonical at any
order of reverse-mode differentiation (R1 and path-length regularizers differentiate twice). Strided and
transposed convs are written as sums / interleaves of stride-1 phase convs; FIR resampling (upfirdn2d) is a
separable sum of shifted (strided) slices, so no grouped/depthwise conv appears.

Mixed precision: blocks at the `num_fp16_res` highest resolutions compute in `compute_dtype` (the reference's
fp16; use bfloat16 on accelerators). The default float32 keeps every block in float32, which is what XLA:CPU
wants. Parameters, the mapping network, styles, demodulation coefficients, images between blocks (G) and the
D epilogue stay float32, as in the reference.

Deliberate differences from the reference: no fused (grouped-conv) modulation path (same function, different
rounding); demodulation coefficients are computed as styles^2 @ sum(weight^2) (same sum, reordered); no
`freeze_layers` (mask the optimizer instead) and no channels-last options (memory layout is XLA's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from flax.core import FrozenDict
from jax import lax

from gan_jax.errors import ConfigError
from gan_jax.models.layers import conv_nhwc

Filter = Sequence[float]
Kwargs = Mapping[str, Any] | Sequence[tuple[str, Any]] | None  # a dict or (name, value) pairs (hashable)
ARCHITECTURES = ("orig", "skip", "resnet")
NOISE_MODES = ("random", "const", "none")
_SQRT_HALF = math.sqrt(0.5)
_NO_PAD = ((0, 0), (0, 0))


class StyleGAN2ConfigError(ConfigError, ValueError):
    """A StyleGAN2 network spec the reference would not build (a ValueError, and a user-facing ConfigError)."""


# name -> (function, default gain), as the reference's bias_act.activation_funcs (lrelu alpha 0.2).
_ACTIVATIONS: dict[str, tuple[Callable[[jax.Array], jax.Array], float]] = {
    "linear": (lambda x: x, 1.0),
    "relu": (jax.nn.relu, math.sqrt(2)),
    "lrelu": (lambda x: jax.nn.leaky_relu(x, 0.2), math.sqrt(2)),
    "tanh": (jnp.tanh, 1.0),
    "sigmoid": (jax.nn.sigmoid, 1.0),
    "elu": (jax.nn.elu, 1.0),
    "selu": (jax.nn.selu, 1.0),
    "softplus": (jax.nn.softplus, 1.0),
    "swish": (lambda x: jax.nn.sigmoid(x) * x, math.sqrt(2)),
}


# ----------------------------------------------------------------------------------------------------------------
# Ops: bias_act, upfirdn2d, conv2d_resample, modulated_conv2d.


def bias_act(
    x: jax.Array, b: jax.Array | None = None, act: str = "linear", gain: float | None = None, clamp: float | None = None
) -> jax.Array:
    """The reference's bias_act on the channel (last) axis: add bias, activate, scale by gain, clamp to +-clamp."""
    if act not in _ACTIVATIONS:
        raise StyleGAN2ConfigError(f"activation {act!r} is unknown; choose one of {sorted(_ACTIVATIONS)}")
    fn, default_gain = _ACTIVATIONS[act]
    if b is not None:
        x = x + b.astype(x.dtype)
    x = fn(x)
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = jnp.clip(x, -clamp, clamp)
    return x


def normalize_2nd_moment(x: jax.Array, axis: int = 1, eps: float = 1e-8) -> jax.Array:
    """Scales each vector to unit mean square (the mapping's input normalization)."""
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=axis, keepdims=True) + eps)


def filter_taps(resample_filter: Filter) -> np.ndarray:
    """The 1-D FIR filter normalized to unit DC gain; the reference's 2-D filter is its outer product."""
    f = np.asarray(resample_filter, np.float64)
    if f.ndim != 1 or f.size == 0 or f.sum() == 0:
        raise StyleGAN2ConfigError(f"resample_filter must be a non-empty 1-D list with non-zero sum, got {f!r}")
    return f / f.sum()


def _upfirdn_axis(x: jax.Array, taps: np.ndarray, axis: int, up: int, down: int, pads: tuple[int, int]) -> jax.Array:
    """1-D upfirdn along `axis`: zero-insert (up), pad/crop, correlate with `taps`, keep every `down`-th sample."""
    lo, hi = pads
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (lo, hi + up - 1, up - 1)  # interior zeros + the trailing up-1 zeros of the last sample
    x = lax.pad(x, jnp.zeros((), x.dtype), config)
    n = (x.shape[axis] - len(taps)) // down + 1
    if n <= 0:
        raise ValueError(f"upfirdn2d: input of {x.shape[axis]} samples is shorter than the {len(taps)}-tap filter")
    out = None
    for t, c in enumerate(taps):
        if c == 0:
            continue
        term = lax.slice_in_dim(x, t, t + down * (n - 1) + 1, down, axis) * float(c)
        out = term if out is None else out + term
    return out if out is not None else jnp.zeros_like(lax.slice_in_dim(x, 0, n, 1, axis))


def upfirdn2d(
    x: jax.Array, taps: np.ndarray, up: int = 1, down: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1
) -> jax.Array:
    """The reference's upfirdn2d for NHWC input and a separable filter (`taps`: normalized 1-D filter).

    padding is the reference's [x_before, x_after, y_before, y_after] (negative crops). Like the reference
    (flip_filter=False) the filter is convolved, i.e. correlated flipped; gain scales the 2-D filter.
    """
    px0, px1, py0, py1 = padding
    k = np.asarray(taps, np.float64)[::-1] * math.sqrt(gain)
    x = _upfirdn_axis(x, k, 1, up, down, (py0, py1))
    return _upfirdn_axis(x, k, 2, up, down, (px0, px1))


def upsample2d(x: jax.Array, taps: np.ndarray, up: int = 2) -> jax.Array:
    """2x FIR upsampling with the reference's default padding (output = input * up)."""
    fw = len(taps)
    p0, p1 = (fw + up - 1) // 2, (fw - up) // 2
    return upfirdn2d(x, taps, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: jax.Array, taps: np.ndarray, down: int = 2) -> jax.Array:
    """2x FIR downsampling with the reference's default padding (output = input / down)."""
    fw = len(taps)
    p0, p1 = (fw - down + 1) // 2, (fw - down) // 2
    return upfirdn2d(x, taps, down=down, padding=(p0, p1, p0, p1))


def _conv_strided_phases(x: jax.Array, w: jax.Array, s: int) -> jax.Array:
    """VALID stride-s correlation as a sum of s*s stride-1 convs: phase (a, b) meets taps w[a::s, b::s] only."""
    k = w.shape[0]
    n_h, n_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = None
    for a in range(min(s, k)):
        for b in range(min(s, k)):
            w_ab = w[a::s, b::s]
            m_h, m_w = n_h + w_ab.shape[0] - 1, n_w + w_ab.shape[1] - 1
            x_ab = x[:, a : a + s * (m_h - 1) + 1 : s, b : b + s * (m_w - 1) + 1 : s]
            y = conv_nhwc(x_ab, w_ab, _NO_PAD)
            out = y if out is None else out + y
    return out


def _conv_transpose_phases(x: jax.Array, w: jax.Array, s: int) -> tuple[jax.Array, int]:
    """Full ('padding 0') stride-s transposed conv, y[s*m + r] = sum_j x[m - j] w[r + s*j], by sub-pixel phases.

    Each output phase r is a stride-1 correlation with the flipped taps w[r::s]; all phases are padded to the
    same length n0 and interleaved. Returns the result and how many trailing rows/cols (zeros) exceed the
    reference's (H - 1) * s + k.
    """
    b, h, wd, _ = x.shape
    k = w.shape[0]
    if k < s:
        raise ValueError(f"transposed conv: kernel size {k} < stride {s} leaves output phases empty")
    full_h, full_w = (h - 1) * s + k, (wd - 1) * s + k
    n_h, n_w = -(-full_h // s), -(-full_w // s)
    rows = []
    for a in range(s):
        cols = []
        for c in range(s):
            w_ac = w[a::s, c::s][::-1, ::-1]
            pads = ((w_ac.shape[0] - 1, n_h - h), (w_ac.shape[1] - 1, n_w - wd))
            cols.append(conv_nhwc(x, w_ac, pads))
        rows.append(jnp.stack(cols, axis=3))  # (b, n_h, n_w, s_w, c)
    y = jnp.stack(rows, axis=2)  # (b, n_h, s_h, n_w, s_w, c)
    y = y.reshape(b, n_h * s, n_w * s, w.shape[-1])
    return y, n_h * s - full_h


def conv2d_resample(
    x: jax.Array, w: jax.Array, taps: np.ndarray | None = None, up: int = 1, down: int = 1, padding: int = 0
) -> jax.Array:
    """The reference's conv2d_resample (NHWC, square HWIO kernel): conv with optional FIR up/down-sampling.

    As in the reference's callers, up=1 is a correlation (flip_weight=True) and up>1 the transposed-conv
    convention (flip_weight=False); padding is with respect to the upsampled image, applied once.
    """
    k = w.shape[0]
    fw = 1 if taps is None else len(taps)
    p0 = p1 = padding
    if up > 1:
        p0, p1 = p0 + (fw + up - 1) // 2, p1 + (fw - up) // 2
    if down > 1:
        p0, p1 = p0 + (fw - down + 1) // 2, p1 + (fw - down) // 2
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up- and down-sampling at once is not used by StyleGAN2")
    if k == 1 and down > 1:
        return conv_nhwc(upfirdn2d(x, taps, down=down, padding=(p0, p1, p0, p1)), w, _NO_PAD)
    if k == 1 and up > 1:
        return upfirdn2d(conv_nhwc(x, w, _NO_PAD), taps, up=up, padding=(p0, p1, p0, p1), gain=up * up)
    if down > 1:
        return _conv_strided_phases(upfirdn2d(x, taps, padding=(p0, p1, p0, p1)), w, down)
    if up > 1:
        y, extra = _conv_transpose_phases(x, w, up)
        q0, q1 = p0 - (k - 1), p1 - (k - up) - extra
        return upfirdn2d(y, taps, padding=(q0, q1, q0, q1), gain=up * up)
    return conv_nhwc(x, w, ((p0, p1), (p0, p1)))


def demodulation_coefficients(weight: jax.Array, styles: jax.Array) -> jax.Array:
    """[N, O] rsqrt of the squared norm of each sample's modulated kernel w[o, i, kh, kw] * s[n, i] (+1e-8)."""
    return lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), axis=(0, 1)) + 1e-8)


def modulated_conv2d(
    x: jax.Array,
    weight: jax.Array,
    styles: jax.Array,
    noise: jax.Array | None = None,
    up: int = 1,
    padding: int = 0,
    taps: np.ndarray | None = None,
    demodulate: bool = True,
) -> jax.Array:
    """The reference's non-fused modulated conv: x * styles -> conv2d_resample -> * demod coefficients + noise.

    x: [N, H, W, I] in the compute dtype; weight: HWIO float32; styles: [N, I] float32. In reduced precision
    the reference first rescales weight and styles by their max-norms (overflow guard, cancelled by demod).
    """
    kh, kw, cin, _ = weight.shape
    if demodulate and x.dtype != jnp.float32:
        weight = weight * (1 / math.sqrt(cin * kh * kw) / jnp.max(jnp.abs(weight), axis=(0, 1, 2), keepdims=True))
        styles = styles / jnp.max(jnp.abs(styles), axis=1, keepdims=True)
    x = x * styles.astype(x.dtype)[:, None, None, :]
    x = conv2d_resample(x, weight.astype(x.dtype), taps, up=up, padding=padding)
    if demodulate:
        x = x * demodulation_coefficients(weight, styles).astype(x.dtype)[:, None, None, :]
    if noise is not None:
        x = x + noise.astype(x.dtype)
    return x


def _check_choice(value: Any, choices: Sequence[Any], what: str) -> None:
    if value not in choices:
        raise StyleGAN2ConfigError(f"{what} {value!r} is not supported; choose one of {list(choices)}")


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _freeze_fields(module: nn.Module, *names: str) -> None:
    """Dict/list fields -> FrozenDict/tuple, so the modules stay hashable (jit static arguments, Flax transforms)."""
    for name in names:
        object.__setattr__(module, name, _frozen(getattr(module, name)))


def check_resolution(resolution: int) -> None:
    """StyleGAN2 halves the image down to 4x4 (D) and doubles from 4x4 (G): a power of two >= 8."""
    if not isinstance(resolution, int) or resolution < 8 or resolution & (resolution - 1):
        hint = 2 ** max(3, math.ceil(math.log2(resolution))) if isinstance(resolution, int) and resolution > 0 else 32
        raise StyleGAN2ConfigError(
            f"StyleGAN2 img_resolution must be a power of two >= 8, got {resolution!r}; "
            f"resize or pad the images to {hint}x{hint} (set img_resolution={hint})"
        )


def synthesis_num_ws(img_resolution: int) -> int:
    """Number of w vectors the synthesis network reads: one per conv plus the last ToRGB (any architecture)."""
    check_resolution(img_resolution)
    return 2 * int(math.log2(img_resolution)) - 2


def _channels(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def _fp16_resolution(img_resolution: int, num_fp16_res: int) -> int:
    return max(2 ** (int(math.log2(img_resolution)) + 1 - num_fp16_res), 8)


def _normal(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
    return jax.random.normal(key, shape, dtype)


# ----------------------------------------------------------------------------------------------------------------
# Layers.


class FullyConnectedLayer(nn.Module):
    """Equalized-lr dense layer: weight [in, out] ~ N(0, 1)/lr_multiplier, used times lr_multiplier/sqrt(in)."""

    features: int
    use_bias: bool = True  # the reference's `bias`
    activation: str = "linear"
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        init = lambda key, shape: _normal(key, shape) / self.lr_multiplier  # noqa: E731
        weight = self.param("weight", init, (fan_in, self.features))
        w = weight.astype(x.dtype) * (self.lr_multiplier / math.sqrt(fan_in))
        b = None
        if self.use_bias:
            b = self.param("bias", lambda _, shape: jnp.full(shape, self.bias_init, jnp.float32), (self.features,))
            b = b.astype(x.dtype)
            if self.lr_multiplier != 1:
                b = b * self.lr_multiplier
        return bias_act(x @ w, b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Equalized-lr conv (weight HWIO ~ N(0, 1), times 1/sqrt(in*k*k)) with FIR up/down-sampling, bias_act."""

    features: int
    kernel_size: int
    use_bias: bool = True  # the reference's `bias`
    activation: str = "linear"
    up: int = 1
    down: int = 1
    resample_filter: Filter = (1, 3, 3, 1)
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, gain: float = 1.0) -> jax.Array:
        cin, k = x.shape[-1], self.kernel_size
        weight = self.param("weight", _normal, (k, k, cin, self.features))
        w = (weight * (1 / math.sqrt(cin * k * k))).astype(x.dtype)
        x = conv2d_resample(x, w, filter_taps(self.resample_filter), self.up, self.down, padding=k // 2)
        b = self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else None
        act_gain = _ACTIVATIONS[self.activation][1] * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=act_gain, clamp=clamp)


class MappingNetwork(nn.Module):
    """z (and label c) -> w: normalize z, embed + normalize c, concat, `num_layers` lrelu FCs at lr 0.01.

    Output [N, num_ws, w_dim] (num_ws=None: [N, w_dim]). `w_avg` ("stats") tracks the mean w with decay
    w_avg_beta when update_w_avg=True (apply with mutable=["stats"]); truncation lerps towards it.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int | None
    num_layers: int = 8
    embed_features: int | None = None  # None: w_dim
    layer_features: int | None = None  # None: w_dim
    activation: str = "lrelu"
    lr_multiplier: float = 0.01
    w_avg_beta: float | None = 0.995  # None: no w_avg (D's label mapping)

    @nn.compact
    def __call__(
        self,
        z: jax.Array | None,
        c: jax.Array | None = None,
        truncation_psi: float | jax.Array = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> jax.Array:
        x = self._embed_inputs(z, c)
        layer_features = self.w_dim if self.layer_features is None else self.layer_features
        features = [layer_features] * (self.num_layers - 1) + [self.w_dim]
        for idx, out_features in enumerate(features):
            x = FullyConnectedLayer(
                out_features, activation=self.activation, lr_multiplier=self.lr_multiplier, name=f"fc{idx}"
            )(x)
        w_avg = None
        if self.num_ws is not None and self.w_avg_beta is not None:
            w_avg = self.variable("stats", "w_avg", jnp.zeros, (self.w_dim,), jnp.float32)
            if update_w_avg and not self.is_initializing():
                mean = jnp.mean(lax.stop_gradient(x), axis=0)
                w_avg.value = mean + self.w_avg_beta * (w_avg.value - mean)
        if self.num_ws is not None:
            x = jnp.broadcast_to(x[:, None, :], (x.shape[0], self.num_ws, self.w_dim))
        if isinstance(truncation_psi, int | float) and truncation_psi == 1:
            return x
        if w_avg is None:
            raise StyleGAN2ConfigError("truncation needs w_avg: build the MappingNetwork with num_ws and w_avg_beta")
        truncated = w_avg.value + truncation_psi * (x - w_avg.value)
        if self.num_ws is None or truncation_cutoff is None:
            return truncated
        keep = (jnp.arange(self.num_ws) < truncation_cutoff)[None, :, None]
        return jnp.where(keep, truncated, x)

    def _embed_inputs(self, z: jax.Array | None, c: jax.Array | None) -> jax.Array:
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"MappingNetwork expects z of shape [N, {self.z_dim}], got {_shape(z)}")
            x = normalize_2nd_moment(z.astype(jnp.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"MappingNetwork expects c of shape [N, {self.c_dim}], got {_shape(c)}")
            embed_features = self.w_dim if self.embed_features is None else self.embed_features
            embed = FullyConnectedLayer(embed_features, name="embed")
            y = normalize_2nd_moment(embed(c.astype(jnp.float32)))
            x = jnp.concatenate([x, y], axis=1) if x is not None else y
        if x is None:
            raise StyleGAN2ConfigError("MappingNetwork needs z_dim > 0 or c_dim > 0")
        return x


def _shape(x: jax.Array | None) -> Any:
    return None if x is None else tuple(x.shape)


class SynthesisLayer(nn.Module):
    """Modulated, demodulated conv (optionally 2x FIR-upsampling) + per-pixel noise + bias + lrelu."""

    features: int
    resolution: int
    kernel_size: int = 3
    up: int = 1
    use_noise: bool = True
    activation: str = "lrelu"
    resample_filter: Filter = (1, 3, 3, 1)
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, noise_mode: str = "random", gain: float = 1.0) -> jax.Array:
        _check_choice(noise_mode, NOISE_MODES, "noise_mode")
        n, h, _, cin = x.shape
        if h * self.up != self.resolution:
            raise ValueError(f"SynthesisLayer at {self.resolution}px got a {h}px input (up={self.up})")
        styles = FullyConnectedLayer(cin, bias_init=1.0, name="affine")(w)
        k = self.kernel_size
        weight = self.param("weight", _normal, (k, k, cin, self.features))
        noise = None
        if self.use_noise:
            res = self.resolution
            const = self.variable("stats", "noise_const", lambda: _normal(self.make_rng("params"), (res, res)))
            strength = self.param("noise_strength", nn.initializers.zeros, ())
            if noise_mode == "random" and self.is_initializing() and not self.has_rng("noise"):
                noise_mode = "const"  # so `init` needs only the "params" rng (its output is not the point)
            if noise_mode == "random":
                noise = _normal(self.make_rng("noise"), (n, res, res, 1)) * strength
            elif noise_mode == "const":
                noise = const.value[:, :, None] * strength
        taps = filter_taps(self.resample_filter)
        x = modulated_conv2d(x, weight, styles, noise, up=self.up, padding=k // 2, taps=taps)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        act_gain = _ACTIVATIONS[self.activation][1] * gain
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, bias, act=self.activation, gain=act_gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated (not demodulated) 1x1 conv to image channels; styles scaled by 1/sqrt(in*k*k)."""

    features: int
    kernel_size: int = 1
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        cin, k = x.shape[-1], self.kernel_size
        styles = FullyConnectedLayer(cin, bias_init=1.0, name="affine")(w) * (1 / math.sqrt(cin * k * k))
        weight = self.param("weight", _normal, (k, k, cin, self.features))
        x = modulated_conv2d(x, weight, styles, demodulate=False)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return bias_act(x, bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of G: (const | 2x-up conv0) + conv1, ToRGB (skip: every block; else the last), resnet skip."""

    in_channels: int  # 0: the first (4x4, learned const) block
    out_channels: int
    resolution: int
    img_channels: int
    is_last: bool
    architecture: str = "skip"
    resample_filter: Filter = (1, 3, 3, 1)
    conv_clamp: float | None = None
    use_fp16: bool = False
    compute_dtype: Any = jnp.float32
    use_noise: bool = True
    activation: str = "lrelu"

    @property
    def num_conv(self) -> int:
        return 1 if self.in_channels == 0 else 2

    @property
    def num_torgb(self) -> int:
        return 1 if self.is_last or self.architecture == "skip" else 0

    @nn.compact
    def __call__(
        self, x: jax.Array | None, img: jax.Array | None, ws: jax.Array, noise_mode: str = "random"
    ) -> tuple[jax.Array, jax.Array | None]:
        dtype = self.compute_dtype if self.use_fp16 else jnp.float32
        res, cout = self.resolution, self.out_channels
        layer = dict(
            features=cout, resolution=res, use_noise=self.use_noise, activation=self.activation,
            resample_filter=self.resample_filter, conv_clamp=self.conv_clamp,
        )  # fmt: skip
        if self.in_channels == 0:
            const = self.param("const", _normal, (res, res, cout))
            x = jnp.broadcast_to(const.astype(dtype)[None], (ws.shape[0], res, res, cout))
            x = SynthesisLayer(**layer, name="conv1")(x, ws[:, 0], noise_mode)
        elif self.architecture == "resnet":
            skip = Conv2dLayer(cout, 1, use_bias=False, up=2, resample_filter=self.resample_filter, name="skip")
            y = skip(x.astype(dtype), gain=_SQRT_HALF)
            x = SynthesisLayer(**layer, up=2, name="conv0")(x.astype(dtype), ws[:, 0], noise_mode)
            x = y + SynthesisLayer(**layer, name="conv1")(x, ws[:, 1], noise_mode, gain=_SQRT_HALF)
        else:
            x = SynthesisLayer(**layer, up=2, name="conv0")(x.astype(dtype), ws[:, 0], noise_mode)
            x = SynthesisLayer(**layer, name="conv1")(x, ws[:, 1], noise_mode)
        if img is not None:
            img = upsample2d(img, filter_taps(self.resample_filter))
        if self.num_torgb:
            y = ToRGBLayer(self.img_channels, conv_clamp=self.conv_clamp, name="torgb")(x, ws[:, self.num_conv])
            y = y.astype(jnp.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, H, W, C] (float32): SynthesisBlocks b4 ... b{img_resolution}."""

    w_dim: int
    img_resolution: int
    img_channels: int
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0  # the N highest resolutions compute in compute_dtype
    conv_clamp: float | None = None
    architecture: str = "skip"
    resample_filter: Filter = (1, 3, 3, 1)
    use_noise: bool = True
    activation: str = "lrelu"
    compute_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_resolution(self.img_resolution)
        _check_choice(self.architecture, ARCHITECTURES, "architecture")
        _freeze_fields(self, "resample_filter")
        super().__post_init__()

    @property
    def num_ws(self) -> int:
        return synthesis_num_ws(self.img_resolution)

    @nn.compact
    def __call__(self, ws: jax.Array, noise_mode: str = "random") -> jax.Array:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"SynthesisNetwork expects ws [N, {self.num_ws}, {self.w_dim}], got {ws.shape}")
        ws = ws.astype(jnp.float32)
        fp16_res = _fp16_resolution(self.img_resolution, self.num_fp16_res)
        x = img = None
        w_idx = 0
        for log2 in range(2, int(math.log2(self.img_resolution)) + 1):
            res = 2**log2
            block = SynthesisBlock(
                in_channels=_channels(res // 2, self.channel_base, self.channel_max) if res > 4 else 0,
                out_channels=_channels(res, self.channel_base, self.channel_max),
                resolution=res, img_channels=self.img_channels, is_last=res == self.img_resolution,
                architecture=self.architecture, resample_filter=self.resample_filter, conv_clamp=self.conv_clamp,
                use_fp16=res >= fp16_res, compute_dtype=self.compute_dtype, use_noise=self.use_noise,
                activation=self.activation, name=f"b{res}",
            )  # fmt: skip
            x, img = block(x, img, ws[:, w_idx : w_idx + block.num_conv + block.num_torgb], noise_mode)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2 G = MappingNetwork (`mapping`) + SynthesisNetwork (`synthesis`), as the reference's Generator.

    mapping_kwargs go to MappingNetwork (num_layers, embed_features, layer_features, activation,
    lr_multiplier, w_avg_beta); synthesis_kwargs to SynthesisNetwork (channel_base, channel_max, num_fp16_res,
    conv_clamp, architecture, resample_filter, use_noise, activation, compute_dtype). Call the halves with
    `G.apply(variables, z, c, method=G.mapping)` and `G.apply(variables, ws, method=G.synthesis,
    rngs={"noise": key})`; variables are {"params", "stats"}.
    """

    z_dim: int
    c_dim: int
    w_dim: int
    img_resolution: int
    img_channels: int
    mapping_kwargs: Kwargs = None
    synthesis_kwargs: Kwargs = None

    def __post_init__(self) -> None:
        check_resolution(self.img_resolution)
        _freeze_fields(self, "mapping_kwargs", "synthesis_kwargs")
        super().__post_init__()

    @property
    def num_ws(self) -> int:
        return synthesis_num_ws(self.img_resolution)

    def setup(self) -> None:
        self.synthesis_network = SynthesisNetwork(
            self.w_dim, self.img_resolution, self.img_channels, **dict(self.synthesis_kwargs or {}), name="synthesis"
        )
        self.mapping_network = MappingNetwork(
            self.z_dim, self.c_dim, self.w_dim, self.num_ws, **dict(self.mapping_kwargs or {}), name="mapping"
        )

    def mapping(
        self,
        z: jax.Array,
        c: jax.Array | None = None,
        truncation_psi: float | jax.Array = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> jax.Array:
        """z [N, z_dim], c [N, c_dim] (None if c_dim == 0) -> ws [N, num_ws, w_dim]."""
        return self.mapping_network(z, c, truncation_psi, truncation_cutoff, update_w_avg)

    def synthesis(self, ws: jax.Array, noise_mode: str = "random") -> jax.Array:
        """ws [N, num_ws, w_dim] -> images [N, H, W, C] float32 (noise_mode 'random' needs the "noise" rng)."""
        return self.synthesis_network(ws, noise_mode)

    def __call__(
        self,
        z: jax.Array,
        c: jax.Array | None = None,
        truncation_psi: float | jax.Array = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        update_w_avg: bool = False,
    ) -> jax.Array:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg)
        return self.synthesis(ws, noise_mode)


# ----------------------------------------------------------------------------------------------------------------
# Discriminator.


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromrgb) conv0 + 2x-down conv1; skip: FIR-downsampled image; resnet: 1x1 skip."""

    in_channels: int  # 0: the first block (reads the image)
    tmp_channels: int
    out_channels: int
    resolution: int
    img_channels: int
    architecture: str = "resnet"
    activation: str = "lrelu"
    resample_filter: Filter = (1, 3, 3, 1)
    conv_clamp: float | None = None
    use_fp16: bool = False
    compute_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array | None, img: jax.Array | None) -> tuple[jax.Array, jax.Array | None]:
        dtype = self.compute_dtype if self.use_fp16 else jnp.float32
        act, clamp, f = self.activation, self.conv_clamp, self.resample_filter
        if x is not None:
            x = x.astype(dtype)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.astype(dtype)
            y = Conv2dLayer(self.tmp_channels, 1, activation=act, conv_clamp=clamp, name="fromrgb")(img)
            x = x + y if x is not None else y
            img = downsample2d(img, filter_taps(f)) if self.architecture == "skip" else None
        conv0 = Conv2dLayer(self.tmp_channels, 3, activation=act, conv_clamp=clamp, name="conv0")
        conv1 = Conv2dLayer(
            self.out_channels, 3, activation=act, down=2, resample_filter=f, conv_clamp=clamp, name="conv1"
        )
        if self.architecture == "resnet":
            skip = Conv2dLayer(self.out_channels, 1, use_bias=False, down=2, resample_filter=f, name="skip")
            y = skip(x, gain=_SQRT_HALF)
            x = y + conv1(conv0(x), gain=_SQRT_HALF)
        else:
            x = conv1(conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the std over groups of min(group_size, N) samples, averaged per channel group, as features."""

    group_size: int | None = 4  # None: the whole minibatch
    num_channels: int = 1

    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, c = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        if n % g or c % f:
            raise ValueError(f"MinibatchStdLayer: batch {n} must be a multiple of the group size {g}")
        y = x.astype(jnp.float32).reshape(g, n // g, h, w, f, c // f)  # sample index = group * (n // g) + j
        y = y - jnp.mean(y, axis=0)
        y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)  # [n/g, H, W, F, c]
        y = jnp.mean(y, axis=(1, 2, 4))  # [n/g, F]
        y = jnp.tile(y, (g, 1)).astype(x.dtype)  # [N, F]
        y = jnp.broadcast_to(y[:, None, None, :], (n, h, w, f))
        return jnp.concatenate([x, y], axis=-1)


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head (`b4`): (fromrgb) mbstd, 3x3 conv, fc, out; projection onto the label's cmap if conditional."""

    in_channels: int
    cmap_dim: int
    resolution: int
    img_channels: int
    architecture: str = "resnet"
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    activation: str = "lrelu"
    conv_clamp: float | None = None

    @nn.compact
    def __call__(self, x: jax.Array, img: jax.Array | None, cmap: jax.Array | None) -> jax.Array:
        x = x.astype(jnp.float32)
        if self.architecture == "skip":
            x = x + Conv2dLayer(self.in_channels, 1, activation=self.activation, name="fromrgb")(img.astype(x.dtype))
        if self.mbstd_num_channels > 0:
            x = MinibatchStdLayer(self.mbstd_group_size, self.mbstd_num_channels, name="mbstd")(x)
        x = Conv2dLayer(self.in_channels, 3, activation=self.activation, conv_clamp=self.conv_clamp, name="conv")(x)
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # the reference's NCHW flatten order
        x = FullyConnectedLayer(self.in_channels, activation=self.activation, name="fc")(x)
        x = FullyConnectedLayer(1 if self.cmap_dim == 0 else self.cmap_dim, name="out")(x)
        if self.cmap_dim > 0:
            x = jnp.sum(x * cmap, axis=1, keepdims=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """StyleGAN2 D: img [N, H, W, C] in [-1, 1] (and label c [N, c_dim]) -> logits [N, 1] float32.

    Blocks b{img_resolution} ... b8, then the epilogue b4; a conditional D maps c through a MappingNetwork
    (`mapping`, z_dim=0, no w_avg; mapping_kwargs as the reference's) and projects onto it (cmap).
    """

    c_dim: int
    img_resolution: int
    img_channels: int
    architecture: str = "resnet"
    channel_base: int = 32768
    channel_max: int = 512
    num_fp16_res: int = 0
    conv_clamp: float | None = None
    cmap_dim: int | None = None  # None: the 4x4 block's channels
    mbstd_group_size: int | None = 4
    mbstd_num_channels: int = 1
    mapping_kwargs: Kwargs = None
    resample_filter: Filter = (1, 3, 3, 1)
    activation: str = "lrelu"
    compute_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_resolution(self.img_resolution)
        _check_choice(self.architecture, ARCHITECTURES, "architecture")
        _freeze_fields(self, "mapping_kwargs", "resample_filter")
        super().__post_init__()

    @nn.compact
    def __call__(self, img: jax.Array, c: jax.Array | None = None) -> jax.Array:
        expected = (self.img_resolution, self.img_resolution, self.img_channels)
        if img.ndim != 4 or img.shape[1:] != expected:
            raise ValueError(f"Discriminator expects NHWC images [N, {', '.join(map(str, expected))}], got {img.shape}")
        ch = lambda res: _channels(res, self.channel_base, self.channel_max)  # noqa: E731
        fp16_res = _fp16_resolution(self.img_resolution, self.num_fp16_res)
        x = None
        res = self.img_resolution
        while res > 4:
            x, img = DiscriminatorBlock(
                in_channels=ch(res) if res < self.img_resolution else 0, tmp_channels=ch(res),
                out_channels=ch(res // 2), resolution=res, img_channels=self.img_channels,
                architecture=self.architecture, activation=self.activation, resample_filter=self.resample_filter,
                conv_clamp=self.conv_clamp, use_fp16=res >= fp16_res, compute_dtype=self.compute_dtype,
                name=f"b{res}",
            )(x, img)  # fmt: skip
            res //= 2
        cmap_dim = 0 if self.c_dim == 0 else (self.cmap_dim if self.cmap_dim is not None else ch(4))
        cmap = None
        if self.c_dim > 0:
            kwargs = {**dict(self.mapping_kwargs or {}), "num_ws": None, "w_avg_beta": None}
            cmap = MappingNetwork(0, self.c_dim, cmap_dim, **kwargs, name="mapping")(None, c)
        return DiscriminatorEpilogue(
            ch(4), cmap_dim, 4, self.img_channels, self.architecture, self.mbstd_group_size,
            self.mbstd_num_channels, self.activation, self.conv_clamp, name="b4",
        )(x, img, cmap)  # fmt: skip

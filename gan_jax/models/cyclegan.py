"""CycleGAN's networks (Zhu et al., 2017) in Flax Linen, NHWC: the ResNet generator and the PatchGAN critic.

A faithful port of `ResnetGenerator` / `ResnetBlock` / `NLayerDiscriminator` from junyanz/pytorch-CycleGAN-and-
pix2pix `models/networks.py` with the CycleGAN defaults (`--norm instance --no_dropout --init_type normal
--init_gain 0.02`): same layers, widths, paddings, biases and parameter counts (11,378,179 for resnet_9blocks
3->3 at ngf 64, 2,764,737 for the 70x70 PatchGAN on 3 channels); outputs equal PyTorch's to float32 rounding.

- Padding is the reference's, not Flax's 'SAME': reflection (`jnp.pad(mode="reflect")`, torch ReflectionPad2d)
  around the 7x7 and residual convs, explicit zero padding 1 for the strided and the 4x4 convs.
- The upsampling layer is torch's ConvTranspose2d(k3, s2, p1, output_padding=1), i.e. a conv of the 2-dilated
  input padded (1, 2) per axis. Flax's ConvTranspose 'SAME' pads (2, 1) instead: a one-pixel shift.
- Instance norm is torch's InstanceNorm2d(affine=False, track_running_stats=False, eps 1e-5): per image and
  channel over H, W, biased variance, no parameters and no state, so train and eval modes agree.
- Every conv goes through `layers.Conv` (plain `lax.conv_general_dilated` in NHWC/HWIO, with canonical
  gradients), the transposed conv through a sub-pixel decomposition into such convs: XLA:CPU's fast path.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from gan_jax.errors import ConfigError
from gan_jax.models.layers import Conv, conv_nhwc

Initializer = nn.initializers.Initializer

NORMS = ("instance", "batch")
_EPS = 1e-5  # torch InstanceNorm2d / BatchNorm2d default
_BN_MOMENTUM = 0.9  # torch momentum 0.1; Flax's momentum is the decay
# The reference's init_weights(init_type="normal", init_gain=0.02): conv weights N(0, 0.02), biases 0.
_KERNEL_INIT = nn.initializers.normal(0.02)


def _scale_init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
    """init_weights' BatchNorm2d weight: N(1, 0.02)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def receptive_field(n_layers: int) -> int:
    """Input pixels one PatchGAN logit sees (70 for n_layers=3, the reference's "70x70 PatchGAN").

    The critic is n_layers k4 stride-2 convs then two k4 stride-1 convs; walking back from one output pixel,
    each layer maps a window of r pixels to (r - 1) * stride + 4. A critic whose field exceeds the image is in
    effect a global (whole-image) critic, which is what a config check wants to warn about.
    """
    _check_n_layers(n_layers)
    field = 1
    for stride in [1, 1] + [2] * n_layers:
        field = (field - 1) * stride + 4
    return field


def patch_logits_size(size: int, n_layers: int) -> int:
    """Side of the logit grid for a `size`-pixel side: each k4 s2 p1 conv floors size / 2, each k4 s1 p1 conv
    takes 1 off (so n_layers=3 needs size >= 24; 256 gives the reference's 30x30 patches)."""
    _check_n_layers(n_layers)
    return size // 2**n_layers - 2


def _check_n_layers(n_layers: int) -> None:
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ConfigError(f"PatchGAN n_layers must be an int >= 1, got {n_layers!r}")


def instance_norm(x: jax.Array, eps: float = _EPS) -> jax.Array:
    """torch InstanceNorm2d(affine=False): normalise each image's channel over H, W with its biased variance.

    The two-pass variance (mean of squared deviations) is torch's; E[x^2] - E[x]^2 loses digits in float32.
    """
    mean = jnp.mean(x, axis=(1, 2), keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=(1, 2), keepdims=True)
    return (x - mean) * lax.rsqrt(var + eps)


def _norm(kind: str, h: jax.Array, name: str, *, train: bool) -> jax.Array:
    """The reference's norm layer: instance (stateless) or torch BatchNorm2d(affine=True) as a Flax BatchNorm
    (under pmap, `Layout.apply` averages its statistics over devices, as for every model)."""
    if kind == "instance":
        return instance_norm(h)
    bn = nn.BatchNorm(
        use_running_average=not train,
        momentum=_BN_MOMENTUM,
        epsilon=_EPS,
        scale_init=_scale_init,
        use_fast_variance=False,
        name=name,
    )
    return bn(h)


def _reflect(x: jax.Array, pad: int) -> jax.Array:
    """torch ReflectionPad2d(pad) on NHWC: mirror without repeating the edge pixel (numpy's "reflect")."""
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _conv(features: int, kernel: int, *, name: str, strides: int = 1, padding: int = 0, bias: bool = True) -> Conv:
    return Conv(features, (kernel, kernel), strides, padding, use_bias=bias, kernel_init=_KERNEL_INIT, name=name)


def _check_config(norm: str, **sizes: int) -> None:
    if norm not in NORMS:
        raise ConfigError(f"CycleGAN norm {norm!r} is unknown; choose one of {NORMS}")
    bad = {k: v for k, v in sizes.items() if not isinstance(v, int) or v < (0 if k.startswith("n_") else 1)}
    if bad:
        raise ConfigError(f"CycleGAN sizes must be positive ints (n_* may be 0), got {bad}")


class TorchConvTranspose(nn.Module):
    """torch ConvTranspose2d(k, stride, padding, output_padding) on NHWC, for k - 2 * padding + output_padding
    == stride (output exactly stride x input, as the generator's k3 s2 p1 op1).

    Function: a stride-1 conv of the stride-dilated input padded (k - 1 - p, k - 1 - p + op) per axis, i.e.
    `lax.conv_transpose(x, kernel, strides, that padding)`. The `kernel` is (k, k, cin, cout): torch's weight
    (cin, cout, k, k) with its taps flipped. Computed by sub-pixel phases (as `layers.ConvTranspose`): output
    pixel s*m + r only meets every s-th tap, so each phase is a small canonical conv of the undilated input;
    an lhs-dilated conv would be a naive loop on XLA:CPU.
    """

    features: int
    kernel_size: int = 3
    strides: int = 2
    padding: int = 1
    output_padding: int = 1
    use_bias: bool = True
    kernel_init: Initializer = _KERNEL_INIT
    bias_init: Initializer = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel_size, self.strides
        if k - 2 * self.padding + self.output_padding != s:
            raise ConfigError(f"TorchConvTranspose needs k - 2 * padding + output_padding == stride, got {self}")
        if x.ndim != 4:
            raise ValueError(f"TorchConvTranspose expects NHWC input (4 dims), got shape {x.shape}")
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        phases = _phase_taps(k, s, front=k - 1 - self.padding)
        rows = []
        for th, pad_h in phases:
            cols = [conv_nhwc(x, kernel[th::s, tw::s], (pad_h, pad_w)) for tw, pad_w in phases]
            rows.append(jnp.stack(cols, axis=3))
        y = jnp.stack(rows, axis=3)  # (b, h, w, phase_h, phase_w, cout)
        b, h, w = x.shape[:3]
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * s, w * s, self.features)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,))
        return y


def _phase_taps(k: int, s: int, front: int) -> list[tuple[int, tuple[int, int]]]:
    """Per output phase r: its first kernel tap (the others follow every s taps) and its conv's (lo, hi) pads.

    With the s-dilated input padded by `front`, output s*m + r reads input pixel m + d through tap t whenever
    d = (r + t - front) / s is an integer; pixels past either edge are the conv's zero padding.
    """
    phases = []
    for r in range(s):
        taps = [t for t in range(k) if (r + t - front) % s == 0]
        if not taps:
            raise ConfigError(f"TorchConvTranspose: kernel size {k} < stride {s} leaves output phase {r} empty")
        d_first, d_last = (r + taps[0] - front) // s, (r + taps[-1] - front) // s
        phases.append((taps[0], (-d_first, d_last)))
    return phases


class ResnetBlock(nn.Module):
    """x + [ReflectionPad1 -> Conv3x3 -> norm -> ReLU -> ReflectionPad1 -> Conv3x3 -> norm](x), width kept.

    No dropout (CycleGAN's --no_dropout); convs have biases only with instance norm (the reference's use_bias).
    """

    norm: str = "instance"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        dim, bias = x.shape[-1], self.norm == "instance"
        norm = partial(_norm, self.norm, train=train)
        h = nn.relu(norm(_conv(dim, 3, bias=bias, name="conv0")(_reflect(x, 1)), "norm0"))
        h = norm(_conv(dim, 3, bias=bias, name="conv1")(_reflect(h, 1)), "norm1")
        return x + h


class ResnetGenerator(nn.Module):
    """CycleGAN's G (Johnson et al.'s ResNet): images in [-1, 1] (N, H, W, C) -> (N, H, W, out_channels), tanh.

    ReflectionPad3 -> Conv7x7 (ngf) -> norm -> ReLU; n_downsampling x [Conv3x3 s2 p1, width doubled -> norm ->
    ReLU]; n_blocks `ResnetBlock`s at ngf * 2**n_downsampling; n_downsampling x [ConvTranspose2d k3 s2 p1 op1,
    width halved -> norm -> ReLU]; ReflectionPad3 -> Conv7x7 (out_channels, bias) -> tanh. resnet_9blocks is
    n_blocks=9 (the reference's choice for 256x256), resnet_6blocks n_blocks=6 (128x128). H and W must be
    divisible by 2**n_downsampling. norm="batch" (torch BatchNorm2d, affine) drops the biases of the convs
    followed by a norm, as the reference. `y` (labels) is accepted for the GAN family's call and ignored.
    """

    out_channels: int
    ngf: int = 64
    n_blocks: int = 9
    n_downsampling: int = 2
    norm: str = "instance"

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y
        _check_config(
            self.norm, out_channels=self.out_channels, ngf=self.ngf, n_blocks=self.n_blocks, n_down=self.n_downsampling
        )
        _check_generator_input(x, self.n_downsampling, self.n_blocks)
        n_down, bias = self.n_downsampling, self.norm == "instance"
        norm = partial(_norm, self.norm, train=train)
        h = nn.relu(norm(_conv(self.ngf, 7, bias=bias, name="conv_in")(_reflect(x, 3)), "norm_in"))
        for i in range(n_down):
            conv = _conv(self.ngf * 2 ** (i + 1), 3, strides=2, padding=1, bias=bias, name=f"down{i}")
            h = nn.relu(norm(conv(h), f"down{i}_norm"))
        for i in range(self.n_blocks):
            h = ResnetBlock(self.norm, name=f"block{i}")(h, train=train)
        for i in range(n_down):
            h = TorchConvTranspose(self.ngf * 2 ** (n_down - i - 1), use_bias=bias, name=f"up{i}")(h)
            h = nn.relu(norm(h, f"up{i}_norm"))
        return jnp.tanh(_conv(self.out_channels, 7, name="conv_out")(_reflect(h, 3)))


def _check_generator_input(x: jax.Array, n_down: int, n_blocks: int) -> None:
    """Sizes the reference also needs: halvings without remainder, and maps wider than their reflection pad."""
    if x.ndim != 4:
        raise ValueError(f"ResnetGenerator expects NHWC images (4 dims), got shape {x.shape}")
    factor = 2**n_down
    hw = x.shape[1:3]
    if any(n % factor for n in hw) or min(hw) < 4 or (n_blocks and min(hw) // factor < 2):
        raise ValueError(
            f"ResnetGenerator with n_downsampling={n_down} needs H and W divisible by {factor}, at least 4 and "
            f"(with residual blocks) at least {2 * factor}; got {hw}"
        )


class PatchDiscriminator(nn.Module):
    """CycleGAN's / pix2pix's PatchGAN critic (the reference's NLayerDiscriminator): (N, H, W, C) -> patch logits
    (N, h, w, 1), one per `receptive_field(n_layers)`-pixel window (70x70 for n_layers=3), no activation.

    Conv4x4 s2 p1 (ndf, bias) -> LeakyReLU 0.2; for n in 1..n_layers-1: Conv4x4 s2 p1 (ndf * min(2**n, 8)) ->
    norm -> LeakyReLU; Conv4x4 s1 p1 (ndf * min(2**n_layers, 8)) -> norm -> LeakyReLU; Conv4x4 s1 p1 -> 1 (bias).
    The normed convs have biases only with instance norm. h = H // 2**n_layers - 2 (`patch_logits_size`).
    """

    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y
        _check_config(self.norm, ndf=self.ndf)
        _check_critic_input(x, self.n_layers)
        bias = self.norm == "instance"
        norm = partial(_norm, self.norm, train=train)
        h = nn.leaky_relu(_conv(self.ndf, 4, strides=2, padding=1, name="conv0")(x), 0.2)
        for n in range(1, self.n_layers + 1):
            stride = 2 if n < self.n_layers else 1
            conv = _conv(self.ndf * min(2**n, 8), 4, strides=stride, padding=1, bias=bias, name=f"conv{n}")
            h = nn.leaky_relu(norm(conv(h), f"norm{n}"), 0.2)
        return _conv(1, 4, padding=1, name="conv_out")(h)


def _check_critic_input(x: jax.Array, n_layers: int) -> None:
    if x.ndim != 4:
        raise ValueError(f"PatchDiscriminator expects NHWC images (4 dims), got shape {x.shape}")
    small = [n for n in x.shape[1:3] if patch_logits_size(n, n_layers) < 1]
    if small:
        need = 3 * 2**n_layers
        raise ValueError(
            f"PatchDiscriminator with n_layers={n_layers} needs H and W >= {need} (its convs leave no logits "
            f"below that; receptive field {receptive_field(n_layers)} px), got {x.shape[1:3]}"
        )

"""Own-code PyTorch mirror of NVlabs/stylegan2-ada-pytorch's networks, StyleGAN2 loss and training iteration.

Standalone (needs `torch`; the gan_jax package never imports it). It reproduces `training/networks.py`,
`training/loss.py` and the phase / optimizer / G-EMA part of `training/training_loop.py` with plain torch ops (the
semantics of the reference's `_ref` op implementations, fp32 on CPU), under exactly the reference's constructor
arguments and state_dict names, so `reference.state_dict()` loads into these modules with strict=True and back.
It is the speed baseline and parity target of the JAX port; `scripts/check_stylegan2_reference.py` compares it
with a checkout of the reference (which is not vendored: its license is non-commercial). Not mirrored: ADA
(augment_pipe is accepted but the benchmark runs without it), DDP, the fused CUDA ops and conv2d_gradfix (their
`_ref` semantics are what this file computes), training_stats (the losses land in `StyleGAN2Loss.stats`).
    python scripts/torch_stylegan2.py --batch 8 --steps 3 --threads 2
prints one JSON line: ms per iteration (`ms_per_step`, the median of the timed iterations after warm-up, none of
which runs R1) at the reference's `cifar` config (CIFAR_SPEC); `--time-reg` adds one iteration with Dreg.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

# The reference's train.py `cifar` config. It trains with num_fp16_res 4 and conv_clamp 256 on GPUs; this CPU
# fp32 mirror keeps conv_clamp 256 but sets num_fp16_res 0 (the fp16 path exists here, CPU runs leave it off).
CIFAR_SPEC: dict[str, Any] = {
    "resolution": 32,
    "channels": 3,
    "c_dim": 0,
    "z_dim": 512,
    "w_dim": 512,
    "mapping_layers": 2,
    "channel_base": 32768,
    "channel_max": 512,
    "num_fp16_res": 0,
    "conv_clamp": 256,
    "g_architecture": "skip",
    "d_architecture": "orig",
    "mbstd_group": 32,
    "lr": 0.0025,
    "betas": (0.0, 0.99),
    "eps": 1e-8,
    "gamma": 0.01,
    "ema_kimg": 500.0,
    "ema_rampup": 0.05,
    "pl_weight": 0.0,
    "pl_batch_shrink": 2,
    "pl_decay": 0.01,
    "style_mixing": 0.0,
    "g_reg_interval": 4,
    "d_reg_interval": 16,
    "batch": 64,
}

# ---------------------------------------------------------------------------------------------------------------
# Ops: bias_act, upfirdn2d, conv2d_resample, modulated_conv2d (the reference's `_ref` code paths).

SQRT2 = math.sqrt(2)
# name -> (function(x, alpha), default alpha, default gain), as torch_utils/ops/bias_act.py's activation_funcs.
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor, float], torch.Tensor], float, float]] = {
    "linear": (lambda x, a: x, 0.0, 1.0),
    "relu": (lambda x, a: F.relu(x), 0.0, SQRT2),
    "lrelu": (lambda x, a: F.leaky_relu(x, a), 0.2, SQRT2),
    "tanh": (lambda x, a: torch.tanh(x), 0.0, 1.0),
    "sigmoid": (lambda x, a: torch.sigmoid(x), 0.0, 1.0),
    "elu": (lambda x, a: F.elu(x), 0.0, 1.0),
    "selu": (lambda x, a: F.selu(x), 0.0, 1.0),
    "softplus": (lambda x, a: F.softplus(x), 0.0, 1.0),
    "swish": (lambda x, a: torch.sigmoid(x) * x, 0.0, SQRT2),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """x + b, activation, * gain, clamp to +-clamp: the order (and gain/clamp defaults) of `_bias_act_ref`."""
    func, def_alpha, def_gain = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else def_alpha)
    gain = float(gain if gain is not None else def_gain)
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """A 1-D tap list becomes its normalized outer product (4x4 for [1,3,3,1]); 8+ taps stay separable."""
    f = torch.as_tensor(1 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = f.outer(f)
    if normalize:
        f /= f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def _parse_padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        padding = [padding, padding]
    if len(padding) == 2:
        padding = [padding[0], padding[0], padding[1], padding[1]]
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    return (1, 1) if f is None else (int(f.shape[-1]), int(f.shape[0]))


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Zero-insert upsample, pad (negative = crop), depthwise FIR, keep every `down`-th pixel."""
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _parse_padding(padding)
    x = x.reshape([n, c, h, 1, w, 1])
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1]).reshape([n, c, h * up, w * up])
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([c, 1] + [1] * f.ndim)
    if f.ndim == 4:
        x = F.conv2d(x, f, groups=c)
    else:
        x = F.conv2d(x, f.unsqueeze(2), groups=c)
        x = F.conv2d(x, f.unsqueeze(3), groups=c)
    return x[:, :, ::down, ::down]


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """2x FIR upsampling whose output is exactly `up` times the input (G's skip images)."""
    fw, fh = _filter_size(f)
    p = [(fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """2x FIR downsampling whose output is exactly 1/`down` of the input (D's skip images)."""
    fw, fh = _filter_size(f)
    p = [(fw - down + 1) // 2, (fw - down) // 2, (fh - down + 1) // 2, (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=p)


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: int = 1,
    padding: int | list[int] = 0,
    groups: int = 1,
    transpose: bool = False,
    flip_weight: bool = True,
) -> torch.Tensor:
    """conv2d is a correlation; flip_weight=False flips the kernel to make it a true convolution."""
    if not flip_weight:
        w = w.flip([2, 3])
    op = F.conv_transpose2d if transpose else F.conv2d
    return op(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
) -> torch.Tensor:
    """2-D convolution with FIR up/downsampling, padding applied once: the reference's case analysis (1x1 kernels
    resample on the cheap side, upsampling is a stride-2 transposed conv followed by the FIR filter)."""
    out_channels, in_per_group, kh, kw = w.shape
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)
    if up > 1:
        px0, px1, py0, py1 = (
            px0 + (fw + up - 1) // 2,
            px1 + (fw - up) // 2,
            py0 + (fh + up - 1) // 2,
            py1 + (fh - up) // 2,
        )
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    pad = [px0, px1, py0, py1]
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=pad, gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        pad = [px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt]
        x = upfirdn2d(x, f, padding=pad, gain=up**2, flip_filter=flip_filter)
        return upfirdn2d(x, f, down=down, flip_filter=flip_filter) if down > 1 else x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d(x, None, padding=pad, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    return upfirdn2d(x, f, down=down, flip_filter=flip_filter) if down > 1 else x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2 weight (de)modulation: per-sample input scaling by `styles`, output scaling by 1/||w * s||.
    fused_modconv=False (training) scales the activations around one shared conv; True uses a grouped conv."""
    n = x.shape[0]
    _, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # pre-normalize against fp16 overflow
        weight = weight * (
            1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up, down, padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up, down, padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, -1, *x.shape[2:])
    return x + noise if noise is not None else x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


# ---------------------------------------------------------------------------------------------------------------
# Layers. Equalized learning rate: weights are stored N(0, 1) (/ lr_multiplier) and scaled at run time.


class FullyConnectedLayer(nn.Module):
    """Equalized-lr dense layer; lr_multiplier scales both the run-time weight gain and the bias."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1,
        bias_init: float = 0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Equalized-lr conv with optional FIR up/down and clamp; trainable=False (Freeze-D) stores buffers."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * (kernel_size**2))
        self.act_gain = ACTIVATIONS[activation][2]
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias_value = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = nn.Parameter(weight)
            self.bias = nn.Parameter(bias_value) if bias_value is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_value is not None:
                self.register_buffer("bias", bias_value)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, self.up, self.down, self.padding, 1, flip_weight)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(nn.Module):
    """z (and embedded c), each 2nd-moment normalized -> MLP (lr x0.01) -> w, broadcast to num_ws; tracks w_avg
    (beta 0.995) in training mode for truncation."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        embed_features: int | None = None,
        layer_features: int | None = None,
        activation: str = "lrelu",
        lr_multiplier: float = 0.01,
        w_avg_beta: float | None = 0.995,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        skip_w_avg_update: bool = False,
    ) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up), per-pixel noise (random / const / none) x noise_strength, bias,
    lrelu, clamp."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        kernel_size: int = 3,
        up: int = 1,
        use_noise: bool = True,
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = nn.Parameter(weight)
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", fused_modconv: bool = True, gain: float = 1
    ) -> torch.Tensor:
        assert noise_mode in ("random", "const", "none")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
            )
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x, self.weight, styles, noise, up=self.up, padding=self.padding, resample_filter=self.resample_filter,
            flip_weight=self.up == 1, fused_modconv=fused_modconv,
        )  # fmt: skip
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, bias, clamp (linear)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kernel_size: int = 1,
        conv_clamp: float | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * (kernel_size**2))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of G: (const | 2x-up conv0) + conv1, and a ToRGB whose image is summed over resolutions
    ('skip'), only at the end ('orig'), or with a 1x1 residual branch on the features ('resnet')."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        **layer_kwargs: Any,
    ) -> None:
        assert architecture in ("orig", "skip", "resnet")
        super().__init__()
        self.in_channels, self.w_dim, self.resolution, self.img_channels = in_channels, w_dim, resolution, img_channels
        self.is_last, self.architecture, self.use_fp16 = is_last, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        common = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, up=2, resample_filter=resample_filter, **common, **layer_kwargs
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **common, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter,
                channels_last=self.channels_last,
            )  # fmt: skip

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        force_fp32: bool = False,
        fused_modconv: bool | None = None,
        **layer_kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if fused_modconv is None:
            fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            x = x.to(dtype=dtype, memory_format=memory_format)
        kw = dict(fused_modconv=fused_modconv, **layer_kwargs)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **kw)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **kw)
            x = y + self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **kw)
        else:
            x = self.conv0(x, next(w_iter), **kw)
            x = self.conv1(x, next(w_iter), **kw)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


def _channels(channel_base: int, channel_max: int, resolutions: Sequence[int]) -> dict[int, int]:
    return {res: min(channel_base // res, channel_max) for res in resolutions}


class SynthesisNetwork(nn.Module):
    """Blocks b4 .. b{img_resolution}; consecutive blocks share a w (a block's ToRGB w is the next conv0's)."""

    def __init__(
        self,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        **block_kwargs: Any,
    ) -> None:
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels = _channels(channel_base, channel_max, self.block_resolutions)
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = res == img_resolution
            block = SynthesisBlock(
                channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=res >= fp16_resolution, **block_kwargs,
            )  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, **block_kwargs: Any) -> torch.Tensor:
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            cur_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv
            x, img = block(x, img, cur_ws, **block_kwargs)
        return img


class Generator(nn.Module):
    """mapping(z, c) -> ws -> synthesis(ws); `synthesis` is registered first, as in the reference."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        img_resolution: int,
        img_channels: int,
        mapping_kwargs: dict[str, Any] | None = None,
        synthesis_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **(synthesis_kwargs or {})
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs: Any,
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


class DiscriminatorBlock(nn.Module):
    """One resolution of D: (fromrgb) conv0 + 2x-down conv1; 'skip' also FIR-downsamples the image for the next
    fromrgb, 'resnet' adds a 1x1 down branch (both branches x sqrt(1/2))."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        first_layer_idx: int,
        architecture: str = "resnet",
        activation: str = "lrelu",
        resample_filter: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        fp16_channels_last: bool = False,
        freeze_layers: int = 0,
    ) -> None:
        assert in_channels in (0, tmp_channels) and architecture in ("orig", "skip", "resnet")
        super().__init__()
        self.in_channels, self.resolution, self.img_channels = in_channels, resolution, img_channels
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0

        def trainable() -> bool:  # Freeze-D: layers below freeze_layers store their weights as buffers
            self.num_layers += 1
            return self.first_layer_idx + self.num_layers - 1 >= freeze_layers

        cl = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, 1, activation=activation, trainable=trainable(), **cl
            )
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation=activation, trainable=trainable(), **cl)
        self.conv1 = Conv2dLayer(
            tmp_channels, out_channels, 3, activation=activation, down=2, trainable=trainable(),
            resample_filter=resample_filter, **cl,
        )  # fmt: skip
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, 1, bias=False, down=2, trainable=trainable(),
                resample_filter=resample_filter, channels_last=self.channels_last,
            )  # fmt: skip

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, force_fp32: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = y + self.conv1(x, gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class MinibatchStdLayer(nn.Module):
    """Appends the mean (over channels and pixels) std over groups of group_size samples as extra channels."""

    def __init__(self, group_size: int | None, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        return torch.cat([x, y.repeat(g, 1, h, w)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head: (fromrgb) mbstd, conv, fc, out; projection onto the mapped label cmap when conditional."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group_size: int | None = 4,
        mbstd_num_channels: int = 1,
        activation: str = "lrelu",
        conv_clamp: float | None = None,
    ) -> None:
        assert architecture in ("orig", "skip", "resnet")
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution = in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.fc = FullyConnectedLayer(in_channels * (resolution**2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None, force_fp32: bool = False
    ) -> torch.Tensor:
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.out(self.fc(self.conv(x).flatten(1)))
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """Blocks b{img_resolution} .. b8, an 8-layer label mapping (conditional only), then the b4 epilogue."""

    def __init__(
        self,
        c_dim: int,
        img_resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        channel_base: int = 32768,
        channel_max: int = 512,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        cmap_dim: int | None = None,
        block_kwargs: dict[str, Any] | None = None,
        mapping_kwargs: dict[str, Any] | None = None,
        epilogue_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.img_resolution_log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels = _channels(channel_base, channel_max, [*self.block_resolutions, 4])
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        cmap_dim = 0 if c_dim == 0 else (channels[4] if cmap_dim is None else cmap_dim)
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(
                channels[res] if res < img_resolution else 0, channels[res], channels[res // 2], resolution=res,
                first_layer_idx=cur_layer_idx, use_fp16=res >= fp16_resolution, **(block_kwargs or {}), **common,
            )  # fmt: skip
            setattr(self, f"b{res}", block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(
                z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **(mapping_kwargs or {})
            )
        self.b4 = DiscriminatorEpilogue(
            channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}), **common
        )

    def forward(self, img: torch.Tensor, c: torch.Tensor, **block_kwargs: Any) -> torch.Tensor:
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)


# ---------------------------------------------------------------------------------------------------------------
# Loss (training/loss.py's StyleGAN2Loss).


class StyleGAN2Loss:
    """Non-saturating logistic loss with style mixing, lazy R1 on reals and path-length regularisation; each call
    accumulates the gradients of one phase (times `gain`, the phase's interval). That call's losses land in
    `self.stats` under the reference's training_stats names (detached, per sample)."""

    def __init__(
        self,
        device: torch.device | str,
        G_mapping: nn.Module,
        G_synthesis: nn.Module,
        D: nn.Module,
        augment_pipe: Callable[[torch.Tensor], torch.Tensor] | None = None,
        style_mixing_prob: float = 0.9,
        r1_gamma: float = 10,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        pl_weight: float = 2,
    ) -> None:
        self.device, self.G_mapping, self.G_synthesis, self.D = device, G_mapping, G_synthesis, D
        self.augment_pipe, self.style_mixing_prob, self.r1_gamma = augment_pipe, style_mixing_prob, r1_gamma
        self.pl_batch_shrink, self.pl_decay, self.pl_weight = pl_batch_shrink, pl_decay, pl_weight
        self.pl_mean = torch.zeros([], device=device)
        self.stats: dict[str, torch.Tensor] = {}

    def report(self, name: str, value: torch.Tensor) -> None:
        self.stats[name] = value.detach()

    def run_G(self, z: torch.Tensor, c: torch.Tensor, sync: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixing draws (cutoff in [1, num_ws), then the coin, then the 2nd z) happen even when the coin says no,
        as in the reference, so both consume the same random numbers."""
        ws = self.G_mapping(z, c)
        if self.style_mixing_prob > 0:
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, ws.shape[1])
            coin = torch.rand([], device=ws.device) < self.style_mixing_prob
            cutoff = torch.where(coin, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)[:, cutoff:]
        return self.G_synthesis(ws), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor, sync: bool = True) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c)

    def accumulate_gradients(
        self,
        phase: str,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        gen_z: torch.Tensor,
        gen_c: torch.Tensor,
        sync: bool,
        gain: float,
    ) -> None:
        assert phase in ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")
        self.stats = {}
        if phase in ("Gmain", "Gboth"):
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            self.report("Loss/scores/fake", gen_logits)
            loss_g = F.softplus(-gen_logits)
            self.report("Loss/G/loss", loss_g)
            loss_g.mean().mul(gain).backward()
        if phase in ("Greg", "Gboth") and self.pl_weight != 0:
            self._path_length(gen_z, gen_c, gain)
        loss_dgen: torch.Tensor | float = 0
        if phase in ("Dmain", "Dboth"):
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            self.report("Loss/scores/fake", gen_logits)
            loss_dgen = F.softplus(gen_logits)
            loss_dgen.mean().mul(gain).backward()
        do_dmain, do_r1 = phase in ("Dmain", "Dboth"), phase in ("Dreg", "Dboth") and self.r1_gamma != 0
        if do_dmain or do_r1:
            self._real_terms(real_img, real_c, loss_dgen, do_dmain, do_r1, gain)

    def _path_length(self, gen_z: torch.Tensor, gen_c: torch.Tensor, gain: float) -> None:
        """|J^T y| for image-space noise y, pulled toward its running mean pl_mean (decay 0.01), on batch / 2."""
        n = gen_z.shape[0] // self.pl_batch_shrink
        gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n])
        pl_noise = torch.randn_like(gen_img) / math.sqrt(gen_img.shape[2] * gen_img.shape[3])
        (pl_grads,) = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        self.report("Loss/pl_penalty", pl_penalty)
        loss_gpl = pl_penalty * self.pl_weight
        self.report("Loss/G/reg", loss_gpl)
        (gen_img[:, 0, 0, 0] * 0 + loss_gpl).mean().mul(gain).backward()

    def _real_terms(
        self,
        real_img: torch.Tensor,
        real_c: torch.Tensor,
        loss_dgen: torch.Tensor | float,
        do_dmain: bool,
        do_r1: bool,
        gain: float,
    ) -> None:
        """softplus(-D(x)) and R1 = gamma/2 |dD(x)/dx|^2 from one forward on the reals."""
        real_img_tmp = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(real_img_tmp, real_c)
        self.report("Loss/scores/real", real_logits)
        loss_dreal: torch.Tensor | float = 0
        if do_dmain:
            loss_dreal = F.softplus(-real_logits)
            self.report("Loss/D/loss", loss_dgen + loss_dreal)
        loss_r1: torch.Tensor | float = 0
        if do_r1:
            (r1_grads,) = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True)
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_r1 = r1_penalty * (self.r1_gamma / 2)
            self.report("Loss/r1_penalty", r1_penalty)
            self.report("Loss/D/reg", loss_r1)
        (real_logits * 0 + loss_dreal + loss_r1).mean().mul(gain).backward()


# ---------------------------------------------------------------------------------------------------------------
# Training iteration (training/training_loop.py without ADA, DDP, stats and snapshots).


def generator_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """The reference's G_kwargs (less class_name) plus the common c_dim / resolution / channels."""
    return {
        "z_dim": spec["z_dim"], "c_dim": spec["c_dim"], "w_dim": spec["w_dim"],
        "img_resolution": spec["resolution"], "img_channels": spec["channels"],
        "mapping_kwargs": {"num_layers": spec["mapping_layers"]},
        "synthesis_kwargs": {
            "channel_base": spec["channel_base"], "channel_max": spec["channel_max"],
            "num_fp16_res": spec["num_fp16_res"], "conv_clamp": spec["conv_clamp"],
            "architecture": spec["g_architecture"],
        },
    }  # fmt: skip


def discriminator_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """The reference's D_kwargs (its label mapping keeps the default 8 layers, as train.py leaves it)."""
    return {
        "c_dim": spec["c_dim"], "img_resolution": spec["resolution"], "img_channels": spec["channels"],
        "architecture": spec["d_architecture"], "channel_base": spec["channel_base"],
        "channel_max": spec["channel_max"], "num_fp16_res": spec["num_fp16_res"], "conv_clamp": spec["conv_clamp"],
        "epilogue_kwargs": {"mbstd_group_size": spec["mbstd_group"]},
    }  # fmt: skip


def loss_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "style_mixing_prob": spec["style_mixing"], "r1_gamma": spec["gamma"], "pl_weight": spec["pl_weight"],
        "pl_batch_shrink": spec["pl_batch_shrink"], "pl_decay": spec["pl_decay"],
    }  # fmt: skip


@dataclass
class Phase:
    name: str
    module: nn.Module
    opt: torch.optim.Optimizer
    interval: int


@dataclass
class Training:
    """Everything one reference iteration touches; `cur_nimg` drives the EMA ramp-up."""

    G: nn.Module
    D: nn.Module
    G_ema: nn.Module
    loss: Any
    phases: list[Phase]
    spec: dict[str, Any]
    batch: int
    batch_gpu: int
    images: torch.Tensor
    labels: torch.Tensor
    device: torch.device
    cur_nimg: int = 0


def make_phases(G: nn.Module, D: nn.Module, spec: dict[str, Any]) -> list[Phase]:
    """Gmain/Greg/Dmain/Dreg with lazy-regularisation Adam (lr and betas rescaled by interval / (interval + 1)),
    or Gboth/Dboth when an interval is None."""
    phases = []
    for name, module, interval in (("G", G, spec["g_reg_interval"]), ("D", D, spec["d_reg_interval"])):
        lr, betas = spec["lr"], list(spec["betas"])
        if interval is None:
            opt = torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(betas), eps=spec["eps"])
            phases.append(Phase(name + "both", module, opt, 1))
            continue
        mb_ratio = interval / (interval + 1)
        betas = tuple(beta**mb_ratio for beta in betas)
        opt = torch.optim.Adam(module.parameters(), lr=lr * mb_ratio, betas=betas, eps=spec["eps"])
        phases += [Phase(name + "main", module, opt, 1), Phase(name + "reg", module, opt, interval)]
    return phases


def training_from_modules(
    G: nn.Module,
    D: nn.Module,
    spec: dict[str, Any],
    batch: int,
    device: str | torch.device = "cpu",
    loss_cls: Callable[..., Any] = StyleGAN2Loss,
    batch_gpu: int | None = None,
    num_images: int = 256,
) -> Training:
    """The loop's state around given G and D (the parity check passes the reference's modules and loss class):
    G and D train() with requires_grad off, G_ema a deep copy in eval(), random uint8 images as the data set."""
    device = torch.device(device)
    G = G.train().requires_grad_(False).to(device)
    D = D.train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    loss = loss_cls(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, **loss_kwargs(spec))
    shape = (num_images, spec["channels"], spec["resolution"], spec["resolution"])
    images = torch.randint(0, 256, shape, dtype=torch.uint8)
    labels = torch.zeros([num_images, spec["c_dim"]], dtype=torch.float32)
    if spec["c_dim"] > 0:
        labels[torch.arange(num_images), torch.randint(0, spec["c_dim"], (num_images,))] = 1
    return Training(
        G, D, G_ema, loss, make_phases(G, D, spec), dict(spec), batch, batch_gpu or batch, images, labels, device
    )


def make_training(spec: dict[str, Any], batch: int, device: str = "cpu", seed: int = 0) -> Training:
    """G, D (built after torch.manual_seed(seed), as the reference does), G_ema, optimizers and loss for `spec`."""
    torch.manual_seed(seed)
    G = Generator(**generator_kwargs(spec))
    D = Discriminator(**discriminator_kwargs(spec))
    return training_from_modules(G, D, spec, batch, device)


def _fetch(state: Training) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...], list, list]:
    """A batch of reals (uint8 -> [-1, 1]) and, for every phase, its own z and c, split into batch_gpu rounds."""
    n, bg, dev = state.batch, state.batch_gpu, state.device
    idx = torch.randint(0, state.images.shape[0], (n,))
    real_img = (state.images[idx].to(dev).to(torch.float32) / 127.5 - 1).split(bg)
    real_c = state.labels[idx].to(dev).split(bg)
    num = len(state.phases) * n
    all_z = torch.randn([num, state.G.z_dim], device=dev)
    all_c = state.labels[torch.randint(0, state.labels.shape[0], (num,))].to(dev)
    return real_img, real_c, [z.split(bg) for z in all_z.split(n)], [c.split(bg) for c in all_c.split(n)]


def train_iteration(state: Training, batch_idx: int) -> dict[str, float]:
    """One reference iteration: each phase whose interval divides batch_idx accumulates its rounds (gain =
    interval), nan_to_num's the grads and steps; then the G EMA (half-life ema_kimg, ramp-up ema_rampup)."""
    real_img, real_c, all_z, all_c = _fetch(state)
    stats: dict[str, float] = {}
    for phase, phase_z, phase_c in zip(state.phases, all_z, all_c, strict=True):
        if batch_idx % phase.interval != 0:
            continue
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        rounds = list(zip(real_img, real_c, phase_z, phase_c, strict=True))
        for round_idx, (img, c, z, gen_c) in enumerate(rounds):
            sync = round_idx == len(rounds) - 1
            state.loss.accumulate_gradients(phase.name, img, c, z, gen_c, sync=sync, gain=phase.interval)
            stats.update({k: float(v.mean()) for k, v in getattr(state.loss, "stats", {}).items()})
        phase.module.requires_grad_(False)
        for param in phase.module.parameters():
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        phase.opt.step()
    update_ema(state)
    state.cur_nimg += state.batch
    return stats


@torch.no_grad()
def update_ema(state: Training) -> float:
    """G_ema <- lerp(G, G_ema, beta), beta = 0.5 ** (batch / ema_nimg); buffers (w_avg, noise_const) copied."""
    ema_nimg = state.spec["ema_kimg"] * 1000
    if state.spec["ema_rampup"] is not None:
        ema_nimg = min(ema_nimg, state.cur_nimg * state.spec["ema_rampup"])
    ema_beta = 0.5 ** (state.batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(state.G_ema.parameters(), state.G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, ema_beta))
    for b_ema, b in zip(state.G_ema.buffers(), state.G.buffers(), strict=True):
        b_ema.copy_(b)
    return ema_beta


def param_counts(G: nn.Module, D: nn.Module) -> dict[str, int]:
    def count(m: nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    return {
        "G_params": count(G), "G_mapping_params": count(G.mapping), "G_synthesis_params": count(G.synthesis),
        "D_params": count(D),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3, help="timed iterations after warm-up")
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations first (batch_idx 0 runs Greg + Dreg)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 keeps torch's default")
    ap.add_argument("--res", type=int, default=CIFAR_SPEC["resolution"])
    ap.add_argument("--channels", type=int, default=CIFAR_SPEC["channels"])
    ap.add_argument("--time-reg", action="store_true", help="also time one iteration with Dreg (batch_idx %% 16 == 0)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    spec = {**CIFAR_SPEC, "resolution": args.res, "channels": args.channels}
    state = make_training(spec, args.batch, seed=args.seed)
    batch_idx = 0
    for _ in range(args.warmup):
        train_iteration(state, batch_idx)
        batch_idx += 1
    times, cpu_times = [], []
    for _ in range(args.steps):
        batch_idx += batch_idx % spec["d_reg_interval"] == 0  # time plain iterations (no R1)
        start, cpu_start = time.perf_counter(), time.process_time()
        train_iteration(state, batch_idx)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        batch_idx += 1
    default_shape = (args.res, args.channels) == (CIFAR_SPEC["resolution"], CIFAR_SPEC["channels"])
    out: dict[str, Any] = {
        "case": "stylegan2_cifar" + ("" if default_shape else f"_{args.res}x{args.res}x{args.channels}"),
        "framework": "torch-eager",
        "batch": args.batch,
        "steps_per_s": round(1 / statistics.median(times), 4),
        "ms_per_step": round(1e3 * statistics.median(times), 1),  # one step = one reference iteration
        "ms_per_step_all": [round(1e3 * t, 1) for t in times],
        # CPU seconds of all threads per step: comparable across runs on a shared machine, where wall time is not.
        "cpu_ms_per_step": round(1e3 * statistics.median(cpu_times), 1),
    }
    if args.time_reg:
        start = time.perf_counter()
        train_iteration(state, spec["d_reg_interval"] * (batch_idx // spec["d_reg_interval"] + 1))
        out["ms_per_reg_step"] = round(1e3 * (time.perf_counter() - start), 1)
    out.update(param_counts(state.G, state.D))
    out.update({"device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__})
    out["note"] = "reference cifar config, fp32 (num_fp16_res 0), no ADA; median over plain (no-R1) iterations"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()

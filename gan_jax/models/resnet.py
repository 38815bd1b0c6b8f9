"""SNGAN's ResNet generator and critic (Miyato et al. 2018, Table 4: the CIFAR-10 32x32 networks), NHWC, Flax Linen.

Layer for layer the official Chainer code (pfnet-research/sngan_projection: `gen_models/resnet_32.py`,
`gen_models/resblocks.py`, `dis_models/snresnet_32.py`, `dis_models/resblocks.py`) and its PyTorch port in
Mimicry (kwotsin/mimicry: `torch_mimicry/nets/sngan/sngan_32.py`, `torch_mimicry/modules/resblocks.py`):

- G: z -> Linear(4*4*256) -> 3 up-blocks (256 -> 256) -> BN -> ReLU -> conv3x3 -> tanh. An up-block is
  BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3, plus a shortcut nearest x2 + conv1x1. Nearest upsampling
  is Chainer's `unpooling_2d` (Mimicry switched to bilinear).
- D: OptimizedBlock(C -> 128, /2) -> Block(/2) -> Block -> Block (all 128 wide) -> ReLU -> sum over H, W ->
  spectrally normalised Linear (+ projection / ACGAN head of `conditioning.CriticHead`).
- Init: Xavier (Glorot) uniform; gain sqrt(2) for the two 3x3 convs in every residual branch, gain 1 for the
  shortcut 1x1 convs, G's first Linear and last conv, and the critic head (as both references). Biases start
  at 0 (Chainer; Mimicry keeps torch's uniform bias init). Batch norm: Chainer's eps 2e-5, decay 0.9.

Parameters at 32x32 (G width 256, D width 128): G 4,276,739 and D 1,053,825, Mimicry's counts (its D head has a
bias, Chainer's does not: 1,053,824 there); spectral-norm vectors are state ("batch_stats"), not parameters.

Beyond the references: resolution 28 (7x7 start, two up-blocks; D 28 -> 14 -> 7) and 64 (four up-blocks; one
more down-block in D), class-conditional batch norm in G, a SAGAN self-attention block, dropout in G, bf16 conv
compute. Shortcuts apply their 1x1 conv at the lower resolution (before upsampling / after pooling): the same
function as the references, since a 1x1 conv commutes with nearest upsampling and average pooling, at 1/4 of
the cost. Convolutions are `layers.Conv`, whose gradients stay on XLA:CPU's fast path.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax.errors import ConfigError
from gan_jax.models.conditioning import CONDITIONINGS, CriticHead, SelfAttention, apply_layer, batch_norm_fn, join_label
from gan_jax.models.layers import Conv

Array = jax.Array

# Chainer's L.BatchNormalization defaults (eps 2e-5, decay 0.9); flax momentum is the decay.
_BN_EPS = 2e-5
_BN_MOMENTUM = 0.9

# G: resolution -> (bottom size, number of up-blocks). D: resolution -> downsampling flags of its blocks after
# the OptimizedBlock (which always halves): 32 and 28 are SNGAN's (down, -, -), 64 halves once more.
_G_PLAN = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
_D_PLAN = {28: (True, False, False), 32: (True, False, False), 64: (True, True, False, False)}


def xavier_uniform(gain: float = 1.0) -> nn.initializers.Initializer:
    """torch's `xavier_uniform_(w, gain)` / Chainer's `GlorotUniform(scale)`: U(+-gain * sqrt(6 / (fan_in +
    fan_out))), fans counting the receptive field, for Flax (HWIO) kernels."""
    return nn.initializers.variance_scaling(gain**2, "fan_avg", "uniform")


_RESIDUAL_INIT = xavier_uniform(math.sqrt(2.0))
_UNIT_INIT = xavier_uniform(1.0)


def _check_resolution(resolution: int, channels: int, who: str) -> None:
    if resolution not in _G_PLAN:
        raise ConfigError(f"{who}: resolution {resolution} is not supported; choose one of {sorted(_G_PLAN)}")
    if channels < 1:
        raise ConfigError(f"{who}: channels must be positive, got {channels}")


def _check_attention(attention_resolution: int, sizes: list[int], who: str) -> None:
    """The attention block sits after the block that outputs that size, so the size must be one of those."""
    if attention_resolution and attention_resolution not in sizes:
        raise ConfigError(
            f"{who}: attention_resolution={attention_resolution} is not a feature-map size of this network; "
            f"choose one of {sorted(set(sizes))} (or 0 for none)"
        )


def _check_labels(y: Array | None, batch: int, who: str, why: str) -> None:
    if y is None or y.shape != (batch,) or not jnp.issubdtype(y.dtype, jnp.integer):
        got = None if y is None else f"{y.dtype} {y.shape}"
        raise ValueError(f"{who} with {why} needs int labels of shape ({batch},), got {got}")


def _upsample(x: Array) -> Array:
    """Nearest-neighbour x2 (Chainer's `unpooling_2d(x, 2)`), as a broadcast: its gradient is a plain sum."""
    b, h, w, c = x.shape
    return jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c)).reshape(b, 2 * h, 2 * w, c)


def _downsample(x: Array) -> Array:
    """2x2 average pooling with stride 2 (`average_pooling_2d(x, 2)`), as a reshape and mean."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _conv(features: int, kernel: int, init: nn.initializers.Initializer, dtype: Any, name: str) -> Conv:
    return Conv(features, (kernel, kernel), padding=kernel // 2, kernel_init=init, dtype=dtype, name=name)


class _UpBlock(nn.Module):
    """SNGAN generator block: BN-ReLU-up-conv3x3-BN-ReLU-conv3x3 + (up + conv1x1) shortcut (`gen_models/
    resblocks.py` Block with upsample=True; the shortcut is always learnable there since it upsamples)."""

    features: int
    num_classes: int
    axis_name: str | None
    dtype: Any

    @nn.compact
    def __call__(self, x: Array, y: Array | None, *, train: bool) -> Array:
        norm = batch_norm_fn(
            self.num_classes, y, train=train, momentum=_BN_MOMENTUM, epsilon=_BN_EPS, axis_name=self.axis_name
        )
        h = _upsample(nn.relu(norm(x, "bn1")))
        h = _conv(self.features, 3, _RESIDUAL_INIT, self.dtype, "conv1")(h).astype(jnp.float32)
        h = nn.relu(norm(h, "bn2"))
        h = _conv(self.features, 3, _RESIDUAL_INIT, self.dtype, "conv2")(h).astype(jnp.float32)
        shortcut = _conv(self.features, 1, _UNIT_INIT, self.dtype, "shortcut")(x).astype(jnp.float32)
        return h + _upsample(shortcut)


class _DownBlock(nn.Module):
    """SNGAN critic block (`dis_models/resblocks.py`). optimized (the first block, on the image): conv3x3-ReLU-
    conv3x3-pool + (pool + conv1x1); otherwise ReLU-conv3x3-ReLU-conv3x3-[pool] + a conv1x1 (+ pool) shortcut
    when the width changes or it pools, the identity otherwise."""

    features: int
    downsample: bool
    optimized: bool
    spectral_norm: bool
    dtype: Any

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        def conv(h: Array, kernel: int, init: nn.initializers.Initializer, name: str) -> Array:
            layer = _conv(self.features, kernel, init, self.dtype, name)
            return apply_layer(layer, h, spectral_norm=self.spectral_norm, train=train, name=f"{name}_sn").astype(
                jnp.float32
            )

        h = x if self.optimized else nn.relu(x)
        h = conv(nn.relu(conv(h, 3, _RESIDUAL_INIT, "conv1")), 3, _RESIDUAL_INIT, "conv2")
        shortcut = x
        if self.downsample:
            h, shortcut = _downsample(h), _downsample(shortcut)
        if self.optimized or self.downsample or x.shape[-1] != self.features:
            shortcut = conv(shortcut, 1, _UNIT_INIT, "shortcut")
        return h + shortcut


class ResNetGenerator(nn.Module):
    """SNGAN's CIFAR-10 ResNet generator (Miyato et al. 2018, Table 4a): z -> Linear -> s x s x width ->
    up-blocks (width -> width) -> BN -> ReLU -> conv3x3 -> tanh, NHWC in [-1, 1].

    resolution 32: 4 -> 8 -> 16 -> 32 (the reference); 28: 7 -> 14 -> 28; 64: 4 -> ... -> 64. `num_classes` > 0:
    every block's batch norm is class-conditional (de Vries et al. 2017; the projection-GAN generator) and
    `y` is required. `attention_resolution` > 0: a SAGAN self-attention block after the up-block that outputs
    that size. `dropout` follows every block in training mode (needs a 'dropout' rng).
    """

    resolution: int = 32
    channels: int = 3
    z_dim: int = 128
    width: int = 256
    num_classes: int = 0
    attention_resolution: int = 0
    dropout: float = 0.0
    dtype: Any = None  # convolution compute dtype (bfloat16); parameters, batch norm and the output stay float32
    axis_name: str | None = None  # pmap's device axis: batch-norm statistics over the global batch

    @nn.compact
    def __call__(self, z: Array, y: Array | None = None, *, train: bool) -> Array:
        who = "ResNetGenerator"
        _check_resolution(self.resolution, self.channels, who)
        size, n_blocks = _G_PLAN[self.resolution]
        _check_attention(self.attention_resolution, [size * 2 ** (i + 1) for i in range(n_blocks)], who)
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"{who} expects latents of shape (B, {self.z_dim}), got {z.shape}")
        if self.num_classes > 0:
            _check_labels(y, z.shape[0], who, f"num_classes={self.num_classes}")
        else:
            y = None
        h = nn.Dense(size * size * self.width, kernel_init=_UNIT_INIT, name="linear")(z.astype(jnp.float32))
        h = h.reshape(z.shape[0], size, size, self.width)
        for i in range(n_blocks):
            h = _UpBlock(self.width, self.num_classes, self.axis_name, self.dtype, name=f"block{i}")(h, y, train=train)
            if h.shape[1] == self.attention_resolution:
                h = SelfAttention(dtype=self.dtype or jnp.float32, name="attention")(h, train=train)
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        norm = batch_norm_fn(0, None, train=train, momentum=_BN_MOMENTUM, epsilon=_BN_EPS, axis_name=self.axis_name)
        h = nn.relu(norm(h, "bn_out"))
        h = _conv(self.channels, 3, _UNIT_INIT, self.dtype, "conv_out")(h)
        return jnp.tanh(h.astype(jnp.float32))


class ResNetCritic(nn.Module):
    """SNGAN's CIFAR-10 ResNet critic (Miyato et al. 2018, Table 4b; projection head of Miyato & Koyama 2018):
    OptimizedBlock(/2) -> Block(/2) -> Block -> Block, all `width` wide -> ReLU -> sum over H, W -> head.

    Down path 32 -> 16 -> 8 (the reference), 28 -> 14 -> 7, 64 -> 32 -> 16 -> 8. Every conv and the head are
    spectrally normalised when `spectral_norm` (the power-iteration state is in "batch_stats"). The head is
    `CriticHead`: linear, + projection term, or + ACGAN classifier sown as ("aux", "class_logits"); "cgan"
    joins one-hot label maps to the input. `channels` may be m*C for PacGAN packs. Logits are float32, (B,).
    """

    resolution: int = 32
    channels: int = 3
    width: int = 128
    num_classes: int = 0
    conditioning: str = "none"  # none | cgan | acgan | projection
    spectral_norm: bool = True
    attention_resolution: int = 0
    dtype: Any = None  # convolution compute dtype (bfloat16); parameters and the head stay float32

    @nn.compact
    def __call__(self, x: Array, y: Array | None = None, *, train: bool) -> Array:
        who = "ResNetCritic"
        _check_resolution(self.resolution, self.channels, who)
        downs = (True, *_D_PLAN[self.resolution])
        sizes = [self.resolution >> sum(downs[: i + 1]) for i in range(len(downs))]
        _check_attention(self.attention_resolution, sizes, who)
        if self.conditioning not in CONDITIONINGS:
            raise ConfigError(f"{who}: conditioning {self.conditioning!r} is unknown; choose one of {CONDITIONINGS}")
        shape = (self.resolution, self.resolution, self.channels)
        if x.ndim != 4 or x.shape[1:] != shape:
            raise ValueError(f"{who} expects NHWC images of shape (B, {', '.join(map(str, shape))}), got {x.shape}")
        if self.conditioning != "none":
            if self.num_classes < 1:
                raise ConfigError(f"{who}: conditioning={self.conditioning!r} needs num_classes >= 1")
            _check_labels(y, x.shape[0], who, f"conditioning={self.conditioning!r}")
        h = join_label(x, y, self.num_classes) if self.conditioning == "cgan" else x
        h = h.astype(jnp.float32)
        attended = False
        for i, down in enumerate(downs):
            block = _DownBlock(self.width, down, i == 0, self.spectral_norm, self.dtype, name=f"block{i}")
            h = block(h, train=train)
            if h.shape[1] == self.attention_resolution and not attended:
                attention = SelfAttention(self.spectral_norm, self.dtype or jnp.float32, name="attention")
                h, attended = attention(h, train=train), True
        h = jnp.sum(nn.relu(h), axis=(1, 2))
        head = CriticHead(self.num_classes, self.conditioning, self.spectral_norm, _UNIT_INIT, name="head")
        return head(h, y, train=train)

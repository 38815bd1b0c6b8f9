"""DCGAN-style convolutional generators and critics (NHWC, Flax Linen).

`DCGANGenerator`/`DCGANCritic` at resolution 32 are PyTorch-StudioGAN's CIFAR-10 `deep_conv` networks, layer
for layer (same widths, kernels, paddings, BatchNorm eps 1e-4 and momentum 0.1, parameter counts).
`RadfordGenerator`/`RadfordCritic` are the 64x64 DCGAN of Radford et al. (2015).

Convolutions use `layers.Conv` / `layers.ConvTranspose`: the same parameters and function as Flax's, but
their gradients stay on XLA:CPU's fast convolution path inside scanned train steps (see `layers.py`).

The 32/28/64 DCGANs take the class-conditioning options of `conditioning.py` (cgan / acgan: label embedding
joined to z, projection: conditional batch norm; critics: label maps at the input, ACGAN head or projection),
spectral normalisation of the critic, dropout in G and a bf16 compute dtype; the defaults are the plain nets.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax.errors import ConfigError
from gan_jax.models.conditioning import CriticHead, LabelLatent, apply_layer, batch_norm_fn, join_label
from gan_jax.models.layers import Conv, ConvTranspose
from gan_jax.models.mlp import activation

# torch BatchNorm2d(eps=1e-4, momentum=0.1) as used by StudioGAN; flax momentum is the decay, i.e. 1 - 0.1.
_BN_EPS = 1e-4
_BN_MOMENTUM = 0.9

# (start size, start width, up-block widths) for G; D mirrors it: (down-block widths, final conv width).
# 32 is StudioGAN deep_conv. 28 drops G's first (widest) up-block and D's last down-block, so 7x7 maps are
# never halved to odd sizes. 64 appends a 64-wide up-block to G and prepends a 64-wide down-block to D.
_G_PLAN = {28: (7, 256, (128, 64)), 32: (4, 512, (256, 128, 64)), 64: (4, 512, (256, 128, 64, 64))}
_D_PLAN = {28: ((64, 128), 512), 32: ((64, 128, 256), 512), 64: ((64, 64, 128, 256), 512)}


def _check(resolution: int, channels: int, *, critic: bool = False) -> None:
    """Critics also take m*C channels: PacGAN packs of m images concatenated along channels (models.packing)."""
    if resolution not in _G_PLAN:
        raise ConfigError(f"DCGAN resolution {resolution} is not supported; choose one of {sorted(_G_PLAN)}")
    if critic and channels < 1:
        raise ConfigError(f"DCGAN critic channels must be positive, got {channels}")
    if not critic and channels not in (1, 3):
        raise ConfigError(f"DCGAN channels must be 1 or 3, got {channels}")


def _inits(init: str) -> tuple[nn.initializers.Initializer, nn.initializers.Initializer]:
    """(kernel init, BatchNorm scale init). "normal02" is Radford's N(0, 0.02) weights, N(1, 0.02) scales."""
    if init == "default":
        return nn.linear.default_kernel_init, nn.initializers.ones
    if init == "normal02":
        return nn.initializers.normal(0.02), _normal_around_one
    raise ConfigError(f"init {init!r} is unknown; choose 'default' or 'normal02'")


def _normal_around_one(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _check_images(x: jax.Array, size: int, channels: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1:] != (size, size, channels):
        raise ValueError(f"{who} expects NHWC images of shape (B, {size}, {size}, {channels}), got {x.shape}")


def _check_latent(z: jax.Array, z_dim: int, who: str) -> None:
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"{who} expects latents of shape (B, {z_dim}), got {z.shape}")


class DCGANGenerator(nn.Module):
    """z -> Linear -> (s x s x w) -> up-blocks [ConvT k4 s2 -> BN -> ReLU] -> Conv k3 -> tanh, NHWC in [-1, 1].

    resolution 32: 4x4x512 -> 256 -> 128 -> 64 (StudioGAN deep_conv); 28: 7x7x256 -> 128 -> 64 (the first
    up-block dropped); 64: 4x4x512 -> 256 -> 128 -> 64 -> 64 (one more 64-wide up-block). The transposed-conv
    kernel is Flax's layout (kh, kw, cin, cout), i.e. torch's ConvTranspose2d weight with the spatial taps
    flipped: the same function class and initial distribution. `weight_init` ("default" = Flax's LeCun
    normal, "normal02" = Radford's N(0, 0.02)) is not called `init`, which would shadow `Module.init`.
    """

    resolution: int = 32
    channels: int = 3
    z_dim: int = 128
    weight_init: str = "default"
    axis_name: str | None = None  # pmap's device axis: batch-norm statistics over the global batch
    num_classes: int = 0  # > 0 with a conditioning: class-conditional
    conditioning: str = "none"  # none | cgan | acgan (label embedding joined to z) | projection (conditional BN)
    dropout: float = 0.0  # after each up-block, in training mode
    width_scale: float = 1.0  # every layer's width times this (1 = the reference net; < 1 for quick CPU runs)
    dtype: Any = None  # convolution compute dtype (bfloat16); parameters and batch norm stay float32

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        _check(self.resolution, self.channels)
        _check_latent(z, self.z_dim, "DCGANGenerator")
        _check_labels(y, z.shape[0], self.num_classes, self.conditioning, "DCGANGenerator")
        kernel_init, scale_init = _inits(self.weight_init)
        size, width, widths = _G_PLAN[self.resolution]
        width, widths = _scaled(width, self.width_scale), [_scaled(w, self.width_scale) for w in widths]
        if self.conditioning in ("cgan", "acgan"):
            z = LabelLatent(self.num_classes, name="label_latent")(z, y)
        cbn_classes = self.num_classes if self.conditioning == "projection" else 0
        norm = batch_norm_fn(
            cbn_classes,
            y,
            train=train,
            momentum=_BN_MOMENTUM,
            epsilon=_BN_EPS,
            axis_name=self.axis_name,
            scale_init=scale_init,
        )
        h = nn.Dense(size * size * width, kernel_init=kernel_init, name="linear0")(z)
        h = h.reshape(z.shape[0], size, size, width)
        for i, w in enumerate(widths):
            h = ConvTranspose(w, (4, 4), (2, 2), kernel_init=kernel_init, dtype=self.dtype, name=f"deconv{i}")(h)
            h = nn.relu(norm(h.astype(jnp.float32), f"bn{i}"))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        h = Conv(self.channels, (3, 3), padding=1, kernel_init=kernel_init, dtype=self.dtype, name="conv_out")(h)
        return jnp.tanh(h.astype(jnp.float32))


class DCGANCritic(nn.Module):
    """x -> down-blocks [Conv k3 s1 -> BN -> act -> Conv k4 s2 -> BN -> act] -> Conv k3 -> BN -> act
    -> sum over H, W -> Linear -> logits (B,).

    resolution 32: blocks 64, 128, 256 (32 -> 4) then Conv 256 -> 512 (StudioGAN deep_conv); 28: blocks 64, 128
    (28 -> 7) then Conv 128 -> 512; 64: blocks 64, 64, 128, 256 (64 -> 4) then Conv 256 -> 512. `activation`
    is a name from `mlp.ACTIVATIONS` ("relu", "leaky_relu" = slope 0.2, ...).
    """

    resolution: int = 32
    channels: int = 3
    activation: str = "relu"
    weight_init: str = "default"
    axis_name: str | None = None  # pmap's device axis: batch-norm statistics over the global batch
    num_classes: int = 0
    conditioning: str = "none"  # none | cgan (label maps at the input) | acgan (classifier head) | projection
    spectral_norm: bool = False  # normalise every conv and the head; batch norm is then left out (as SNGAN's D)
    width_scale: float = 1.0  # every layer's width times this (1 = the reference net)
    dtype: Any = None  # convolution compute dtype (bfloat16); parameters and the head stay float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        _check(self.resolution, self.channels, critic=True)
        _check_images(x, self.resolution, self.channels, "DCGANCritic")
        _check_labels(y, x.shape[0], self.num_classes, self.conditioning, "DCGANCritic")
        act = activation(self.activation)
        kernel_init, scale_init = _inits(self.weight_init)
        widths, last = _D_PLAN[self.resolution]
        widths, last = [_scaled(w, self.width_scale) for w in widths], _scaled(last, self.width_scale)
        sn = self.spectral_norm
        h = join_label(x, y, self.num_classes) if self.conditioning == "cgan" else x

        def conv_norm_act(h: jax.Array, conv: Conv, bn_name: str) -> jax.Array:
            h = apply_layer(conv, h, spectral_norm=sn, train=train, name=f"{conv.name}_sn").astype(jnp.float32)
            return act(h if sn else _batch_norm(train, scale_init, self.axis_name, bn_name)(h))

        for i, w in enumerate(widths):
            conv0 = Conv(w, (3, 3), padding=1, kernel_init=kernel_init, dtype=self.dtype, name=f"block{i}_conv0")
            h = conv_norm_act(h, conv0, f"block{i}_bn0")
            conv1 = Conv(w, (4, 4), 2, 1, kernel_init=kernel_init, dtype=self.dtype, name=f"block{i}_conv1")
            h = conv_norm_act(h, conv1, f"block{i}_bn1")
        h = conv_norm_act(
            h, Conv(last, (3, 3), padding=1, kernel_init=kernel_init, dtype=self.dtype, name="conv"), "bn"
        )
        h = jnp.sum(h, axis=(1, 2))
        head = CriticHead(self.num_classes, self.conditioning, sn, kernel_init, name="head")
        return head(h, y, train=train)


def _scaled(width: int, scale: float) -> int:
    return max(1, round(width * scale))


def _check_labels(y: jax.Array | None, batch: int, num_classes: int, conditioning: str, who: str) -> None:
    """Conditional nets need int labels, one per example; unconditional ones ignore `y`."""
    if conditioning == "none":
        return
    if num_classes < 1:
        raise ConfigError(f"{who}: conditioning={conditioning!r} needs num_classes >= 1 (a labelled dataset)")
    if y is None or y.shape != (batch,) or not jnp.issubdtype(y.dtype, jnp.integer):
        got = None if y is None else f"{y.dtype} {y.shape}"
        raise ValueError(f"{who} with conditioning={conditioning!r} needs int labels of shape ({batch},), got {got}")


def _batch_norm(train: bool, scale_init: nn.initializers.Initializer, axis_name: str | None, name: str) -> nn.BatchNorm:
    """`axis_name`: under pmap, the device axis the batch statistics are averaged over (the global batch)."""
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPS,
        scale_init=scale_init,
        axis_name=axis_name,
        name=name,
    )


class RadfordGenerator(nn.Module):
    """Radford et al. DCGAN G, 64x64: z -> 4x4x1024 -> 512 -> 256 -> 128 -> 64x64xC, BN + ReLU, tanh out.

    The first layer (a k4 transposed conv on a 1x1 map in the paper) is the Linear layer it is equivalent to.
    Layers followed by BatchNorm have no bias (BN's shift replaces it), as in the reference implementation.
    """

    channels: int = 3
    z_dim: int = 100
    axis_name: str | None = None  # pmap's device axis: batch-norm statistics over the global batch

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y
        _check(64, self.channels)
        _check_latent(z, self.z_dim, "RadfordGenerator")
        kernel_init, scale_init = _inits("normal02")
        h = nn.Dense(4 * 4 * 1024, use_bias=False, kernel_init=kernel_init, name="project")(z)
        h = nn.relu(_batch_norm(train, scale_init, self.axis_name, "bn_project")(h.reshape(z.shape[0], 4, 4, 1024)))
        for i, w in enumerate((512, 256, 128)):
            h = ConvTranspose(w, (4, 4), (2, 2), use_bias=False, kernel_init=kernel_init, name=f"deconv{i}")(h)
            h = nn.relu(_batch_norm(train, scale_init, self.axis_name, f"bn{i}")(h))
        h = ConvTranspose(self.channels, (4, 4), (2, 2), kernel_init=kernel_init, name="deconv_out")(h)
        return jnp.tanh(h)


class RadfordCritic(nn.Module):
    """Radford et al. DCGAN D, 64x64: Conv k4 s2 64 -> 128 -> 256 -> 512 (BN from the second), LeakyReLU 0.2,
    then a k4 valid Conv on the 4x4 map to one logit per image."""

    channels: int = 3
    axis_name: str | None = None  # pmap's device axis: batch-norm statistics over the global batch
    spectral_norm: bool = False  # normalise every conv (batch norm is then left out)

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y
        _check(64, self.channels, critic=True)
        _check_images(x, 64, self.channels, "RadfordCritic")
        kernel_init, scale_init = _inits("normal02")
        h = x
        for i, w in enumerate((64, 128, 256, 512)):
            sn = self.spectral_norm
            conv = Conv(w, (4, 4), 2, padding=1, use_bias=i == 0 or sn, kernel_init=kernel_init, name=f"conv{i}")
            h = apply_layer(conv, h, spectral_norm=sn, train=train, name=f"conv{i}_sn")
            if i > 0 and not sn:
                h = _batch_norm(train, scale_init, self.axis_name, f"bn{i}")(h)
            h = nn.leaky_relu(h, 0.2)
        conv_out = Conv(1, (4, 4), padding="VALID", kernel_init=kernel_init, name="conv_out")
        h = apply_layer(conv_out, h, spectral_norm=self.spectral_norm, train=train, name="conv_out_sn")
        return h.reshape(x.shape[0])

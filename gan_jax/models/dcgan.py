"""DCGAN-style convolutional generators and critics (NHWC, Flax Linen).

`DCGANGenerator`/`DCGANCritic` at resolution 32 are PyTorch-StudioGAN's CIFAR-10 `deep_conv` networks, layer
for layer (same widths, kernels, paddings, BatchNorm eps 1e-4 and momentum 0.1, parameter counts).
`RadfordGenerator`/`RadfordCritic` are the 64x64 DCGAN of Radford et al. (2015).

Convolutions use `layers.Conv` / `layers.ConvTranspose`: the same parameters and function as Flax's, but
their gradients stay on XLA:CPU's fast convolution path inside scanned train steps (see `layers.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from gan_jax.errors import ConfigError
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

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y  # unconditional for now
        _check(self.resolution, self.channels)
        _check_latent(z, self.z_dim, "DCGANGenerator")
        kernel_init, scale_init = _inits(self.weight_init)
        size, width, widths = _G_PLAN[self.resolution]
        h = nn.Dense(size * size * width, kernel_init=kernel_init, name="linear0")(z)
        h = h.reshape(z.shape[0], size, size, width)
        for i, w in enumerate(widths):
            h = ConvTranspose(w, (4, 4), (2, 2), kernel_init=kernel_init, name=f"deconv{i}")(h)
            h = _batch_norm(train, scale_init, self.axis_name, f"bn{i}")(h)
            h = nn.relu(h)
        h = Conv(self.channels, (3, 3), padding=1, kernel_init=kernel_init, name="conv_out")(h)
        return jnp.tanh(h)


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

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y  # unconditional for now
        _check(self.resolution, self.channels, critic=True)
        _check_images(x, self.resolution, self.channels, "DCGANCritic")
        act = activation(self.activation)
        kernel_init, scale_init = _inits(self.weight_init)
        widths, last = _D_PLAN[self.resolution]
        h = x
        for i, w in enumerate(widths):
            h = Conv(w, (3, 3), padding=1, kernel_init=kernel_init, name=f"block{i}_conv0")(h)
            h = act(_batch_norm(train, scale_init, self.axis_name, f"block{i}_bn0")(h))
            h = Conv(w, (4, 4), strides=2, padding=1, kernel_init=kernel_init, name=f"block{i}_conv1")(h)
            h = act(_batch_norm(train, scale_init, self.axis_name, f"block{i}_bn1")(h))
        h = Conv(last, (3, 3), padding=1, kernel_init=kernel_init, name="conv")(h)
        h = act(_batch_norm(train, scale_init, self.axis_name, "bn")(h))
        h = jnp.sum(h, axis=(1, 2))
        return nn.Dense(1, kernel_init=kernel_init, name="linear1")(h)[:, 0]


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

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y
        _check(64, self.channels, critic=True)
        _check_images(x, 64, self.channels, "RadfordCritic")
        kernel_init, scale_init = _inits("normal02")
        h = x
        for i, w in enumerate((64, 128, 256, 512)):
            conv = Conv(w, (4, 4), 2, padding=1, use_bias=i == 0, kernel_init=kernel_init, name=f"conv{i}")
            h = conv(h)
            if i > 0:
                h = _batch_norm(train, scale_init, self.axis_name, f"bn{i}")(h)
            h = nn.leaky_relu(h, 0.2)
        h = Conv(1, (4, 4), padding="VALID", kernel_init=kernel_init, name="conv_out")(h)
        return h.reshape(x.shape[0])

"""Building blocks shared by the image families: class conditioning, spectral normalisation, self-attention.

Class-conditional GANs differ in where the label enters (Mirza & Osindero 2014; Odena et al. 2017; Miyato &
Koyama 2018), not in how they train, so each way is one small piece here and a generator or critic picks
it with its `conditioning` field:

- "cgan": the label joins G's latent (a learned embedding concatenated to z) and D's input (one-hot channel maps).
- "acgan": G as cgan; D has an auxiliary classifier head whose logits are sown into the "aux" collection, and the
  train step adds the class losses (`train.step`), so D still returns one adversarial logit per example.
- "projection": G uses conditional batch norm; D adds the projection term <embed(y), features>.

Spectral normalisation (Miyato et al. 2018) is Flax's `nn.SpectralNorm` wrapper: its power-iteration vector and
sigma live in the "batch_stats" collection, i.e. in the train state next to batch-norm statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
CONDITIONINGS = ("none", "cgan", "acgan", "projection")


def apply_layer(layer: nn.Module, x: Array, *, spectral_norm: bool, train: bool, name: str | None = None) -> Array:
    """`layer(x)`, spectrally normalised when asked: one power iteration per training call (as the reference
    implementations do), none at evaluation, so evaluation is deterministic."""
    if not spectral_norm:
        return layer(x)
    return nn.SpectralNorm(layer, name=name)(x, update_stats=train)


def join_label(x: Array, y: Array, num_classes: int) -> Array:
    """CGAN's input conditioning: one-hot labels appended along the last axis (as constant maps for images)."""
    one_hot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
    if x.ndim == 2:
        return jnp.concatenate([x, one_hot], axis=-1)
    maps = jnp.broadcast_to(one_hot[:, None, None, :], (*x.shape[:-1], num_classes))
    return jnp.concatenate([x, maps], axis=-1)


class LabelLatent(nn.Module):
    """CGAN/ACGAN generator input: z concatenated with a learned class embedding of width `features`."""

    num_classes: int
    features: int = 50

    @nn.compact
    def __call__(self, z: Array, y: Array) -> Array:
        return jnp.concatenate([z, nn.Embed(self.num_classes, self.features, name="embed")(y).astype(z.dtype)], -1)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without its own affine terms, then a per-class scale and shift looked up from `y`
    (de Vries et al. 2017; the generator side of the projection GAN). Scales start at 1, shifts at 0."""

    num_classes: int
    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: Array, y: Array, *, train: bool) -> Array:
        h = nn.BatchNorm(
            use_running_average=not train,
            momentum=self.momentum,
            epsilon=self.epsilon,
            use_scale=False,
            use_bias=False,
            axis_name=self.axis_name,
            name="bn",
        )(x)
        features = x.shape[-1]
        gamma = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.ones, name="gamma")(y)
        beta = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.zeros, name="beta")(y)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
        return h * gamma.reshape(shape).astype(h.dtype) + beta.reshape(shape).astype(h.dtype)


def batch_norm_fn(
    num_classes: int,
    y: Array | None,
    *,
    train: bool,
    momentum: float,
    epsilon: float,
    axis_name: str | None,
    scale_init: Any = nn.initializers.ones,
) -> Callable[[Array, str], Array]:
    """A `norm(h, name)` function: conditional batch norm when `num_classes` > 0 (labels given), plain otherwise."""

    def norm(h: Array, name: str) -> Array:
        if num_classes > 0:
            cbn = ConditionalBatchNorm(num_classes, momentum, epsilon, axis_name, name=name)
            return cbn(h, y, train=train)
        bn = nn.BatchNorm(
            use_running_average=not train,
            momentum=momentum,
            epsilon=epsilon,
            scale_init=scale_init,
            axis_name=axis_name,
            name=name,
        )
        return bn(h)

    return norm


class CriticHead(nn.Module):
    """Features [B, F] -> one adversarial logit per example, with the class-conditional term of `conditioning`.

    projection: logit = linear(h) + <embed(y), h>; acgan: also class logits, sown as ("aux", "class_logits");
    none / cgan: linear(h) (cgan joined the label at the input). Spectral norm applies to the linear layers and
    the projection embedding, as in Miyato & Koyama (2018).
    """

    num_classes: int = 0
    conditioning: str = "none"
    spectral_norm: bool = False
    kernel_init: Any = nn.linear.default_kernel_init

    @nn.compact
    def __call__(self, h: Array, y: Array | None, *, train: bool) -> Array:
        sn = self.spectral_norm
        h = h.astype(jnp.float32)
        dense = nn.Dense(1, kernel_init=self.kernel_init, name="linear")
        logits = apply_layer(dense, h, spectral_norm=sn, train=train, name="linear_sn")[:, 0]
        if self.conditioning == "projection":
            embed = nn.Dense(h.shape[-1], use_bias=False, kernel_init=self.kernel_init, name="embed")
            one_hot = jax.nn.one_hot(y, self.num_classes, dtype=h.dtype)  # an embedding as a bias-free linear map
            logits = logits + jnp.sum(
                apply_layer(embed, one_hot, spectral_norm=sn, train=train, name="embed_sn") * h, -1
            )
        elif self.conditioning == "acgan":
            classifier = nn.Dense(self.num_classes, kernel_init=self.kernel_init, name="classifier")
            self.sow("aux", "class_logits", apply_layer(classifier, h, spectral_norm=sn, train=train, name="cls_sn"))
        return logits


class SelfAttention(nn.Module):
    """SAGAN's self-attention block (Zhang et al. 2019): every position attends to every other one, so a
    layer can relate distant parts of an image. Query/key project to C/8 channels, value to C/2, keys and
    values are max-pooled 2x2 (as BigGAN/SAGAN do), and the output enters through a learned gate `gamma`
    that starts at 0, so the block starts as the identity."""

    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, *, train: bool) -> Array:
        b, height, width, c = x.shape

        def proj(features: int, name: str, inp: Array) -> Array:
            layer = nn.Dense(features, use_bias=False, dtype=self.dtype, name=name)
            return apply_layer(layer, inp, spectral_norm=self.spectral_norm, train=train, name=f"{name}_sn")

        query = proj(max(c // 8, 1), "query", x).reshape(b, height * width, -1)
        pooled = nn.max_pool(x, (2, 2), (2, 2)) if height % 2 == 0 and width % 2 == 0 else x
        key = proj(max(c // 8, 1), "key", pooled).reshape(b, -1, max(c // 8, 1))
        value = proj(max(c // 2, 1), "value", pooled).reshape(b, key.shape[1], -1)
        attention = jax.nn.softmax(jnp.einsum("bqd,bkd->bqk", query, key).astype(jnp.float32), axis=-1)
        out = jnp.einsum("bqk,bkd->bqd", attention.astype(value.dtype), value).reshape(b, height, width, -1)
        out = proj(c, "out", out)
        gamma = self.param("gamma", nn.initializers.zeros, ())
        return x + gamma * out.astype(x.dtype)

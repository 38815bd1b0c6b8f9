"""MLP generator and critic for low-dimensional data (2-D mixtures, flattened small images)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError
from gan_jax.models.conditioning import CriticHead, LabelLatent, apply_layer, join_label

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": lambda x: nn.leaky_relu(x, 0.2),
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "tanh": jnp.tanh,
    "linear": lambda x: x,
}


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(f"activation {name!r} is unknown; choose one of: {', '.join(ACTIVATIONS)}") from None


class MLPGenerator(nn.Module):
    """z -> hidden layers -> data. Dropout (active only when `train`) needs a 'dropout' rng."""

    out_shape: tuple[int, ...] = (2,)
    widths: Sequence[int] = (256, 256, 256)
    activation: str = "relu"
    dropout: float = 0.0
    output_activation: str = "linear"
    num_classes: int = 0
    conditioning: str = "none"  # any conditioning: a learned label embedding joined to z (Mirza & Osindero 2014)

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        act = activation(self.activation)
        h = z if self.conditioning == "none" else LabelLatent(self.num_classes, name="label_latent")(z, y)
        for width in self.widths:
            h = act(nn.Dense(width)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        out = nn.Dense(int(np.prod(self.out_shape)))(h)
        return activation(self.output_activation)(out).reshape((z.shape[0], *self.out_shape))


class MLPCritic(nn.Module):
    """data -> hidden layers -> one logit per example (with the class term of `conditioning`, see CriticHead).

    cgan joins the one-hot label to the (flattened) input; `spectral_norm` normalises every layer."""

    widths: Sequence[int] = (256, 256, 256)
    activation: str = "leaky_relu"
    num_classes: int = 0
    conditioning: str = "none"
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        act = activation(self.activation)
        h = x.reshape(x.shape[0], -1)
        if self.conditioning == "cgan":
            h = join_label(h, y, self.num_classes)
        for width in self.widths:
            h = act(apply_layer(nn.Dense(width), h, spectral_norm=self.spectral_norm, train=train))
        return CriticHead(self.num_classes, self.conditioning, self.spectral_norm, name="head")(h, y, train=train)

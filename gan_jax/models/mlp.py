"""MLP generator and critic for low-dimensional data (2-D mixtures, flattened small images)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import ConfigError

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

    @nn.compact
    def __call__(self, z: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y  # unconditional
        act = activation(self.activation)
        h = z
        for width in self.widths:
            h = act(nn.Dense(width)(h))
            if self.dropout > 0:
                h = nn.Dropout(self.dropout, deterministic=not train)(h)
        out = nn.Dense(int(np.prod(self.out_shape)))(h)
        return activation(self.output_activation)(out).reshape((z.shape[0], *self.out_shape))


class MLPCritic(nn.Module):
    """data -> hidden layers -> one logit per example."""

    widths: Sequence[int] = (256, 256, 256)
    activation: str = "leaky_relu"

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        del y, train  # unconditional; no batch-dependent layers
        act = activation(self.activation)
        h = x.reshape(x.shape[0], -1)
        for width in self.widths:
            h = act(nn.Dense(width)(h))
        return nn.Dense(1)(h)[:, 0]

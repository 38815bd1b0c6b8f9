"""PacGAN packing (Lin, Khetan, Fanti, Oh, NeurIPS 2018): the critic judges m samples at once.

A mode-collapsed generator is easy to spot from several samples together (they look alike) even when each one
looks real, so a critic that sees packs of m samples, all real or all fake, penalises collapse. `PackedCritic`
wraps any critic: it groups consecutive examples into packs and concatenates each pack along the last axis, which
is the feature axis of vectors ([B, d] -> [B/m, m*d]) and the channel axis of NHWC images ([B, H, W, C] ->
[B/m, H, W, m*C], as PacGAN does for images). The wrapped critic is built for the packed width (`build.py` asks
for m*C image channels; an MLP sizes its first layer lazily) and returns one logit per pack.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def pack_examples(x: jax.Array, pack: int) -> jax.Array:
    """[B, ..., F] -> [B/pack, ..., pack*F]: consecutive examples side by side along the last axis.

    Example j of pack i sits at features [j*F, (j+1)*F) of row i, so a batch whose first half is real and second
    half fake (B/2 divisible by pack) gives packs that are all real or all fake.
    """
    if pack == 1:
        return x
    if x.ndim < 2:
        raise ValueError(f"packing needs a batch of examples with a feature axis, got shape {x.shape}")
    batch = x.shape[0]
    if batch % pack:
        raise ValueError(f"a batch of {batch} examples cannot be split into packs of {pack} (model.pack)")
    grouped = x.reshape(batch // pack, pack, *x.shape[1:])  # [P, m, ..., F]
    grouped = jnp.moveaxis(grouped, 1, -2)  # [P, ..., m, F]
    return grouped.reshape(batch // pack, *x.shape[1:-1], pack * x.shape[-1])


class PackedCritic(nn.Module):
    """`critic` applied to packs of `pack` consecutive examples: logits [B/pack] for a batch of B examples.

    Only built for pack > 1 (`build.py`), so pack = 1 keeps the plain critic and its parameter tree. Packs of a
    conditional critic would need one label per pack; that is not defined, so labels are refused.
    """

    critic: nn.Module
    pack: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array | None = None, *, train: bool) -> jax.Array:
        if y is not None:
            raise ValueError("PackedCritic does not support class labels (model.pack > 1 is unconditional)")
        if self.is_initializing() and x.shape[0] % self.pack:
            x = jnp.repeat(x, self.pack, axis=0)  # init only needs shapes: make the dummy batch packable
        return self.critic(pack_examples(x, self.pack), None, train=train)

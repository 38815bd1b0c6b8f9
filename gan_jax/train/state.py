"""TrainState: the whole training state as one pytree (what jit transforms, orbax saves and shardings place).

It names no family: a family's networks live in `nets` by name (`{"G", "D"}` for a GAN, `{"G_ab", "G_ba", "D_a",
"D_b"}` for CycleGAN), each with its parameters, non-trainable collections (batch-norm statistics, spectral-norm
vectors), optimizer state and optional EMA; anything else a family carries (a path-length mean, an augmentation
probability, an image pool) lives in `extra`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

Array = jax.Array
Variables = dict[str, Any]

# Bumped whenever the saved layout of TrainState changes; checkpoints record it (train.checkpoint).
# 1: the GAN-only GANState (g_params, d_params, ...); 2: nets by name + extra.
STATE_FORMAT_VERSION = 2


class NetState(flax.struct.PyTreeNode):
    """One network's trainable state."""

    params: Variables
    stats: Variables  # non-trainable collections, e.g. {"BatchNorm_0": {"mean", "var"}} ({} when none)
    opt: Any  # its optimizer's state
    ema: Variables | None = None  # moving average of params (None when the family keeps none)

    @property
    def sampling_params(self) -> Variables:
        """The weights to sample and evaluate with: the EMA when there is one."""
        return self.params if self.ema is None else self.ema

    @property
    def variables(self) -> Variables:
        """Flax `apply` variables in evaluation mode."""
        return {"params": self.sampling_params, **({"batch_stats": self.stats} if self.stats else {})}


class TrainState(flax.struct.PyTreeNode):
    step: Array  # int32 scalar: train steps done
    key: Array  # root PRNG key (raw uint32[2]); step keys are fold_in(key, step), so it never changes
    nets: dict[str, NetState]
    extra: dict[str, Any]  # family-specific state ({} when none)
    nonfinite_skipped: Array  # int32: steps skipped for a non-finite value (train.on_nonfinite=skip)
    nonfinite_step: Array  # int32: the step that went non-finite under train.on_nonfinite=stop; -1 = none
    nonfinite_what: Array  # int32 bit mask over the family's nonfinite_quantities at that step


def new_state(key: Array, nets: dict[str, NetState], extra: dict[str, Any] | None = None) -> TrainState:
    """A fresh state at step 0 with the divergence guard clear."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        key=key,
        nets=nets,
        extra=extra or {},
        nonfinite_skipped=jnp.zeros((), jnp.int32),
        nonfinite_step=jnp.full((), -1, jnp.int32),
        nonfinite_what=jnp.zeros((), jnp.int32),
    )


def run_once(fn: Callable[..., Any], *args: Any) -> Any:
    """`jax.jit(fn)(*args)` for a function that runs once, such as a network's init, where compiling is all it
    costs. Jitted because Flax's init runs op by op otherwise, each op compiled on its own (11 s for the CTGAN
    heads); on CPU compiled at LLVM -O1 instead of XLA's default -O2, several times faster (the DCGAN critic's
    init: 6.8 s -> 1.1-1.5 s; its thousands of threefry ops dominate). The values are bit-identical for the MLP,
    DCGAN, ResNet and CTGAN inits; with spectral norm, whose power iteration XLA fuses with the kernels' init,
    they can differ in the last bit."""
    lowered = jax.jit(fn).lower(*args)
    options = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
    return lowered.compile(compiler_options=options)(*args)


def count_params(params: Variables) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

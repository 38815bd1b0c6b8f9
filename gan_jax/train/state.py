"""GANState: the whole training state as one pytree (what jit transforms, orbax saves and shardings place)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from gan_jax.build import GAN

Array = jax.Array
Variables = dict[str, Any]


class GANState(flax.struct.PyTreeNode):
    step: Array  # int32 scalar: generator updates done
    key: Array  # root PRNG key (raw uint32[2]); step keys are fold_in(key, step), so it never changes
    g_params: Variables
    g_stats: Variables  # generator batch-norm statistics ({} when it has none)
    d_params: Variables
    d_stats: Variables
    g_opt: Any
    d_opt: Any
    nonfinite_skipped: Array  # int32: steps skipped for a non-finite value (train.on_nonfinite=skip)
    nonfinite_step: Array  # int32: the step that went non-finite under train.on_nonfinite=stop; -1 = none
    nonfinite_what: Array  # int32 bit mask over step.NONFINITE_QUANTITIES: what was non-finite at that step
    g_ema: Variables | None = None  # moving average of g_params (None when train.ema_decay = 0)

    @property
    def sampling_params(self) -> Variables:
        """The generator weights to sample and evaluate with: the EMA when there is one."""
        return self.g_params if self.g_ema is None else self.g_ema


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


def init_state(gan: GAN, seed: int) -> GANState:
    """Initialises both networks and optimizers from `seed` alone: same seed, same state."""
    root = jax.random.PRNGKey(seed)
    k_g, k_d, k_drop, k_run = jax.random.split(root, 4)
    n = 2 * gan.pack  # whole packs for a critic that packs its inputs (parameter shapes do not depend on n)
    z = jnp.zeros((n, gan.z_dim), jnp.float32)
    x = jnp.zeros((n, *gan.example_shape), jnp.float32)
    y = gan.dummy_condition(n)
    g_vars = run_once(
        lambda k, kd: gan.generator.init({"params": k, "dropout": kd, "sample": kd}, z, y, train=False), k_g, k_drop
    )
    d_vars = run_once(lambda k: gan.critic.init({"params": k}, x, y, train=False), k_d)
    g_params, d_params = g_vars["params"], d_vars["params"]
    return GANState(
        step=jnp.zeros((), jnp.int32),
        key=k_run,
        g_params=g_params,
        g_stats=dict(g_vars.get("batch_stats", {})),
        d_params=d_params,
        d_stats=dict(d_vars.get("batch_stats", {})),
        g_opt=gan.g_tx.init(g_params),
        d_opt=gan.d_tx.init(d_params),
        nonfinite_skipped=jnp.zeros((), jnp.int32),
        nonfinite_step=jnp.full((), -1, jnp.int32),
        nonfinite_what=jnp.zeros((), jnp.int32),
        g_ema=jax.tree_util.tree_map(jnp.copy, g_params) if gan.ema_decay > 0 else None,  # own buffers: donated
    )


def count_params(params: Variables) -> int:
    return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))

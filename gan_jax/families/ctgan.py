"""The `ctgan` family: CTGAN on tables (Xu et al. 2019), the gan family's two phases with its condition.

What it adds to `gan`: every batch carries CTGAN's condition `y = {"cond", "mask"}` (training-by-sampling, drawn
by the table source), G sows its conditional cross-entropy (reported as `g_adversarial` and `g_cond_loss`),
sampling draws conditions from the data's category frequencies or fixes one category, and the default metrics
are the table evaluator's (quality, ML efficacy, DCR).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from gan_jax.config import Config
from gan_jax.data.table_sampler import fixed_cond, sample_original_cond
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.families.base import Metrics
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.train.state import TrainState

Array = jax.Array


@dataclass(frozen=True)
class TableGAN(gan.GAN):
    name = "ctgan"

    cond_dim: int = 0  # width of the one-hot condition (all categories of all discrete columns)
    n_discrete: int = 0  # discrete columns (the mask's width)

    @property
    def conditional(self) -> bool:
        return True

    def dummy_condition(self, n: int) -> Any:
        return {"cond": jnp.zeros((n, self.cond_dim)), "mask": jnp.zeros((n, self.n_discrete))}

    def generator_report(self, adversarial: Array, extra: Array) -> Metrics:
        """The two parts of G's loss, as CTGAN reports them."""
        return {"g_adversarial": adversarial, "g_cond_loss": extra}

    def sampler(self, batch_size: int) -> Callable[..., Array]:
        return make_table_sample_fn(self, batch_size)

    def evaluator(self, cfg: Config, source: Any) -> Any:
        from gan_jax.evaluation import TableRunEvaluator

        return TableRunEvaluator(self, source, cfg)


@functools.lru_cache(maxsize=16)
def make_table_sample_fn(family: TableGAN, batch_size: int) -> Callable[[TrainState, Array, Any, Array], Array]:
    """Jitted tabular G in evaluation mode: `fn(state, key, cond_arrays, index)` gives model-space rows whose
    condition is drawn from the data's category frequencies (CTGAN's sampling) when `index` < 0, or is the
    one category `index` (`TableTransformer.cond_index(column, value)`) for every row."""

    def run(state: TrainState, key: Array, cond_arrays: Any, index: Array) -> Array:
        k_z, k_cond, k_out = jax.random.split(key, 3)
        z = gan.sample_latent(k_z, batch_size, family.z_dim, family.latent)
        drawn = sample_original_cond(cond_arrays, k_cond, batch_size)
        cond = jnp.where(index >= 0, fixed_cond(family.cond_dim, jnp.maximum(index, 0), batch_size), drawn)
        g = state.nets["G"]
        return gan.generate(family, g.sampling_params, g.stats, z, {"cond": cond}, k_out, train=False)[0]

    return jax.jit(run, compiler_options=cpu_compiler_options())


def build(cfg: Config, source: Any) -> TableGAN:
    if source.kind != "table":
        raise ConfigError("the ctgan family trains on tables: use data=csv data.path=FILE.csv (or experiment=tabular)")
    transformer = source.info["transformer"]
    n_discrete = sum(1 for span in transformer.output_info if span.discrete)
    return TableGAN(**gan.gan_fields(cfg, source), cond_dim=transformer.cond_dim, n_discrete=n_discrete)

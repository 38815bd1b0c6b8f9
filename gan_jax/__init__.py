"""gan_jax: GAN research in JAX. Pure train steps, Hydra configs, orbax checkpoints, W&B logs.

The Python API (gan_jax/api.py): `config`, `train`, `load`, `create_state`, `train_step`; the registries for
your own models, losses, datasets and families live in `gan_jax.registry`.
"""

import gan_jax.train as _train_package  # noqa: F401  # loaded first, so `gan_jax.train` below stays the function
from gan_jax.api import Generator, config, create_state, load, train, train_step
from gan_jax.errors import CheckpointError, ConfigError, DataError, GanJaxError

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GanJaxError",
    "Generator",
    "config",
    "create_state",
    "load",
    "train",
    "train_step",
]
__version__ = "0.1.0"

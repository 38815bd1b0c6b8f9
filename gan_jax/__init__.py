"""gan_jax: GAN research in JAX. Pure train steps, Hydra configs, orbax checkpoints, W&B logs."""

from gan_jax.errors import CheckpointError, ConfigError, DataError, GanJaxError

__all__ = ["CheckpointError", "ConfigError", "DataError", "GanJaxError"]
__version__ = "0.1.0"

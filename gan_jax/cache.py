"""Where derived files live between runs: converted weights, classifier weights, reference statistics."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$GAN_JAX_CACHE, else ~/.cache/gan_jax."""
    env = os.environ.get("GAN_JAX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gan_jax"

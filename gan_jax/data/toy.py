"""2-D toy mixtures, sampled on device so a train step can draw a fresh batch without a host round trip."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import DataError

MIXTURES = ("gaussian", "disk", "ring", "grid")


def _check_name(name: str) -> None:
    if name not in MIXTURES:
        raise DataError(f"unknown toy mixture {name!r}: use one of {', '.join(MIXTURES)}.")


def mixture_means(name: str) -> np.ndarray:
    """Component means (K, 2) float32, kept on the host so metrics can score samples against the same modes.

    `gaussian` and `disk` have one component at the origin; `ring` has 8 means on the unit circle (angles
    2πk/8); `grid` has 25 means at {-4, -2, 0, 2, 4}² (spacing 2), the layouts used by VEEGAN and PacGAN.
    """
    _check_name(name)
    if name in ("gaussian", "disk"):
        return np.zeros((1, 2), np.float32)
    if name == "ring":
        angles = 2.0 * np.pi * np.arange(8) / 8
        return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    axis = np.arange(-4.0, 5.0, 2.0)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


@partial(jax.jit, static_argnames=("name", "n"))
def sample_mixture(key: jax.Array, name: str, means: jax.Array, sigma: float | jax.Array, n: int) -> jax.Array:
    """Draw n points (n, 2) float32: a uniformly chosen component mean plus noise.

    The noise is σ·N(0, I), except for `disk`, where it is uniform in the unit disk around the mean
    (r = sqrt(U) keeps the density flat in area) and σ is unused. Pure and jitted with `name` and `n`
    static, so it can run inside a jitted train step; σ may be traced so a sweep over it does not recompile.
    """
    _check_name(name)
    means = jnp.asarray(means, jnp.float32)
    if means.ndim != 2 or means.shape[1] != 2 or means.shape[0] == 0:
        raise DataError(
            f"mixture means must have shape (K, 2) with K >= 1, got {means.shape}; build them with mixture_means(name)."
        )
    key_component, key_noise = jax.random.split(key)
    component = jax.random.randint(key_component, (n,), 0, means.shape[0])
    if name == "disk":
        key_radius, key_angle = jax.random.split(key_noise)
        radius = jnp.sqrt(jax.random.uniform(key_radius, (n,), jnp.float32))
        angle = jax.random.uniform(key_angle, (n,), jnp.float32, 0.0, 2.0 * jnp.pi)
        noise = radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)
    else:
        noise = jnp.asarray(sigma, jnp.float32) * jax.random.normal(key_noise, (n, 2), jnp.float32)
    return means[component] + noise

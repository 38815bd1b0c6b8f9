"""R1 against finite differences and closed forms; the instance-noise schedule and noise statistics."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.regularizers import add_instance_noise, instance_noise_std, r1_penalty

FAST = {"xla_backend_optimization_level": 0}  # tiny programs: compile them quickly (normal draws are slow to optimise)


def test_r1_matches_central_differences_in_float64():
    rng = np.random.default_rng(0)
    x_np = rng.normal(size=(3, 2, 2, 2))
    w1_np, b1_np, w2_np = rng.normal(size=(8, 5)), rng.normal(size=5), rng.normal(size=5)
    with jax.enable_x64(True):  # restored on exit
        x, w1, b1, w2 = (jnp.asarray(a, jnp.float64) for a in (x_np, w1_np, b1_np, w2_np))

        def critic(v):  # a small nonlinear critic, examples independent: [B, 2, 2, 2] -> [B]
            hidden = jnp.tanh(v.reshape(v.shape[0], -1) @ w1 + b1)
            return jnp.sin(hidden) @ w2 + 0.1 * jnp.sum(v**3, axis=(1, 2, 3))

        @functools.partial(jax.jit, compiler_options=FAST)
        def both(x):
            batch, size, eps = x.shape[0], x[0].size, 1e-5
            steps = eps * jnp.eye(size).reshape(size, 1, *x.shape[1:])  # coordinate k of every example at once
            up = critic((x[None] + steps).reshape(size * batch, *x.shape[1:])).reshape(size, batch)
            down = critic((x[None] - steps).reshape(size * batch, *x.shape[1:])).reshape(size, batch)
            numeric = jnp.mean(jnp.sum(jnp.square((up - down) / (2 * eps)), axis=0))
            return r1_penalty(critic, x), numeric

        r1, numeric = both(x)
        assert r1.dtype == jnp.float64
    assert jnp.zeros(()).dtype == jnp.float32
    assert float(r1) > 0
    np.testing.assert_allclose(float(r1), float(numeric), rtol=1e-3)


def test_r1_of_a_constant_critic_is_zero():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 3, 1)), jnp.float32)
    assert float(r1_penalty(lambda v: 0.0 * jnp.sum(v, axis=(1, 2, 3)) + 3.0, x)) == 0.0


def test_r1_of_a_linear_critic_is_the_squared_weight_norm():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(6, 4, 4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 4, 3)), jnp.float32)
    r1 = jax.jit(lambda v: r1_penalty(lambda u: jnp.sum(u * w, axis=(1, 2, 3)), v), compiler_options=FAST)(x)
    np.testing.assert_allclose(float(r1), float(jnp.sum(w**2)), rtol=1e-5)
    # A packed critic (one logit per pack of 2 consecutive examples): the pack's squared norm, mean over packs.
    packed = r1_penalty(lambda u: jnp.sum((u * w).reshape(3, -1), axis=1), x)
    np.testing.assert_allclose(float(packed), 2 * float(jnp.sum(w**2)), rtol=1e-5)


def test_instance_noise_std_decays_linearly_to_zero():
    schedule = jax.jit(lambda step: instance_noise_std(step, 0.2, 100), compiler_options=FAST)  # a traced step
    for step, expected in [(0, 0.2), (25, 0.15), (50, 0.1), (100, 0.0), (1000, 0.0)]:
        np.testing.assert_allclose(float(schedule(jnp.int32(step))), expected, rtol=1e-6, atol=1e-8)
    for step in (0, 10, 10**6):
        assert float(instance_noise_std(jnp.int32(step), 0.2, 0)) == pytest.approx(0.2)  # no annealing
    with pytest.raises(ValueError, match="anneal_steps"):
        instance_noise_std(jnp.int32(0), 0.2, -1)


def test_add_instance_noise_statistics():
    x = jnp.full((64, 16, 16, 3), 0.5, jnp.float32)
    k0, k1 = jax.random.key(0), jax.random.key(1)

    @functools.partial(jax.jit, compiler_options=FAST)
    def draws(x):
        std = instance_noise_std(jnp.int32(50), 0.4, 100)  # 0.2
        return (
            add_instance_noise(x, k0, std),
            add_instance_noise(x, k1, std),
            add_instance_noise(x, k0, jnp.float32(0.0)),
            add_instance_noise(x.astype(jnp.bfloat16), k0, std),
        )

    y, y_other_key, y_no_noise, y_half = draws(x)
    noise = np.asarray(y - x, np.float64)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert abs(noise.mean()) < 5 * 0.2 / np.sqrt(noise.size)
    np.testing.assert_allclose(noise.std(), 0.2, rtol=0.02)
    assert not np.allclose(y, y_other_key)
    np.testing.assert_array_equal(y_no_noise, x)
    assert y_half.dtype == jnp.bfloat16

"""Losses against their closed forms, at ordinary and extreme logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import ConfigError
from gan_jax.losses import LOSSES, bce_with_logits, critic_targets, get_loss
from gan_jax.regularizers import clip_weights, gradient_penalty

REAL = jnp.array([2.0, -1.0, 0.5, 0.0])
FAKE = jnp.array([-3.0, 1.5, 0.2, -0.4])
ONES, ZEROS = jnp.ones(4), jnp.zeros(4)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_logistic_critic_matches_log_sigmoid_formula():
    expected = -np.mean(np.log(sigmoid(REAL))) - np.mean(np.log(1 - sigmoid(FAKE)))
    for name in ("minimax", "ns"):
        np.testing.assert_allclose(LOSSES[name].critic(REAL, FAKE, ONES, ZEROS), expected, rtol=1e-6)


def test_generator_losses_closed_forms():
    np.testing.assert_allclose(LOSSES["minimax"].generator(FAKE), np.mean(np.log(1 - sigmoid(FAKE))), rtol=1e-6)
    np.testing.assert_allclose(LOSSES["ns"].generator(FAKE), -np.mean(np.log(sigmoid(FAKE))), rtol=1e-6)
    np.testing.assert_allclose(LOSSES["lsgan"].generator(FAKE), 0.5 * np.mean((np.asarray(FAKE) - 1) ** 2), rtol=1e-6)
    for name in ("wgan", "wgan_gp", "hinge"):
        np.testing.assert_allclose(LOSSES[name].generator(FAKE), -np.mean(FAKE), rtol=1e-6)


def test_other_critic_losses_closed_forms():
    r, f = np.asarray(REAL), np.asarray(FAKE)
    lsgan = 0.5 * (np.mean((r - 1) ** 2) + np.mean(f**2))
    np.testing.assert_allclose(LOSSES["lsgan"].critic(REAL, FAKE, ONES, ZEROS), lsgan, rtol=1e-6)
    np.testing.assert_allclose(LOSSES["wgan"].critic(REAL, FAKE, ONES, ZEROS), f.mean() - r.mean(), rtol=1e-6)
    hinge = np.mean(np.maximum(0, 1 - r)) + np.mean(np.maximum(0, 1 + f))
    np.testing.assert_allclose(LOSSES["hinge"].critic(REAL, FAKE, ONES, ZEROS), hinge, rtol=1e-6)


def test_logistic_losses_stay_finite_at_extreme_logits():
    big = jnp.array([1e4, -1e4, 80.0, -80.0])
    for name in ("minimax", "ns"):
        loss = LOSSES[name]
        assert np.isfinite(loss.critic(big, -big, ONES, ZEROS))
        assert np.isfinite(loss.generator(big))
        grads = jax.grad(lambda x, loss=loss: loss.generator(x))(big)
        assert np.all(np.isfinite(grads))
    # log(sigmoid(-80)) = -80 (the naive formula underflows to -inf)
    np.testing.assert_allclose(bce_with_logits(jnp.array([-80.0]), jnp.array([1.0])), [80.0], rtol=1e-6)


def test_non_saturating_gradient_is_strong_where_minimax_saturates():
    very_fake = jnp.array([-10.0])
    g_ns = jax.grad(lambda x: LOSSES["ns"].generator(x))(very_fake)
    g_mm = jax.grad(lambda x: LOSSES["minimax"].generator(x))(very_fake)
    assert abs(float(g_ns[0])) > 0.99
    assert abs(float(g_mm[0])) < 1e-4


def test_one_sided_label_smoothing_targets_and_loss():
    real_t, fake_t = critic_targets(jax.random.PRNGKey(0), 4, smoothing=0.1, flip_prob=0.0)
    np.testing.assert_allclose(real_t, 0.9)
    np.testing.assert_allclose(fake_t, 0.0)
    real_term = -np.mean(0.9 * np.log(sigmoid(REAL)) + 0.1 * np.log(1 - sigmoid(REAL)))
    expected = real_term - np.mean(np.log(1 - sigmoid(FAKE)))
    np.testing.assert_allclose(LOSSES["ns"].critic(REAL, FAKE, real_t, fake_t), expected, rtol=1e-6)


def test_label_flipping_rate():
    real_t, fake_t = critic_targets(jax.random.PRNGKey(1), 20000, smoothing=0.0, flip_prob=0.2)
    assert abs(float(jnp.mean(real_t == 0.0)) - 0.2) < 0.015
    assert abs(float(jnp.mean(fake_t == 1.0)) - 0.2) < 0.015
    assert set(np.unique(np.asarray(real_t))) <= {0.0, 1.0}


def test_gradient_penalty_of_linear_critic():
    # D(x) = <w, x>: the input gradient is w everywhere, so the penalty is (|w| - 1)^2 exactly.
    w = jnp.array([3.0, 4.0])
    real = jax.random.normal(jax.random.PRNGKey(0), (16, 2))
    fake = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    gp = gradient_penalty(lambda x: x @ w, real, fake, jax.random.PRNGKey(2))
    np.testing.assert_allclose(gp, (5.0 - 1.0) ** 2, rtol=1e-5)


def test_gradient_penalty_is_zero_for_unit_gradient_critic():
    real = jax.random.normal(jax.random.PRNGKey(0), (8, 4, 4, 1))
    fake = jax.random.normal(jax.random.PRNGKey(1), (8, 4, 4, 1))
    unit = jnp.ones((4, 4, 1)) / 4.0  # norm 1
    gp = gradient_penalty(lambda x: jnp.sum(x * unit, axis=(1, 2, 3)), real, fake, jax.random.PRNGKey(2))
    assert float(gp) < 1e-8


def test_clip_weights():
    params = {"a": jnp.array([-1.0, 0.005, 2.0]), "b": {"c": jnp.array([0.3])}}
    clipped = clip_weights(params, 0.01)
    np.testing.assert_allclose(clipped["a"], [-0.01, 0.005, 0.01])
    np.testing.assert_allclose(clipped["b"]["c"], [0.01])


def test_unknown_loss_names_the_choices():
    with pytest.raises(ConfigError, match="hinge"):
        get_loss("nope")

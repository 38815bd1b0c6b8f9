"""CTGAN networks and heads: shapes, packing, Gumbel-softmax outputs, conditional loss, packed gradient penalty."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.data.table_spans import Span
from gan_jax.errors import ConfigError
from gan_jax.models.tabular import (
    CTGANCritic,
    CTGANGenerator,
    apply_output_activation,
    conditional_loss,
    packed_gradient_penalty,
)

# A continuous column (scalar + 3 modes), a discrete column of 4 categories, a continuous column with a missing
# flag (scalar + 2 modes + 2), and a discrete column of 2 categories: width 15, cond width 6.
INFO = (
    Span(1, "tanh", False, "a"),
    Span(3, "softmax", False, "a"),
    Span(4, "softmax", True, "b"),
    Span(1, "tanh", False, "c"),
    Span(2, "softmax", False, "c"),
    Span(2, "softmax", False, "c"),
    Span(2, "softmax", True, "d"),
)
WIDTH, COND = 15, 6
B = 40


def _init(module, *args, **kwargs):
    """Module.init under jit: one compilation instead of one per primitive (several seconds less on 2 cores)."""
    return jax.jit(partial(module.init, **kwargs))(*args)


def _apply(module, variables, *args, **kwargs):
    """Module.apply under jit, for the same reason; errors about shapes are still raised (while tracing)."""
    return jax.jit(partial(module.apply, **kwargs))(variables, *args)


def test_generator_shapes_residual_widths_and_batch_stats():
    gen = CTGANGenerator(data_dim=WIDTH)
    z, cond = jnp.ones((B, 128)), jnp.zeros((B, COND)).at[:, 0].set(1.0)
    variables = _init(gen, jax.random.key(0), z, cond, train=False)
    params = variables["params"]
    # each residual block concatenates its 256 outputs to its input: 134 -> 390 -> 646 inputs
    assert params["Residual_0"]["Dense_0"]["kernel"].shape == (128 + COND, 256)
    assert params["Residual_1"]["Dense_0"]["kernel"].shape == (128 + COND + 256, 256)
    assert params["Dense_0"]["kernel"].shape == (128 + COND + 512, WIDTH)
    bound = 1 / np.sqrt(128 + COND)  # PyTorch Linear init: U(+-1/sqrt(fan_in))
    assert float(jnp.abs(params["Residual_0"]["Dense_0"]["kernel"]).max()) <= bound
    raw, updates = _apply(gen, variables, z * jnp.arange(B)[:, None], cond, train=True, mutable=["batch_stats"])
    assert raw.shape == (B, WIDTH)
    before = variables["batch_stats"]["Residual_0"]["BatchNorm_0"]["mean"]
    assert not np.allclose(updates["batch_stats"]["Residual_0"]["BatchNorm_0"]["mean"], before)
    plain = _init(gen, jax.random.key(0), z, None, train=False)  # unconditional: a table without discrete columns
    assert _apply(gen, plain, z, None, train=False).shape == (B, WIDTH)


def test_critic_packs_rows_and_refuses_partial_packs():
    critic = CTGANCritic()
    x, cond = jnp.ones((B, WIDTH)), jnp.ones((B, COND))
    variables = _init(critic, jax.random.key(0), x, cond, train=False)
    assert variables["params"]["Dense_0"]["kernel"].shape == (10 * (WIDTH + COND), 256)
    scores = _apply(critic, variables, x, cond, train=True, rngs={"dropout": jax.random.key(1)})
    assert scores.shape == (B // 10,)
    eval_a = _apply(critic, variables, x, cond, train=False)
    eval_b = _apply(critic, variables, x, cond, train=False)
    np.testing.assert_array_equal(eval_a, eval_b)  # no dropout at eval
    with pytest.raises(
        ConfigError, match=r"batch size 45 is not divisible by pac=10.*multiple of 10 \(e.g. 40 or 50\)"
    ):
        _apply(critic, variables, jnp.ones((45, WIDTH)), jnp.ones((45, COND)), train=False)
    small = CTGANCritic(dims=(16,), pac=4)
    v = _init(small, jax.random.key(0), x, None, train=False)
    assert _apply(small, v, x, None, train=False).shape == (B // 4,)


def test_output_activation_gives_tanh_scalars_and_near_one_hots():
    raw = jax.random.normal(jax.random.key(0), (500, WIDTH)) * 3
    out = np.asarray(jax.jit(apply_output_activation, static_argnums=1)(raw, INFO, jax.random.key(1)))
    assert out.shape == raw.shape
    start = 0
    for span in INFO:
        block = out[:, start : start + span.dim]
        if span.activation == "tanh":
            np.testing.assert_allclose(block, np.tanh(np.asarray(raw[:, start : start + span.dim])), rtol=1e-5)
        else:
            np.testing.assert_allclose(block.sum(1), 1.0, rtol=1e-5)
            assert block.min() >= 0 and np.median(block.max(1)) > 0.9  # tau = 0.2: nearly one-hot
        start += span.dim
    # Gumbel noise makes the argmax a sample of softmax(logits): check one category's frequency.
    logits = jnp.tile(jnp.array([[np.log(0.7), np.log(0.2), np.log(0.1)]]), (20_000, 1))
    one = (Span(3, "softmax", True, "x"),)
    picks = np.asarray(apply_output_activation(logits, one, jax.random.key(2))).argmax(1)
    np.testing.assert_allclose(np.bincount(picks, minlength=3) / 20_000, [0.7, 0.2, 0.1], atol=0.015)
    with pytest.raises(ConfigError, match="width 14 but output_info spans 15"):
        apply_output_activation(raw[:, :14], INFO, jax.random.key(0))


def _cond(b_cat: int, d_cat: int, column: int, n: int = 8) -> tuple[jax.Array, jax.Array]:
    cond = np.zeros((n, COND), np.float32)
    cond[:, b_cat] = 1.0 if column == 0 else 0.0
    cond[:, 4 + d_cat] = 1.0 if column == 1 else 0.0
    mask = np.zeros((n, 2), np.float32)
    mask[:, column] = 1.0
    return jnp.asarray(cond), jnp.asarray(mask)


def test_conditional_loss_is_zero_on_the_asked_category_and_positive_otherwise():
    raw = np.zeros((8, WIDTH), np.float32)
    raw[:, 4 + 2] = 50.0  # column b (offset 4 in the row) says category 2
    raw[:, 13 + 1] = 50.0  # column d (offset 13) says category 1
    raw = jnp.asarray(raw)
    cond, mask = _cond(2, 0, column=0)  # ask b = 2: the generator complied
    assert float(conditional_loss(raw, cond, mask, INFO)) == pytest.approx(0.0, abs=1e-6)
    cond, mask = _cond(1, 0, column=0)  # ask b = 1: it did not
    assert float(conditional_loss(raw, cond, mask, INFO)) == pytest.approx(50.0, rel=1e-4)
    cond, mask = _cond(1, 1, column=1)  # ask d = 1; b is not masked in, so its mismatch does not count
    assert float(conditional_loss(raw, cond, mask, INFO)) == pytest.approx(0.0, abs=1e-6)
    # Uniform logits: the cross-entropy is log(number of categories), averaged over the batch.
    uniform = jnp.zeros((8, WIDTH))
    assert float(conditional_loss(uniform, *_cond(0, 0, column=0), INFO)) == pytest.approx(np.log(4), rel=1e-5)
    no_discrete = tuple(s for s in INFO if not s.discrete)
    assert float(conditional_loss(jnp.zeros((8, 9)), jnp.zeros((8, 0)), jnp.zeros((8, 0)), no_discrete)) == 0.0


def test_conditional_loss_gradient_pushes_towards_the_asked_category():
    cond, mask = _cond(3, 0, column=0)
    grad = jax.grad(lambda r: conditional_loss(r, cond, mask, INFO))(jnp.zeros((8, WIDTH)))
    assert np.all(np.asarray(grad[:, 4 + 3]) < 0) and np.all(np.asarray(grad[:, 4:7]) > 0)
    assert np.all(np.asarray(grad[:, 13:15]) == 0) and np.all(np.asarray(grad[:, :4]) == 0)


def test_packed_gradient_penalty_uses_the_norm_over_each_pack():
    w = jnp.arange(1.0, 6.0) / 10.0  # a linear critic: score of a pack = sum of its rows' x . w
    pac = 5

    def critic_fn(x):
        return (x @ w).reshape(-1, pac).sum(1)

    real = jax.random.normal(jax.random.key(0), (20, 5))
    fake = jax.random.normal(jax.random.key(1), (20, 5))
    gp = packed_gradient_penalty(critic_fn, real, fake, jax.random.key(2), pac)
    expected = (np.sqrt(pac) * np.linalg.norm(np.asarray(w)) - 1.0) ** 2  # per-row gradient w, pac rows per pack
    assert float(gp) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match="not divisible by pac=5"):
        packed_gradient_penalty(critic_fn, real[:18], fake[:18], jax.random.key(2), pac)


def test_one_jitted_ctgan_style_step_runs_end_to_end():
    """Generator -> activation -> packed critic with cond -> WGAN-GP + conditional loss, all under jit."""
    gen, critic = CTGANGenerator(data_dim=WIDTH, dims=(32, 32)), CTGANCritic(dims=(32, 32))
    z = jax.random.normal(jax.random.key(0), (B, 16))
    cond, mask = _cond(1, 1, column=0, n=B)
    g_vars = _init(gen, jax.random.key(1), z, cond, train=False)
    d_vars = _init(critic, jax.random.key(2), jnp.zeros((B, WIDTH)), cond, train=False)

    @jax.jit
    def losses(g_vars, d_vars, key):
        k_act, k_drop, k_gp = jax.random.split(key, 3)
        raw, _ = gen.apply(g_vars, z, cond, train=True, mutable=["batch_stats"])
        fake = apply_output_activation(raw, INFO, k_act)

        def critic_fn(xc):
            return critic.apply(d_vars, xc, None, train=True, rngs={"dropout": k_drop})

        fake_c = jnp.concatenate([fake, cond], axis=1)
        real_c = jnp.concatenate([jnp.zeros_like(fake), cond], axis=1)
        gp = packed_gradient_penalty(critic_fn, real_c, fake_c, k_gp, 10)
        return -critic_fn(fake_c).mean() + conditional_loss(raw, cond, mask, INFO), gp

    g_loss, gp = losses(g_vars, d_vars, jax.random.key(3))
    assert np.isfinite(float(g_loss)) and float(gp) >= 0


def test_vectorised_heads_match_per_span_references():
    """The segmented softmax / cross-entropy equal a plain loop over spans, also for logits far apart in size."""
    key = jax.random.key(5)
    raw = jax.random.normal(jax.random.key(6), (64, WIDTH)) * jnp.linspace(1.0, 300.0, WIDTH)  # up to ~1e3
    out = np.asarray(apply_output_activation(raw, INFO, key))
    noisy = (raw + jax.random.gumbel(key, raw.shape)) / 0.2  # the same single draw the head makes
    start = 0
    for span in INFO:
        block = slice(start, start + span.dim)
        ref = jnp.tanh(raw[:, block]) if span.activation == "tanh" else jax.nn.softmax(noisy[:, block], axis=-1)
        np.testing.assert_allclose(out[:, block], np.asarray(ref), rtol=1e-5, atol=1e-6)
        start += span.dim
    assert np.all(np.isfinite(out))
    rng = np.random.default_rng(0)
    cond = np.zeros((64, COND), np.float32)
    cond[np.arange(64), rng.integers(0, 4, 64)] = 1.0  # a category of b ...
    cond[np.arange(64), 4 + rng.integers(0, 2, 64)] = 1.0  # ... and of d; the mask picks which one counts
    mask = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 64)]
    logits = np.asarray(raw, np.float64)
    expected = 0.0
    for offset, c_off, dim, column in ((4, 0, 4, 0), (13, 4, 2, 1)):
        block = logits[:, offset : offset + dim]
        log_p = block - block.max(1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
        expected += (-(log_p * cond[:, c_off : c_off + dim]).sum(1) * mask[:, column]).sum() / 64
    got = float(conditional_loss(raw, jnp.asarray(cond), jnp.asarray(mask), INFO))
    assert got == pytest.approx(expected, rel=1e-5)

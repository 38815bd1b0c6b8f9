"""The jitted train step: fused steps equal single steps, seeds fix runs, n_critic counts critic updates."""

import jax
import jax.numpy as jnp
import numpy as np
from conftest import make_config

from gan_jax.data.source import build_source
from gan_jax.families.catalog import build_family
from gan_jax.families.gan import make_sample_fn
from gan_jax.train.state import run_once
from gan_jax.train.step import make_train_fn, sample_generator

TINY = ("model.g_widths=[32,32]", "model.d_widths=[32,32]", "train.batch_size=64")


def setup(*overrides):
    """TINY's MLP widths, unless an experiment picks another model (whose schema has no such keys)."""
    base = () if any(o.startswith("experiment=") for o in overrides) else TINY
    cfg = make_config(*base, *overrides)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    return cfg, source, gan, gan.init(cfg.seed)


def leaves(state):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]


def run(gan, source, state, k, calls):
    fn = make_train_fn(gan, k)
    for _ in range(calls):
        state, metrics = fn(state, source.arrays)
    return state, metrics


def test_quick_compiled_init_gives_the_values_of_a_plain_jit():
    """`run_once` compiles inits with other options than `jax.jit`: the seed's initial weights stay the same, bit
    for bit; with spectral norm (whose power iteration XLA fuses with the kernels' init) within the last bit."""
    key = jax.random.PRNGKey(7)
    for spectral_norm, rtol in (("false", 0.0), ("true", 1e-6)):
        _, _, gan, _ = setup(f"model.spectral_norm={spectral_norm}")
        x, y = jnp.zeros((2, *gan.example_shape)), gan.dummy_condition(2)
        init = lambda k, gan=gan, x=x, y=y: gan.critic.init({"params": k}, x, y, train=False)  # noqa: E731
        for a, b in zip(leaves(jax.jit(init)(key)), leaves(run_once(init, key)), strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


def test_fused_steps_equal_single_steps():
    _, source, gan, state = setup()
    fused, _ = run(gan, source, state, 6, 1)
    _, _, _, state = setup()
    single, _ = run(gan, source, state, 1, 6)
    assert int(fused.step) == int(single.step) == 6
    for a, b in zip(leaves(fused), leaves(single), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_numbers_other_seed_other_numbers():
    _, source, gan, s0 = setup("seed=3")
    a, ma = run(gan, source, s0, 5, 1)
    _, source, gan, s1 = setup("seed=3")
    b, mb = run(gan, source, s1, 5, 1)
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert float(ma["d_loss"]) == float(mb["d_loss"])
    _, source, gan, s2 = setup("seed=4")
    c, _ = run(gan, source, s2, 5, 1)
    assert not np.array_equal(
        np.asarray(c.nets["G"].params["Dense_0"]["kernel"]), np.asarray(a.nets["G"].params["Dense_0"]["kernel"])
    )


def test_n_critic_updates_per_generator_update():
    _, source, gan, state = setup("train.n_critic=3")
    state, _ = run(gan, source, state, 4, 1)
    assert int(state.nets["D"].opt[0].count) == 12
    assert int(state.nets["G"].opt[0].count) == 4


def test_metrics_are_finite_and_complete():
    _, source, gan, state = setup("loss=wgan_gp")
    _, metrics = run(gan, source, state, 3, 1)
    expected = {"d_loss", "g_loss", "d_real", "d_fake", "acc_real", "acc_fake", "d_grad_norm", "g_grad_norm", "gp"}
    assert expected <= set(metrics)
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_every_loss_trains_a_few_steps():
    for loss in ("minimax", "ns", "lsgan", "wgan", "wgan_gp", "hinge"):
        _, source, gan, state = setup(f"loss={loss}")
        before = np.asarray(state.nets["D"].params["Dense_0"]["kernel"]).copy()
        state, metrics = run(gan, source, state, 2, 1)
        assert np.isfinite(float(metrics["d_loss"])) and np.isfinite(float(metrics["g_loss"])), loss
        assert not np.array_equal(before, np.asarray(state.nets["D"].params["Dense_0"]["kernel"])), loss


def test_weight_clipping_bounds_critic_params():
    _, source, gan, state = setup("loss=wgan", "optim=rmsprop", "loss.clip_value=0.02")
    state, _ = run(gan, source, state, 3, 1)
    assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree_util.tree_leaves(state.nets["D"].params)) <= 0.02 + 1e-7


def test_uniform_latent_and_sampling_are_deterministic():
    _, _, gan, state = setup("model.latent=uniform")
    fn = make_sample_fn(gan, 50)
    a = sample_generator(fn, state, jax.random.PRNGKey(0), 120)
    b = sample_generator(fn, state, jax.random.PRNGKey(0), 120)
    assert a.shape == (120, 2)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_generator_ema_follows_its_formula():
    _, source, gan, state = setup("train.ema_decay=0.9")
    init_params = jax.tree_util.tree_map(np.asarray, state.nets["G"].params)
    state, _ = run(gan, source, state, 1, 1)
    for ema, new, old in zip(
        leaves(state.nets["G"].ema), leaves(state.nets["G"].params), jax.tree_util.tree_leaves(init_params), strict=True
    ):
        np.testing.assert_allclose(ema, 0.9 * old + 0.1 * new, rtol=1e-5, atol=1e-7)


def test_generator_ema_tracks_weights_before_its_start():
    _, source, gan, state = setup("train.ema_decay=0.99", "train.ema_start=100")
    state, _ = run(gan, source, state, 3, 1)
    for ema, params in zip(leaves(state.nets["G"].ema), leaves(state.nets["G"].params), strict=True):
        np.testing.assert_array_equal(ema, params)


def test_batchnorm_statistics_update_in_training_and_serve_sampling():
    _, source, gan, state = setup(
        "experiment=dcgan_digits", "data.resolution=28", "train.batch_size=8", "model.width_scale=0.25"
    )
    g_stats0 = leaves(state.nets["G"].stats)
    d_stats0 = leaves(state.nets["D"].stats)
    state, metrics = run(gan, source, state, 1, 1)
    assert np.isfinite(float(metrics["g_loss"]))
    assert any(not np.array_equal(a, b) for a, b in zip(g_stats0, leaves(state.nets["G"].stats), strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(d_stats0, leaves(state.nets["D"].stats), strict=True))
    # Sampling uses the running statistics: an example does not depend on the rest of its batch.
    key = jax.random.PRNGKey(0)
    small = make_sample_fn(gan, 4)(state, key)
    z = jax.random.normal(key, (4, gan.z_dim))
    variables = {"params": state.nets["G"].sampling_params, "batch_stats": state.nets["G"].stats}
    serve = jax.jit(lambda z: gan.generator.apply(variables, z, train=False))
    again = serve(z)
    assert small.shape == (4, 28, 28, 1)
    np.testing.assert_allclose(np.asarray(small), np.asarray(again), rtol=1e-5, atol=1e-6)
    half = serve(z[:2])
    np.testing.assert_allclose(np.asarray(half), np.asarray(again[:2]), rtol=1e-5, atol=1e-6)

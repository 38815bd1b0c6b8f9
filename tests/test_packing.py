"""PacGAN packing: pack layout, logit shapes, pack = 1 is the plain GAN bit for bit, bad batches fail early,
and packed runs train (non-saturating with label flips, WGAN-GP with a per-pack gradient penalty)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_config

from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.models.dcgan import DCGANCritic
from gan_jax.models.mlp import MLPCritic
from gan_jax.models.packing import PackedCritic, pack_examples
from gan_jax.regularizers import gradient_penalty
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn

TINY = ("model.g_widths=[32,32]", "model.d_widths=[32,32]", "train.batch_size=64")


def setup(*overrides):
    """TINY's MLP widths unless another model is chosen (its schema has no such keys)."""
    mlp_keys = TINY[:2] if not any(o.startswith("model=") for o in overrides) else ()
    cfg = make_config(*mlp_keys, *TINY[2:], *overrides)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    return source, gan, gan.init(cfg.seed)


def test_pack_examples_puts_consecutive_examples_side_by_side():
    x = jnp.arange(16.0).reshape(8, 2)  # example i is (2i, 2i + 1)
    packed = pack_examples(x, 4)
    assert packed.shape == (2, 8)
    np.testing.assert_array_equal(packed[1], np.arange(8.0, 16.0))  # examples 4..7 in order
    assert pack_examples(x, 1) is x

    images = jax.random.normal(jax.random.PRNGKey(0), (6, 5, 5, 3))
    packed = pack_examples(images, 2)
    assert packed.shape == (3, 5, 5, 6)  # PacGAN for images: concatenated along channels
    np.testing.assert_array_equal(packed[1, ..., :3], images[2])
    np.testing.assert_array_equal(packed[1, ..., 3:], images[3])

    with pytest.raises(ValueError, match="packs of 4"):
        pack_examples(jnp.zeros((6, 2)), 4)


def test_packed_critic_gives_one_logit_per_pack():
    x = jax.random.normal(jax.random.PRNGKey(1), (12, 2))
    inner = MLPCritic(widths=(16, 16))
    critic = PackedCritic(critic=inner, pack=3)
    variables = critic.init(jax.random.PRNGKey(2), x[:2], None, train=False)  # init pads a too-small dummy batch
    assert variables["params"]["critic"]["Dense_0"]["kernel"].shape == (6, 16)  # first layer sees m * d inputs
    logits = critic.apply(variables, x, None, train=True)
    assert logits.shape == (4,)
    direct = inner.apply({"params": variables["params"]["critic"]}, pack_examples(x, 3), None, train=True)
    np.testing.assert_array_equal(logits, direct)


def test_image_critics_see_packs_concatenated_along_channels():
    _, gan, state = setup("data=digits", "data.resolution=28", "model=dcgan", "model.pack=2", "train.batch_size=4")
    assert isinstance(gan.critic, PackedCritic) and isinstance(gan.critic.critic, DCGANCritic)
    assert state.nets["D"].params["critic"]["block0_conv0"]["kernel"].shape[2] == 2  # 1 channel x 2 images per pack
    images = jax.random.normal(jax.random.PRNGKey(3), (4, 28, 28, 1))
    variables = {"params": state.nets["D"].params, "batch_stats": state.nets["D"].stats}
    logits, _ = gan.critic.apply(variables, images, None, train=True, mutable=["batch_stats"])
    assert logits.shape == (2,)


def test_pack_one_is_the_plain_gan_bit_for_bit():
    source, plain, s0 = setup("loss=wgan_gp")
    _, packed1, s1 = setup("loss=wgan_gp", "model.pack=1")
    assert isinstance(packed1.critic, MLPCritic)
    a, ma = make_train_fn(plain, 3)(s0, source.arrays)
    b, mb = make_train_fn(packed1, 3)(s1, source.arrays)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert {k: float(v) for k, v in ma.items()} == {k: float(v) for k, v in mb.items()}


@pytest.mark.parametrize(
    "overrides",
    [("model.pack=3",), ("model.pack=0",), ("train.batch_size=100", "model.pack=8")],
)
def test_bad_pack_is_a_config_error_naming_both_keys(overrides):
    with pytest.raises(ConfigError, match=r"model\.pack=.*train\.batch_size="):
        make_config(*TINY, *overrides)


def test_gradient_penalty_norm_is_per_pack():
    w = jnp.array([0.3, -0.4, 1.2, 0.5])  # a linear critic on packs of two 2-D examples

    def critic(x):
        return pack_examples(x, 2) @ w

    real = jax.random.normal(jax.random.PRNGKey(5), (8, 2))
    gp = gradient_penalty(critic, real, jnp.zeros_like(real), jax.random.PRNGKey(6))
    assert float(gp) == pytest.approx((math.sqrt(float(w @ w)) - 1.0) ** 2, rel=1e-5)  # ||grad|| of a pack is ||w||


def test_packed_steps_train_with_label_flips_and_gradient_penalty():
    for overrides in (
        ("model.pack=4", "loss.label_smoothing=0.1", "loss.label_flip_prob=0.1"),
        ("model.pack=2", "loss=wgan_gp"),
    ):
        source, gan, state = setup(*overrides)
        before = np.asarray(state.nets["D"].params["critic"]["Dense_0"]["kernel"]).copy()
        state, metrics = make_train_fn(gan, 3)(state, source.arrays)
        assert all(np.isfinite(float(v)) for v in metrics.values()), overrides
        assert not np.array_equal(before, np.asarray(state.nets["D"].params["critic"]["Dense_0"]["kernel"]))


def test_packed_toy_run_trains(tmp_path):
    cfg = make_config(
        "model.pack=4",
        "model.z_dim=2",
        "train.steps=1500",
        "train.batch_size=256",
        "train.log_every=500",
        "train.ckpt_every=1500",
        "eval.every=0",
        "logger=none",
        "logger.progress=false",
    )
    summary = train(cfg, tmp_path / "run")
    assert summary["step"] == 1500
    assert np.isfinite(summary["d_loss"]) and np.isfinite(summary["g_loss"])
    assert summary["modes_covered"] >= 5 and summary["hq_fraction"] > 0  # finding the ring's modes (7 of 8 here)

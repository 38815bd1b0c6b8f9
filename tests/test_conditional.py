"""Class-conditional GANs and the training options of the model zoo, through the real train step (tiny MLPs on
the embedded 8x8 digits), plus the sample CLI's labels and the one-class-per-row grid."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_config

from gan_jax.data.images import ImageData
from gan_jax.data.source import build_source, image_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.families.gan import class_loss, criticize_with_classes, make_sample_fn
from gan_jax.metrics.evaluator import class_accuracy
from gan_jax.train.step import make_train_fn, sample_generator

TINY = (
    "data=digits",
    "data.resolution=8",
    "model=mlp",
    "model.g_widths=[32]",
    "model.d_widths=[32]",
    "model.z_dim=8",
    "model.g_output=tanh",
    "train.batch_size=20",
)


def setup(*overrides: str):
    cfg = make_config(*TINY, *overrides)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    return cfg, source, gan, gan.init(cfg.seed)


@pytest.mark.parametrize("conditioning", ["cgan", "acgan", "projection"])
def test_conditional_gans_train_and_use_their_labels(conditioning):
    _, source, gan, state = setup(f"model.conditioning={conditioning}")
    assert gan.num_classes == 10 and gan.conditional
    x = source.sample(source.arrays, jax.random.PRNGKey(0), 20)["x"]
    y0, y1 = jnp.zeros(20, jnp.int32), jnp.ones(20, jnp.int32)
    # The critic's verdict on the same images depends on the label they come with (for ACGAN: its class logits).
    a, _, cls_a = criticize_with_classes(gan, state.nets["D"].params, state.nets["D"].stats, x, y0)
    b, _, _ = criticize_with_classes(gan, state.nets["D"].params, state.nets["D"].stats, x, y1)
    if conditioning == "acgan":
        assert cls_a.shape == (20, 10) and np.allclose(a, b)
    else:
        assert cls_a is None and not np.allclose(a, b)
    # So do the generator's samples for the same latents.
    fn = make_sample_fn(gan, 20)
    s0, s1 = fn(state, jax.random.PRNGKey(1), y0), fn(state, jax.random.PRNGKey(1), y1)
    assert not np.allclose(s0, s1)
    state, metrics = make_train_fn(gan, 2)(state, source.arrays)
    assert int(state.step) == 2 and all(np.isfinite(float(v)) for v in metrics.values())
    if conditioning == "acgan":
        assert {"d_cls_real", "d_cls_fake", "cls_acc_real", "g_cls"} <= set(metrics)


def test_acgan_class_loss_weights_enter_the_critic_loss():
    _, source, gan, state = setup("model.conditioning=acgan", "loss.aux_real_weight=0", "loss.aux_fake_weight=0")
    _, m0 = make_train_fn(gan, 1)(state, source.arrays)
    _, source, gan, state = setup("model.conditioning=acgan")
    _, m1 = make_train_fn(gan, 1)(state, source.arrays)
    # Same seed, same batch: the only difference in D's loss is the weighted class cross-entropy.
    expected = float(m0["d_loss"]) + float(m1["d_cls_real"]) + float(m1["d_cls_fake"])
    np.testing.assert_allclose(float(m1["d_loss"]), expected, rtol=1e-5)


def test_class_loss_is_cross_entropy():
    logits = jnp.array([[2.0, 0.0], [0.0, 3.0]])
    ce, acc = class_loss(logits, jnp.array([0, 0]))
    expected = np.mean([np.log1p(np.exp(-2.0)), 3.0 + np.log1p(np.exp(-3.0))])
    np.testing.assert_allclose(float(ce), expected, rtol=1e-6)
    assert float(acc) == 0.5


def test_spectral_norm_state_is_in_the_train_state_and_updates():
    _, source, gan, state = setup("model.spectral_norm=true")
    assert state.nets["D"].stats, "spectral norm's power-iteration vectors live in the critic's batch_stats"
    before = jax.tree_util.tree_map(np.asarray, state.nets["D"].stats)
    state, _ = make_train_fn(gan, 2)(state, source.arrays)
    changed = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b), before, state.nets["D"].stats)
    assert any(jax.tree_util.tree_leaves(changed))


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss.r1_gamma=10", "loss.r1_every=2"),
        ("data.resolution=16", "train.augment=[color,translation,cutout]"),
        ("train.instance_noise=0.5", "train.instance_noise_steps=4"),
        ("model.g_dropout=0.2",),
    ],
)
def test_training_options_run_and_stay_finite(overrides):
    _, source, gan, state = setup(*overrides)
    state, metrics = make_train_fn(gan, 2)(state, source.arrays)
    assert int(state.step) == 2 and all(np.isfinite(float(v)) for v in metrics.values())


def test_r1_changes_the_critic_update():
    _, source, gan, state = setup()
    plain, _ = make_train_fn(gan, 2)(state, source.arrays)
    _, source, gan, state = setup("loss.r1_gamma=10", "loss.r1_every=2")
    with_r1, metrics = make_train_fn(gan, 2)(state, source.arrays)
    # Lazy R1 every 2 steps: step 0 applies it, step 1 does not; the logged mean over both is half of step 0's.
    assert float(metrics["r1"]) > 0
    a, b = jax.tree_util.tree_leaves(plain.nets["D"].params), jax.tree_util.tree_leaves(with_r1.nets["D"].params)
    assert any(not np.allclose(x, y) for x, y in zip(a, b, strict=True))


def test_sampling_with_labels_follows_them_in_order():
    _, _, gan, state = setup("model.conditioning=cgan")
    fn = make_sample_fn(gan, 8)
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    out = np.asarray(sample_generator(fn, state, jax.random.PRNGKey(0), 11, labels, 8))
    assert out.shape == (11, 8, 8, 1)
    # Batch 2 holds labels[8:11] padded: its first three samples are the same whatever the padding.
    direct = np.asarray(fn(state, jax.random.fold_in(jax.random.PRNGKey(0), 1), jnp.array([5, 3, 5, 0, 0, 0, 0, 0])))
    np.testing.assert_allclose(out[8:], direct[:3], rtol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        sample_generator(fn, state, jax.random.PRNGKey(0), 11, labels)


def test_class_accuracy_per_class_and_worst_class():
    labels = np.array([0, 0, 1, 1, 2, 2])
    values = class_accuracy(np.array([0, 0, 1, 0, 2, 2]), labels)
    assert values["class_accuracy"] == pytest.approx(5 / 6)
    assert values["class_accuracy_min"] == 0.5 and values["class_accuracy_1"] == 0.5


def test_conditioning_needs_labels_and_images(tmp_path):
    unlabelled = tmp_path / "x.npz"
    np.savez(unlabelled, x=np.zeros((8, 8, 8, 1), np.uint8))
    cfg = make_config("data=npz", f"data.path={unlabelled}", "model.conditioning=cgan", "model.g_output=tanh")
    with pytest.raises(ConfigError, match="needs class labels"):
        build_family(cfg, build_source(cfg.data))
    with pytest.raises(ConfigError, match="labelled images"):
        make_config("data=ring", "model.conditioning=acgan")
    with pytest.raises(ConfigError, match=r"train\.augment"):
        make_config(*TINY, "train.augment=[zoom]")
    with pytest.raises(ConfigError, match="PacGAN"):
        make_config(*TINY, "model.conditioning=cgan", "model.pack=2")


def test_labels_flow_from_the_dataset():
    x = np.zeros((6, 8, 8, 1), np.uint8)
    source = image_source(ImageData(x=x, y=np.array([0, 1, 2, 3, 4, 4], np.int32), name="t"))
    batch = source.sample(source.arrays, jax.random.PRNGKey(0), 32)
    assert source.num_classes == 5 and batch["y"].shape == (32,) and int(batch["y"].max()) <= 4

"""The Python API (gan_jax/api.py): the CLI's configs without Hydra's command line, training, loading a run's
generator, and the Flax-example building blocks for a loop of one's own."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from conftest import make_config

import gan_jax
from gan_jax.errors import ConfigError
from gan_jax.train.checkpoint import Checkpointer

QUICK = ("model.g_widths=[16]", "model.d_widths=[16]", "train.batch_size=32", "logger=none", "logger.progress=false")


def test_config_is_exactly_the_cli_default():
    assert gan_jax.config() == make_config()
    assert gan_jax.config("toy_ring", "train.steps=2000") == make_config("experiment=toy_ring", "train.steps=2000")
    cfg = gan_jax.config("dcgan_digits")
    assert cfg.model.name == "dcgan" and cfg.train.steps == 800
    with pytest.raises(ConfigError, match="experiment=nope is not a config option"):
        gan_jax.config("nope")
    with pytest.raises(ConfigError, match=r"unknown config key 'train\.stepz' \(did you mean train\.steps\?\)"):
        gan_jax.config(None, "train.stepz=3")


def test_a_hand_written_loop_equals_train_and_load_samples(tmp_path):
    cfg = gan_jax.config(None, *QUICK, "train.steps=100", "train.steps_per_call=50", "train.log_every=50")
    summary = gan_jax.train(cfg, tmp_path / "run")
    family, state, source = gan_jax.create_state(cfg)
    step = gan_jax.train_step(family, steps=50)
    for _ in range(2):
        state, metrics = step(state, source.arrays)
    ckpt = Checkpointer(tmp_path / "run" / "checkpoints")
    saved = ckpt.restore(family.init(cfg.seed)).state
    ckpt.close()
    for a, b in zip(jax.tree_util.tree_leaves(saved), jax.tree_util.tree_leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(metrics["g_loss"]) == summary["g_loss"]

    gen = gan_jax.load(tmp_path / "run")
    assert gen.step == 100 and gen.cfg == dataclasses.replace(cfg, plugins=[])
    x = gen.sample(300, seed=1)
    assert x.shape == (300, 2) and np.array_equal(x, gen.sample(300, seed=1))
    assert not np.array_equal(x, gen.sample(300, seed=2))

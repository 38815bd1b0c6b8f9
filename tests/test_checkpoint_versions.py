"""Checkpoints record the layout version of the state they hold: a save from before the family seam (version 1,
GANState's g_*/d_* fields) is converted on restore; a version this code cannot read stops before any step with
one line naming both versions."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from conftest import make_config

from gan_jax.data.source import build_source
from gan_jax.errors import CheckpointError
from gan_jax.families.catalog import build_family
from gan_jax.train.checkpoint import Checkpointer, v1_layout
from gan_jax.train.state import STATE_FORMAT_VERSION
from gan_jax.train.step import make_train_fn

TINY = ("model.g_widths=[16]", "model.d_widths=[16]", "train.batch_size=32", "train.ema_decay=0.9")


@pytest.fixture(scope="module")
def trained():
    cfg = make_config(*TINY)
    source = build_source(cfg.data)
    family = build_family(cfg, source)
    state, _ = make_train_fn(family, 5)(family.init(0), source.arrays)
    return family, jax.device_get(state)


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_saves_record_the_version_and_round_trip(tmp_path, trained):
    family, state = trained
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(5, state, {"step": 5})
    ckpt.wait()
    assert ckpt.read_meta(5)["format_version"] == STATE_FORMAT_VERSION == 2
    restored = ckpt.restore(family.init(1)).state
    ckpt.close()
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(restored), _leaves(state), strict=True))


def test_a_version_1_save_is_converted(tmp_path, trained):
    """The pre-seam layout, as that code saved it: one flat tree with g_params, g_stats, g_opt, g_ema, d_*."""
    family, state = trained
    ckpt = Checkpointer(tmp_path / "ckpt")
    old = v1_layout(state)
    assert {"g_params", "d_opt", "g_ema", "nonfinite_step"} <= set(old)
    ckpt.save(5, old, {"step": 5, "format_version": 1})
    ckpt.wait()
    restored = ckpt.restore(family.init(1)).state
    ckpt.close()
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(restored), _leaves(state), strict=True))
    assert int(restored.step) == 5 and restored.nets["G"].ema is not None


def test_an_unknown_version_stops_with_one_line(tmp_path, trained):
    family, state = trained
    ckpt = Checkpointer(tmp_path / "ckpt")
    ckpt.save(5, state, {"step": 5, "format_version": 7})
    ckpt.wait()
    with pytest.raises(CheckpointError, match=r"format version 7, but this gan_jax reads version 2") as err:
        ckpt.restore(family.init(1))
    ckpt.close()
    assert "\n" not in str(err.value)
    assert (tmp_path / "ckpt" / "5").is_dir()  # nothing saved is lost

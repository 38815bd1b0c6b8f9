"""The family contract (gan_jax/families/base.py) from the outside: a family of one's own, built on the gan
family, with a lazy phase (every 2nd step, as stylegan2-ada's Greg/Dreg) and a value of its own in the state;
the generic step schedules the phase, checkpoints carry the extra state, and a resume continues it exactly."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import pytest
from conftest import make_config

from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families import gan
from gan_jax.families.base import Phase
from gan_jax.families.catalog import build_family
from gan_jax.logging import read_metrics
from gan_jax.registry import FAMILIES
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn

TINY = ("model.g_widths=[16]", "model.d_widths=[16]", "train.batch_size=32", "logger=none", "logger.progress=false")


@dataclass(frozen=True)
class CountingGAN(gan.GAN):
    """The gan family plus a lazy phase that counts its own runs in `state.extra` and reports a metric."""

    name = "counting_gan"

    def init(self, seed: int):
        state = super().init(seed)
        return state.replace(extra={"lazy_runs": jnp.zeros((), jnp.int32)})

    def phases(self) -> tuple[Phase, ...]:
        def lazy(state, arrays, key):
            del arrays, key
            runs = state.extra["lazy_runs"] + 1
            return state.replace(extra={"lazy_runs": runs}), {"lazy_runs": runs.astype(jnp.float32)}

        return (*super().phases(), Phase("lazy", lazy, every=2))


FAMILIES.register("counting_gan", lambda cfg, source: CountingGAN(**gan.gan_fields(cfg, source)))


def test_a_lazy_phase_runs_every_kth_step():
    cfg = make_config(*TINY, "family=counting_gan")
    source = build_source(cfg.data)
    family = build_family(cfg, source)
    assert isinstance(family, CountingGAN)
    state = family.init(0)
    state, metrics = make_train_fn(family, 6)(state, source.arrays)
    assert int(state.step) == 6 and int(state.extra["lazy_runs"]) == 3  # steps 0, 2, 4
    assert float(metrics["d_loss"]) > 0


def test_family_state_extras_checkpoint_and_resume(tmp_path):
    run = ("family=counting_gan", "train.steps_per_call=5", "train.log_every=5", "train.ckpt_every=10")
    straight = train(make_config(*TINY, *run, "train.steps=20", "eval.every=10"), tmp_path / "straight")
    train(make_config(*TINY, *run, "train.steps=10", "eval.every=10"), tmp_path / "resumed")
    again = make_config(*TINY, *run, "train.steps=20", "eval.every=10", "train.resume=true")
    resumed = train(again, tmp_path / "resumed")
    assert read_metrics(tmp_path / "resumed" / "metrics.jsonl") == read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert straight["g_loss"] == resumed["g_loss"]


def test_unknown_family_is_one_line_with_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"family='countin_gan' is not a known family \(did you mean counting_gan\?\)"
    ):
        make_config(*TINY, "family=countin_gan")

"""A researcher's own model, loss and family from a file outside the package: registered from the config
(`plugins=[path]`), then trained, checkpointed, resumed, sampled with gan-jax-sample and scored with gan-jax-eval
exactly like a built-in (README: Your own model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gan_jax
from gan_jax.errors import ConfigError
from gan_jax.logging import read_metrics

PLUGIN = textwrap.dedent(
    '''
    """A user's tiny GAN: its own generator, critic, config schema and loss."""
    from dataclasses import dataclass

    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np

    from gan_jax.config import ModelConfig
    from gan_jax.losses import AdversarialLoss
    from gan_jax.registry import LOSSES, MODELS


    @dataclass
    class TinyConfig(ModelConfig):
        name: str = "user_tiny"
        width: int = 16


    class TinyGenerator(nn.Module):
        width: int
        out_shape: tuple

        @nn.compact
        def __call__(self, z, y=None, *, train):
            h = nn.tanh(nn.Dense(self.width)(z))
            return nn.Dense(int(np.prod(self.out_shape)))(h).reshape((z.shape[0], *self.out_shape))


    class TinyCritic(nn.Module):
        width: int

        @nn.compact
        def __call__(self, x, y=None, *, train):
            h = nn.tanh(nn.Dense(self.width)(x.reshape(x.shape[0], -1)))
            return nn.Dense(1)(h)[:, 0]


    @MODELS.register("user_tiny", config=TinyConfig)
    def build_tiny(cfg, source):
        return TinyGenerator(cfg.width, source.example_shape), TinyCritic(cfg.width)


    def _critic(real, fake, real_target, fake_target):
        return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))


    LOSSES.register("user_softplus", AdversarialLoss(_critic, lambda fake: jnp.mean(jax.nn.softplus(-fake)), 0.0))
    '''
)
RUN = ("train.steps=40", "train.steps_per_call=20", "train.log_every=20", "train.ckpt_every=20", "eval.every=20")
QUICK = ("eval.num_samples=200", "train.batch_size=64", "logger=none", "logger.progress=false")


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("user_code") / "my_gan.py"
    path.write_text(PLUGIN)
    return path


def _cli(tool: str, *args: str) -> subprocess.CompletedProcess:
    """A console script in a fresh process, run from a directory that is not the checkout."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    code = f"import sys; from gan_jax.cli.{tool} import main; sys.argv[0] = 'gan-jax-{tool}'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd="/", timeout=600
    )


def test_user_model_and_loss_train_resume_sample_and_evaluate(plugin_file, tmp_path):
    run_dir = tmp_path / "run"
    overrides = ("model=user_tiny", "model.width=12", "loss.name=user_softplus", *QUICK)
    cfg = gan_jax.config(None, *overrides, *RUN, "train.steps=20", plugins=[str(plugin_file)])
    assert type(cfg.model).__name__ == "TinyConfig" and cfg.model.width == 12
    first = gan_jax.train(cfg, run_dir)
    z = cfg.model.z_dim  # the schema default: 16
    assert first["step"] == 20 and first["g_params"] == z * 12 + 12 + 12 * 2 + 2  # z -> 12 -> 2 (a point)

    # The same run again, straight to 40 steps, and the first one resumed from its step-20 checkpoint: equal.
    straight = gan_jax.train(gan_jax.config(None, *overrides, *RUN, plugins=[str(plugin_file)]), tmp_path / "straight")
    resumed = gan_jax.train(
        gan_jax.config(None, *overrides, *RUN, "train.resume=true", plugins=[str(plugin_file)]), run_dir
    )
    assert resumed["step"] == 40
    assert read_metrics(run_dir / "metrics.jsonl") == read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert straight["g_loss"] == resumed["g_loss"]

    # A fresh process finds the plug-in through the run's config.yaml.
    out = tmp_path / "samples.npz"
    done = _cli("sample", f"run_dir={run_dir}", "n=50", f"out={out}")
    assert done.returncode == 0, done.stderr
    samples = np.load(out)["samples"]
    assert samples.shape == (50, 2) and np.all(np.isfinite(samples))
    np.testing.assert_array_equal(samples, gan_jax.load(run_dir).sample(50, seed=0))
    done = _cli("evaluate", f"run_dir={run_dir}", "n=200")
    assert done.returncode == 0, done.stderr
    scored = json.loads((run_dir / "eval.json").read_text())
    assert scored["step"] == 40 and 0 <= scored["values"]["modes_covered"] <= 8


def test_plugin_model_choices_and_errors(plugin_file):
    from gan_jax.registry import MODELS

    gan_jax.config(None, "model=user_tiny", plugins=[str(plugin_file)])
    assert "user_tiny" in MODELS.names()
    with pytest.raises(ConfigError, match=r"model\.width_scale"):  # a key the plug-in's schema does not have
        gan_jax.config(None, "model=user_tiny", "model.width_scale=0.5", plugins=[str(plugin_file)])
    with pytest.raises(ConfigError, match="did you mean user_softplus"):
        gan_jax.config(None, "loss.name=user_softplux", plugins=[str(plugin_file)])
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_here'"):
        gan_jax.config(None, plugins=["no_such_module_here"])
    missing = Path("/nonexistent/user.py")
    with pytest.raises(ConfigError, match="does not exist"):
        gan_jax.config(None, plugins=[str(missing)])


def test_cli_takes_plugins_from_the_command_line(plugin_file, tmp_path):
    done = _cli("train", f"plugins=[{plugin_file}]", "model=user_tiny", "model.widht=3", f"hydra.run.dir={tmp_path}")
    assert done.returncode == 2
    assert "model.widht" in done.stderr and "did you mean model.width" in done.stderr
    assert "Traceback" not in done.stderr

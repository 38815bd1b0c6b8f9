"""Every model-zoo experiment config starts and runs a few steps on CPU through the real training loop.

The networks are shrunk (widths, batch) so the suite stays fast; what is checked is that each config composes,
its dataset loads (CIFAR-10 from small files in the real pickle format; MNIST from the shared data), its models
build, train, checkpoint and sample. The published protocols are in each experiment's README.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from conftest import make_config
from omegaconf import OmegaConf

from gan_jax.train.loop import train

QUICK = (
    "train.steps=2",
    "train.steps_per_call=2",
    "train.log_every=2",
    "train.ckpt_every=2",
    "train.batch_size=10",
    "eval.every=0",
    "eval.metrics=[none]",
    "eval.grid_samples=20",
    "logger.mode=disabled",
    "logger.progress=false",
)
SMALL = {
    "resnet": ("model.g_channels=16", "model.d_channels=16"),
    "dcgan": ("model.width_scale=0.125",),
    "mlp": ("model.g_widths=[32]", "model.d_widths=[32]"),
}
EXPERIMENTS = {
    "dcgan_cifar10": "dcgan",
    "wgan_gp_cifar10": "resnet",
    "sngan_cifar10": "resnet",
    "projection_cifar10": "resnet",
    "acgan_mnist": "mlp",
    "projection_mnist": "mlp",
    "cgan_digits": "mlp",
}


def write_fake_cifar10(root, n: int = 10) -> None:
    """CIFAR-10's python layout: six pickles of {b"data": uint8 (n, 3072) CHW rows, b"labels": [int]}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
        (folder / name).write_bytes(pickle.dumps(batch))


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_config_runs_a_few_steps(name, tmp_path, monkeypatch):
    overrides = [f"experiment={name}", *QUICK, *SMALL[EXPERIMENTS[name]]]
    if name.endswith("cifar10"):
        write_fake_cifar10(tmp_path / "data")
        overrides += [f"data.root={tmp_path / 'data'}", "data.verify_checksums=false"]
    cfg = make_config(*overrides)
    assert cfg.name == name
    summary = train(cfg, tmp_path / "run")
    assert summary["step"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r for r in records if "d_loss" in r]
    assert losses and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in losses)
    assert (tmp_path / "run" / "plots" / "samples.png").is_file()
    if cfg.model.conditioning != "none":
        check_class_sampling(tmp_path / "run", tmp_path / "samples")


def check_class_sampling(run_dir, out_dir) -> None:
    """`gan-jax-sample label=k` / `label=[..]`: n samples per requested class, labels saved, one row per class."""
    from PIL import Image

    from gan_jax.cli.sample import sample_run, to_sample_config
    from gan_jax.config import SampleConfig
    from gan_jax.errors import ConfigError

    def sample(label, name):
        cfg = OmegaConf.merge(OmegaConf.structured(SampleConfig), {"run_dir": str(run_dir), "n": 4, "label": label})
        cfg.out = str(out_dir / f"{name}.npz")
        return np.load(sample_run(to_sample_config(cfg)))

    one = sample(3, "one")
    assert one["labels"].tolist() == [3] * 4 and one["samples"].shape[0] == 4
    two = sample([0, 2], "two")
    assert two["labels"].tolist() == [0] * 4 + [2] * 4 and two["samples"].shape[0] == 8
    grid = np.asarray(Image.open(out_dir / "two.png"))
    assert grid.shape[0] < grid.shape[1]  # two rows (one per class) of four samples
    with pytest.raises(ConfigError, match="out of range"):
        sample(99, "bad")

"""The console scripts as a user runs them: real subprocesses, real Hydra, W&B offline, orbax on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BIN = Path(sys.executable).parent
FAST = ("train.batch_size=128", "model.g_widths=[64,64]", "model.d_widths=[64,64]", "eval.num_samples=500")


def run_cli(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}
    return subprocess.run([str(BIN / script), *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.strip()]


@pytest.mark.parametrize(
    ("override", "must_name"),
    [
        ("loss=nope", ["loss=nope", "hinge", "wgan_gp"]),
        ("train.steps=abc", ["train.steps", "abc"]),
        ("train.stepz=10", ["stepz"]),
        ("model.name=transformer", ["model.name", "dcgan"]),
        ("train.batch_size=-4", ["train.batch_size"]),
    ],
)
def test_bad_config_gives_one_clear_line(tmp_path, override, must_name):
    proc = run_cli("gan-jax-train", override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode != 0
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in must_name:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_mnist_names_file_and_place(tmp_path):
    proc = run_cli(
        "gan-jax-train",
        "experiment=dcgan_mnist",
        f"data.root={tmp_path / 'nodata'}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    message = error_lines(proc)[-1]
    assert "t10k-images-idx3-ubyte.gz" in message and str(tmp_path / "nodata") in message


def test_train_resume_and_sample(tmp_path):
    run_dir = tmp_path / "run"
    common = (*FAST, "train.steps_per_call=50", "train.log_every=50", "train.ckpt_every=100", "eval.every=100")
    first = run_cli("gan-jax-train", *common, "train.steps=200", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "summary.json",
        "plots/losses.png",
        "plots/samples.png",
        "plots/modes.png",
        ".hydra/config.yaml",
    ):
        assert (run_dir / name).is_file(), name
    assert sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == [100, 200]
    assert len([p for p in (run_dir / "checkpoints" / "best").iterdir() if p.name.isdigit()]) == 1  # by reverse_kl
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["step"] == 200 and {"modes_covered", "hq_fraction", "reverse_kl"} <= set(summary)
    assert list((run_dir / "wandb").glob(f"offline-run-*-{summary['wandb_run_id']}*"))

    again = run_cli("gan-jax-train", *common, "train.steps=400", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert again.returncode != 0 and "train.resume=true" in again.stderr  # never overwrite a run by accident

    resumed = run_cli(
        "gan-jax-train", *common, "train.steps=400", "train.resume=true", f"hydra.run.dir={run_dir}", cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 400 and steps.count(250) >= 1
    resumed_summary = json.loads((run_dir / "summary.json").read_text())
    assert resumed_summary["step"] == 400
    assert resumed_summary["wandb_run_id"] == summary["wandb_run_id"]  # the same W&B run continues

    outs = []
    for name in ("a.npz", "b.npz"):
        proc = run_cli(
            "gan-jax-sample", f"run_dir={run_dir}", "n=300", "seed=7", f"out={tmp_path / name}", cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(np.load(tmp_path / name))
        assert (tmp_path / name).with_suffix(".png").is_file()
    assert outs[0]["samples"].shape == (300, 2) and int(outs[0]["step"]) == 400
    np.testing.assert_array_equal(outs[0]["samples"], outs[1]["samples"])


def test_sample_without_run_dir_is_one_line(tmp_path):
    proc = run_cli("gan-jax-sample", "n=3", cwd=tmp_path)
    assert proc.returncode != 0
    lines = error_lines(proc)
    assert len(lines) == 1 and "run_dir" in lines[0]


@pytest.mark.slow
def test_default_main_job_covers_all_ring_modes(tmp_path):
    """The README's main command (experiment=toy_ring), end to end: 8/8 modes and >= 80% high-quality samples."""
    run_dir = tmp_path / "main"
    proc = run_cli("gan-jax-train", f"hydra.run.dir={run_dir}", "logger.progress=false", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["step"] == 8000
    assert summary["modes_covered"] == 8, summary
    assert summary["hq_fraction"] >= 0.8, summary

"""Hydra sweeps (`gan-jax-train -m`) with the basic and joblib launchers, and scripts/aggregate_sweep.py.

Sweep jobs share a persistent JAX compilation cache (a real JAX feature, `JAX_COMPILATION_CACHE_DIR`): jobs that
differ only in their seed compile the same program, and the cache keeps these tests short.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
AGGREGATE = ROOT / "scripts" / "aggregate_sweep.py"
TINY = (
    "model.g_widths=[32,32]",
    "model.d_widths=[32,32]",
    "train.batch_size=64",
    "train.steps=20",
    "train.steps_per_call=10",
    "train.log_every=10",
    "train.ckpt_every=20",
    "eval.num_samples=200",
    "logger.mode=disabled",
    "logger.progress=false",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    cache = tmp_path_factory.mktemp("jax-cache")
    return {
        **os.environ,
        "WANDB_MODE": "disabled",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def sweep(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "gan-jax-train"), "-m", *TINY, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def aggregate(directory: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(AGGREGATE), str(directory), *args], capture_output=True, text=True, timeout=120
    )


def test_basic_launcher_sweep_then_aggregate(tmp_path, env):
    """Two seeds, one job after another in one process; the table has one row, mean ± s.e. over the seeds."""
    out = tmp_path / "multirun"
    sweep(env, tmp_path, "seed=0,1", f"hydra.sweep.dir={out}")
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("*/summary.json"))]
    assert sorted(s["seed"] for s in summaries) == [0, 1] and all(s["step"] == 20 for s in summaries)

    proc = aggregate(out, "--metrics", "modes_covered", "reverse_kl", "d_loss")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((out / "aggregate.csv").open()))
    assert [(r["configuration"], r["n"]) for r in rows] == [("(all runs)", "2")]
    assert {"modes_covered_mean", "modes_covered_se", "d_loss_mean", "d_loss_se"} <= set(rows[0])
    markdown = (out / "aggregate.md").read_text()
    assert markdown == proc.stdout and "| (all runs) | 2 |" in markdown and "±" in markdown
    assert "Every run: " in markdown and "train.steps=20" in markdown


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path, env):
    """Two jobs as two worker processes at once (the programs come from the cache the basic sweep filled)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install hydra-joblib-launcher")
    out = tmp_path / "multirun"
    sweep(env, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=2,3", f"hydra.sweep.dir={out}")
    summaries = [json.loads(p.read_text()) for p in sorted(out.glob("*/summary.json"))]
    assert sorted(s["seed"] for s in summaries) == [2, 3] and all(s["step"] == 20 for s in summaries)


def _job(root: Path, name: str, overrides: list[str], summary: dict, members: list[dict] | None = None) -> None:
    job = root / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "summary.json").write_text(json.dumps(summary))
    for i, member in enumerate(members or []):
        (job / "members" / str(i)).mkdir(parents=True)
        (job / "members" / str(i) / "summary.json").write_text(json.dumps(member))


def test_aggregate_groups_seeds_and_population_members(tmp_path):
    """A sweep over optim.g.lr and a population over the same learning rates land in the same rows."""
    root = tmp_path / "multirun"
    _job(root, "0", ["optim.g.lr=1e-4", "seed=0"], {"seed": 0, "reverse_kl": 0.10, "step": 9})
    _job(root, "1", ["optim.g.lr=1e-4", "seed=1"], {"seed": 1, "reverse_kl": 0.20, "step": 9})
    _job(root, "2", ["optim.g.lr=2e-4", "seed=0"], {"seed": 0, "reverse_kl": "NaN", "step": 9})
    members = [
        {"seed": 5, "member": 0, "hparams": {"optim.g.lr": 1e-4}, "reverse_kl": 0.30},
        {"seed": 5, "member": 1, "hparams": {"optim.g.lr": 2e-4}, "reverse_kl": 0.50},
    ]
    _job(root, "3", ["train.population=2", "population.lr_g=[1e-4,2e-4]", "seed=5"], {"members": members}, members)
    (root / "4" / ".hydra").mkdir(parents=True)  # a failed job: overrides but no summary
    (root / "4" / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(["optim.g.lr=3e-4"]))

    proc = aggregate(root, "--out", str(tmp_path / "table"))
    assert proc.returncode == 0, proc.stderr
    assert "no summary.json" in proc.stderr and "4" in proc.stderr
    rows = {r["configuration"]: r for r in csv.DictReader((tmp_path / "table.csv").open())}
    assert set(rows) == {"optim.g.lr=0.0001", "optim.g.lr=0.0002"}
    low = rows["optim.g.lr=0.0001"]
    assert low["n"] == "3" and float(low["reverse_kl_mean"]) == pytest.approx(0.2)
    assert float(low["reverse_kl_se"]) == pytest.approx(0.1 / 3**0.5)
    assert rows["optim.g.lr=0.0002"]["n"] == "2"  # a NaN (diverged) run counts as a run; its mean is NaN
    assert "step_mean" not in low and "seed_mean" not in low  # bookkeeping is not a metric

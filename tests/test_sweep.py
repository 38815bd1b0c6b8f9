"""Hydra sweeps (`gan-jax-train -m`) with the basic and joblib launchers, and scripts/aggregate_sweep.py.

Sweep jobs share a persistent JAX compilation cache (a real JAX feature, `JAX_COMPILATION_CACHE_DIR`): jobs that
differ only in their seed compile the same program, and the cache keeps these tests short.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_checkpoint_paths import QUICK as SMALL  # small networks, checkpoints every 20 steps, no W&B

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


def run_sweep(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`gan-jax-train -m ARGS` in `cwd`; the caller checks the exit code."""
    return subprocess.run(
        [str(BIN / "gan-jax-train"), "-m", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def sweep(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = run_sweep(env, cwd, *TINY, *args)
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


# Sweeps with a job that fails or is killed (SMALL overrides).


def _jobs(directory: Path) -> dict[str, dict]:
    return {j["job"]: j for j in json.loads((directory / "aggregate.json").read_text())["jobs"]}


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_failed_job_leaves_the_other_jobs_intact(tmp_path, env, launcher):
    """Job 0 diverges (train.on_nonfinite=stop): jobs 1 and 2 still run to their summaries, job 0 records its
    one-line error in failed.json, the multirun exits 2 at the end, and aggregate_sweep lists 2 finished + 1 failed.
    Before, the basic launcher ended the whole sweep at the first failure and joblib lost the running jobs too."""
    if launcher == "joblib":
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install hydra-joblib-launcher")
    out = tmp_path / "multirun"
    extra = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    args = [*SMALL, *extra, "train.steps=20", "train.on_nonfinite=stop", "optim.d.lr=1e30,1e-4,2e-4"]
    proc = run_sweep(env, tmp_path, *args, f"hydra.sweep.dir={out}")
    assert proc.returncode == 2, proc.stderr[-4000:]
    for job in ("1", "2"):
        assert json.loads((out / job / "summary.json").read_text())["step"] == 20
        assert not (out / job / "failed.json").exists()
    failure = json.loads((out / "0" / "failed.json").read_text())
    assert failure["error"] == "DivergenceError" and "non-finite" in failure["message"]
    assert "\n" not in failure["message"] and "traceback" not in failure
    assert f"sweep job 0 ({out / '0'}): {failure['message']}" in proc.stderr
    assert "1 sweep job(s) failed (0;" in proc.stderr.strip().splitlines()[-1]
    assert not (out / "0" / "summary.json").exists()

    agg = aggregate(out, "--metrics", "d_loss")
    assert agg.returncode == 0, agg.stderr
    assert "job 0 failed (DivergenceError: non-finite" in agg.stderr
    jobs = _jobs(out)
    assert {j: v["status"] for j, v in jobs.items()} == {"0": "failed", "1": "finished", "2": "finished"}
    assert jobs["0"]["error"] == "DivergenceError" and "optim.d.lr=1e+30" in jobs["0"]["overrides"]
    assert "| optim.d.lr=0.0001 | 1 |" in agg.stdout and "| optim.d.lr=0.0002 | 1 |" in agg.stdout
    assert "Jobs: 2 finished, 1 failed, 0 unfinished, 0 not started" in agg.stdout
    assert "| 0 | failed | optim.d.lr=1e+30 |" in agg.stdout
    assert aggregate(out, "--strict").returncode == 1


def test_killed_sweep_lists_unfinished_and_not_started_jobs(tmp_path, env):
    """SIGKILL during job 1 of three (the basic launcher's one process): job 0 stays finished, job 1 is
    unfinished with its last logged step and newest sealed checkpoint, job 2 (in multirun.yaml, no directory)
    never started."""
    out = tmp_path / "multirun"
    cmd = [str(BIN / "gan-jax-train"), "-m", *SMALL, "train.steps=20,1000000,20", f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not list((out / "1" / "checkpoints").glob("*/gan_jax_manifest.json")):
            assert proc.poll() is None, proc.stderr.read().decode()[-4000:]
            assert time.monotonic() < deadline, "job 1 wrote no checkpoint in time"
            time.sleep(0.2)
    finally:
        proc.kill()  # SIGKILL: nothing of the job's own clean-up runs
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    agg = aggregate(out)
    assert agg.returncode == 0, agg.stderr
    assert "no summary.json in job 1: unfinished" in agg.stderr and "job 2 of the sweep never started" in agg.stderr
    jobs = _jobs(out)
    assert {j: v["status"] for j, v in jobs.items()} == {"0": "finished", "1": "unfinished", "2": "not started"}
    killed = jobs["1"]
    assert "train.steps=1000000" in killed["overrides"] and killed["checkpoint"] >= 20
    assert killed["step"] >= killed["checkpoint"] and "killed" in killed["detail"]
    if (out / "1" / ".gan_jax.lock").exists():  # left behind by the killed run: its process is gone
        assert "which is gone" in killed["detail"]
    assert jobs["2"]["overrides"][-1] == "train.steps=20" and jobs["2"]["step"] is None
    assert f"| 1 | unfinished | train.steps=1000000 | {killed['step']} | {killed['checkpoint']} |" in agg.stdout
    assert aggregate(out, "--strict").returncode == 1


BUGGY_PLUGIN = """
from dataclasses import dataclass
import flax.linen as nn
from gan_jax.config import ModelConfig
from gan_jax.registry import MODELS

@dataclass
class BuggyConfig(ModelConfig):
    name: str = "buggy"
    width: int = 16

class Net(nn.Module):
    width: int
    out: int
    @nn.compact
    def __call__(self, x, y=None, *, train):
        h = nn.Dense(self.out)(nn.relu(nn.Dense(self.width)(x)))
        return h if self.out > 1 else h[:, 0]

@MODELS.register("buggy", config=BuggyConfig)
def build(cfg, source):
    if cfg.width == 13:
        raise ValueError("a bug in this plug-in")
    return Net(cfg.width, 2), Net(cfg.width, 1)
"""


def test_unexpected_exception_in_a_job_is_recorded_with_its_traceback(tmp_path, env):
    """A bug (not a GanJaxError) in job 0, here in a user's model plug-in: its traceback goes to stderr and to
    failed.json, job 1 still runs, and the sweep exits 2 (before: Hydra's traceback and exit 1 after all jobs)."""
    (tmp_path / "buggy.py").write_text(BUGGY_PLUGIN)
    out = tmp_path / "multirun"
    args = [*SMALL[2:], "train.steps=20", "plugins=[buggy.py]", "model=buggy", "model.width=13,16"]
    proc = run_sweep(env, tmp_path, *args, f"hydra.sweep.dir={out}")
    assert proc.returncode == 2, proc.stderr[-4000:]
    assert json.loads((out / "1" / "summary.json").read_text())["step"] == 20
    failure = json.loads((out / "0" / "failed.json").read_text())
    assert failure["error"] == "ValueError" and failure["message"] == "a bug in this plug-in"
    assert "Traceback" in failure["traceback"] and "buggy.py" in failure["traceback"]
    assert "Traceback" in proc.stderr and f"sweep job 0 ({out / '0'}): ValueError: a bug" in proc.stderr
    assert "job 0 failed (ValueError: a bug in this plug-in)" in aggregate(out).stderr

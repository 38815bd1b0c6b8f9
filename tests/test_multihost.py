"""Two processes on 127.0.0.1 (CPU, gloo collectives) as one data-parallel run, through the real CLI: they train,
checkpoint collectively, resume on the same process count, and match one process at the same global batch.

Each process runs in its own session and is killed with its group on a hard timeout: a peer that never arrives
aborts the other only after `parallel.init_timeout_s`, and the survivor of a peer that died can hang ~100 s at
exit (shared/NOTES-jax-stack.md).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import make_config

from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.logging import read_metrics
from gan_jax.train.checkpoint import MANIFEST, Checkpointer
from gan_jax.train.loop import train

BIN = Path(sys.executable).parent
COMMON = (
    "model.g_widths=[32,32]",
    "model.d_widths=[32,32]",
    "model.z_dim=4",
    "train.batch_size=64",
    "train.steps_per_call=10",
    "train.log_every=10",
    "train.ckpt_every=20",
    "eval.every=20",
    "eval.num_samples=200",
    "logger.mode=disabled",
    "logger.progress=false",
)
TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_device_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Each process brings one CPU device: drop the suite's multi-device settings."""
    return {k: v for k, v in (env or os.environ).items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}


def pair_env(cache: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """One CPU device per process, no W&B, and a persistent compilation cache shared by the pair's runs."""
    return _one_device_env(env) | {
        "WANDB_MODE": "disabled",
        "HYDRA_FULL_ERROR": "1",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }


def pair_commands(run_dir: Path, *overrides: str) -> list[list[str]]:
    """The two `gan-jax-train` command lines of one 2-process run on 127.0.0.1 (a fresh port)."""
    port = _free_port()
    return [
        [
            str(BIN / "gan-jax-train"),
            *COMMON,
            *overrides,
            f"parallel.coordinator_address=127.0.0.1:{port}",
            "parallel.num_processes=2",
            f"parallel.process_id={i}",
            "parallel.init_timeout_s=60",
            f"hydra.run.dir={run_dir}",
        ]
        for i in range(2)
    ]


def _run_pair(run_dir: Path, cache: Path, *overrides: str, env: dict[str, str] | None = None) -> list[tuple[int, str]]:
    """Both processes of one run; (exit code, output) each. Kills both process groups if the pair hangs. The
    resumed pair reuses the first pair's compiled programs from a persistent JAX compilation cache."""
    env = pair_env(cache, env)
    logs = [run_dir.parent / f"{run_dir.name}-process{i}.log" for i in range(2)]
    procs = []
    for i, cmd in enumerate(pair_commands(run_dir, *overrides)):
        with logs[i].open("w") as out:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return [(proc.returncode, log.read_text()) for proc, log in zip(procs, logs, strict=True)]


def _final_params(run_dir: Path, cfg) -> np.ndarray:
    source = build_source(cfg.data)
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        state = ckpt.restore(build_family(cfg, source).init(cfg.seed)).state
    finally:
        ckpt.close()
    assert int(state.step) == cfg.train.steps
    leaves = jax.tree_util.tree_leaves(
        (state.nets["G"].params, state.nets["D"].params, state.nets["G"].opt, state.nets["D"].opt)
    )
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in leaves])


def test_two_processes_train_checkpoint_resume_and_match_one(tmp_path):
    """The second pair resumes as a requeued SLURM job does: SLURM_RESTART_COUNT > 0 and no train.resume=true."""
    multi, cache = tmp_path / "multi", tmp_path / "jax-cache"
    for code, log in _run_pair(multi, cache, "train.steps=20"):
        assert code == 0, log[-4000:]
    with pytest.raises(ConfigError, match=r"train\.resume=true"):  # not requeued: a run is never overwritten
        train(make_config(*COMMON, "train.steps=40"), multi)
    for code, log in _run_pair(multi, cache, "train.steps=40", env={**os.environ, "SLURM_RESTART_COUNT": "1"}):
        assert code == 0, log[-4000:]
        assert "this SLURM job was requeued: resuming" in log

    summary = json.loads((multi / "summary.json").read_text())
    assert (summary["step"], summary["processes"], summary["devices"]) == (40, 2, 2)
    steps = sorted(int(p.name) for p in (multi / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [20, 40] and all((multi / "checkpoints" / str(s) / MANIFEST).is_file() for s in steps)

    cfg = make_config(*COMMON, "train.steps=40")
    train(cfg, tmp_path / "single")
    ours = read_metrics(multi / "metrics.jsonl")  # written by process 0 alone: each step once
    theirs = read_metrics(tmp_path / "single" / "metrics.jsonl")
    assert [r["step"] for r in ours] == [r["step"] for r in theirs] and len(ours) >= 6
    for a, b in zip(ours, theirs, strict=True):
        for key in set(a) & {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"}:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=f"{key} at step {a['step']}")
    np.testing.assert_allclose(_final_params(multi, cfg), _final_params(tmp_path / "single", cfg), atol=1e-3)


_SAVE_BOTH = """
import sys
import jax
import numpy as np
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]), initialization_timeout=60)
from gan_jax.train.checkpoint import Checkpointer
ckpt = Checkpointer(sys.argv[3])
state = {"w": np.arange(1000.0)}
for step in range(10, 90, 10):  # each pair of saves may collide; several pairs make a collision near certain
    assert ckpt.save(step, state, {"step": step}) and ckpt.save_best(step, state, {"step": step})
ckpt.close()
print("saved both")
"""


def test_latest_and_best_can_save_the_same_step_at_once(tmp_path):
    """Orbax names its cross-process barriers after the step directory; without a prefix per store, the latest
    and the best save of one step share a barrier and the second one fails ("... is already ongoing"). Eight
    steps also rotate both stores many times: a process that lists the steps while process 0 already deletes one
    would skip the collective delete (a "sync_global_devices name mismatch")."""
    address = f"127.0.0.1:{_free_port()}"
    env = _one_device_env()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVE_BOTH, address, str(i), str(tmp_path / "checkpoints")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 and "saved both" in out, out[-3000:]
    for store in (tmp_path / "checkpoints", tmp_path / "checkpoints" / "best"):
        assert (store / "80" / MANIFEST).is_file()

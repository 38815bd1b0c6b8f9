"""A 2-process run (127.0.0.1, gloo) whose peer dies (SIGKILL) or hangs (SIGSTOP): the survivor exits within a
bounded time with one line naming the lost process and the last sealed checkpoint, exit code 75 (EX_TEMPFAIL, so
a scheduler can requeue); relaunching both with train.resume=true continues bit-exactly (gan_jax/train/peers.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from test_multihost import _run_pair, pair_commands, pair_env

from gan_jax.logging import read_metrics
from gan_jax.train.checkpoint import MANIFEST
from gan_jax.train.peers import EXIT_PEER_LOST

LONG = ("train.steps=100000", "train.ckpt_every=50", "eval.every=0")


def _start_pair(run_dir: Path, cache: Path, *overrides: str) -> list[subprocess.Popen]:
    env, procs = pair_env(cache), []
    for i, cmd in enumerate(pair_commands(run_dir, *overrides)):
        log = (run_dir.parent / f"{run_dir.name}-p{i}.log").open("w")
        procs.append(
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, start_new_session=True, text=True)
        )
    return procs


def _wait_for_sealed(run_dir: Path, step: int, procs: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "checkpoints" / str(step) / MANIFEST).is_file():
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "the pair never checkpointed"
        time.sleep(0.1)


def _survivor_exit(procs: list[subprocess.Popen], victim: int, sig: int, run_dir: Path) -> tuple[int, float, str]:
    """Signal one process; (exit code, seconds until the other exited, its stderr). Kills both groups after."""
    survivor = procs[1 - victim]
    os.kill(procs[victim].pid, sig)
    start = time.monotonic()
    try:
        code = survivor.wait(timeout=90)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log = (run_dir.parent / f"{run_dir.name}-p{1 - victim}.log").read_text()
    return code, time.monotonic() - start, log


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ": error:" in line]


def test_a_killed_peer_ends_the_survivor_and_the_relaunch_resumes_exactly(tmp_path):
    run, cache = tmp_path / "run", tmp_path / "cache"
    procs = _start_pair(run, cache, *LONG)
    _wait_for_sealed(run, 100, procs)
    code, waited, log = _survivor_exit(procs, victim=1, sig=signal.SIGKILL, run_dir=run)
    assert code == EXIT_PEER_LOST and waited < 60, (code, waited, log[-3000:])
    errors = _error_lines(log)
    assert len(errors) == 1 and "lost process 1" in errors[0], log[-3000:]
    assert "the last sealed checkpoint is step" in errors[0] and "train.resume=true" in errors[0]

    for code, out in _run_pair(
        run, cache, "train.steps=300", "train.ckpt_every=50", "eval.every=0", "train.resume=true"
    ):
        assert code == 0, out[-3000:]
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith("orbax-checkpoint-tmp")]
    assert not leftovers and all((p / MANIFEST).is_file() for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    straight = tmp_path / "straight"
    for code, out in _run_pair(straight, cache, "train.steps=300", "train.ckpt_every=50", "eval.every=0"):
        assert code == 0, out[-3000:]
    assert read_metrics(run / "metrics.jsonl") == read_metrics(straight / "metrics.jsonl")


def test_a_hung_peer_ends_the_survivor_after_the_peer_timeout(tmp_path):
    run = tmp_path / "run"
    procs = _start_pair(run, tmp_path / "cache", *LONG, "parallel.peer_timeout_s=8")
    _wait_for_sealed(run, 50, procs)
    code, waited, log = _survivor_exit(procs, victim=1, sig=signal.SIGSTOP, run_dir=run)
    assert code == EXIT_PEER_LOST and 7 < waited < 40, (code, waited, log[-3000:])
    errors = _error_lines(log)
    assert len(errors) == 1 and "process 1 stopped responding (a collective waited 8 s" in errors[0], errors

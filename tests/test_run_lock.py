"""One run per directory (gan_jax/train/run_lock.py): a second writer into a live run's directory is refused with
one line naming the holder, before it touches a checkpoint; a lock left by a killed run is taken over.

The CLI test runs real `gan-jax-train` processes on toy data; the unit tests use real files, flocks and processes
(a dead pid is one of our own finished children)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gan_jax.errors import RunInUseError
from gan_jax.train.run_lock import LOCK_NAME, acquire, hold_run_dir

BIN = Path(sys.executable).parent
HOST = socket.gethostname()
TOY = (
    "experiment=toy_ring",
    "logger=none",
    "logger.progress=false",
    "model.g_widths=[32,32]",
    "model.d_widths=[32,32]",
    "train.batch_size=64",
    "train.steps_per_call=50",
    "train.log_every=100",
    "eval.num_samples=200",
)


def _env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": ""}


def _cli(run_dir: Path, *extra: str) -> list[str]:
    return [str(BIN / "gan-jax-train"), *TOY, *extra, f"hydra.run.dir={run_dir}"]


def _run(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cli(run_dir, *extra), capture_output=True, text=True, env=_env(), timeout=300)


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()  # reaped: the pid names no process now
    return child.pid


def _write_lock(run_dir: Path, pid: int, host: str = HOST) -> Path:
    path = run_dir / LOCK_NAME
    path.write_text(json.dumps({"pid": pid, "host": host, "started": time.time() - 3600, "argv": ["x"]}))
    return path


def _checkpoint_files(run_dir: Path) -> dict[str, str]:
    files = [p for p in (run_dir / "checkpoints").rglob("*") if p.is_file()]
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _holder_pid(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / LOCK_NAME).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _wait_training(run_dir: Path, proc: subprocess.Popen, after_step: int, timeout: float = 120) -> None:
    """Until `proc` holds the lock and has logged a step past `after_step` (it is resumed and training)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"the live run ended: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the live run did not get going"
        metrics = run_dir / "metrics.jsonl"
        steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()] if metrics.exists() else []
        if _holder_pid(run_dir) == proc.pid and steps and max(steps) > after_step:
            return
        time.sleep(0.1)


def test_second_run_into_a_live_run_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path):
    run_dir = tmp_path / "run"
    first = _run(run_dir, "train.steps=100", "train.ckpt_every=100", "eval.every=100")
    assert first.returncode == 0, first.stderr
    assert not (run_dir / LOCK_NAME).exists()  # released at the normal end
    # The live run: resumed from step 100, no further save for a long while (its checkpoints stay as they are).
    far = ("train.steps=100000", "train.ckpt_every=100000", "eval.every=100000")
    live = subprocess.Popen(
        _cli(run_dir, *far, "train.resume=true"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    try:
        _wait_training(run_dir, live, after_step=100)
        before = _checkpoint_files(run_dir)
        config_mtime = (run_dir / "config.yaml").stat().st_mtime_ns
        second = _run(run_dir, "train.steps=300", "train.resume=true")
        assert live.poll() is None, "the live run died"
        assert _checkpoint_files(run_dir) == before and not (run_dir / "checkpoints" / "damaged").exists()
        assert (run_dir / "config.yaml").stat().st_mtime_ns == config_mtime
    finally:
        live.send_signal(signal.SIGKILL)
        live.communicate(timeout=60)
    assert second.returncode == 2, second.stderr
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, second.stderr
    assert lines[0].startswith("gan-jax-train: error: ") and f"{run_dir} is in use by a live run" in lines[0]
    assert f"pid {live.pid} on host {HOST}" in lines[0] and "hydra.run.dir" in lines[0]

    assert _holder_pid(run_dir) == live.pid  # SIGKILL leaves the file; the kernel dropped its flock
    resumed = _run(run_dir, "train.steps=200", "train.ckpt_every=100", "eval.every=100", "train.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    assert f"taking over the stale lock of pid {live.pid} on {HOST} (not running)" in resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 200
    assert not (run_dir / LOCK_NAME).exists()


def test_lock_names_holder_and_is_released(tmp_path):
    lock = acquire(tmp_path)
    record = json.loads((tmp_path / LOCK_NAME).read_text())
    assert record["pid"] == os.getpid() and record["host"] == HOST and record["started"] <= time.time()
    with pytest.raises(RunInUseError, match=rf"is in use by a live run \(pid {os.getpid()} on host {HOST}, since"):
        acquire(tmp_path)  # a second open of the file cannot take the flock while the first holds it
    lock.release()
    assert not (tmp_path / LOCK_NAME).exists()
    with acquire(tmp_path):  # free again, no warning needed
        pass
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path, capsys):
    pid = _dead_pid()
    _write_lock(tmp_path, pid)
    with acquire(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"gan_jax: warning: {tmp_path.absolute()} was not released" in err
    assert f"taking over the stale lock of pid {pid} on {HOST} (not running)" in err
    assert not (tmp_path / LOCK_NAME).exists()


def test_unreadable_lock_file_nobody_holds_is_taken_over(tmp_path, capsys):
    (tmp_path / LOCK_NAME).write_text("")  # e.g. a run killed between creating and filling in the file
    with acquire(tmp_path):
        pass
    assert "taking over the unreadable lock file" in capsys.readouterr().err


def _beating(path: Path, stop: threading.Event) -> None:
    while not stop.wait(0.05):
        os.utime(path)


def test_lock_of_another_host_is_judged_by_its_heartbeat(tmp_path, capsys):
    path = _write_lock(tmp_path, 1, host="node-elsewhere")
    stop = threading.Event()
    beat = threading.Thread(target=_beating, args=(path, stop))
    beat.start()
    try:
        with pytest.raises(RunInUseError, match="pid 1 on host node-elsewhere") as info:
            acquire(tmp_path, watch_s=1.0)
    finally:
        stop.set()
        beat.join()
    assert f"delete {path.absolute()}" in str(info.value)  # not exact across hosts: say how to clear it
    with acquire(tmp_path, watch_s=1.0):  # the heartbeat stopped: stale
        pass
    err = capsys.readouterr().err
    assert "watching its heartbeat" in err and "stale lock of pid 1 on node-elsewhere (no heartbeat for 1 s)" in err


def test_holder_refreshes_its_heartbeat(tmp_path):
    with acquire(tmp_path, heartbeat_s=0.05) as lock:
        first = lock.path.stat().st_mtime_ns
        deadline = time.monotonic() + 5
        while lock.path.stat().st_mtime_ns == first:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.02)


def test_only_process_zero_locks_and_every_process_hears_a_refusal(tmp_path):
    with acquire(tmp_path):
        with hold_run_dir(tmp_path, is_main=False) as lock:  # another process of the live run: not refused
            assert lock is None
        refused_elsewhere = hold_run_dir(tmp_path, is_main=False, any_process=lambda flag: True)
        with pytest.raises(RunInUseError, match="process 0 could not take"), refused_elsewhere:  # process 0 was
            pass
        with pytest.raises(RunInUseError, match="in use by a live run"), hold_run_dir(tmp_path):
            pass


def test_lock_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt), hold_run_dir(tmp_path):
        assert (tmp_path / LOCK_NAME).exists()
        raise KeyboardInterrupt  # what a second stop signal raises
    assert not (tmp_path / LOCK_NAME).exists()

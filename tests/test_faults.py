"""The fault inventory: every fault and bad input we try, and what gan_jax must do about it.

Checkpoints (in-process, a real orbax store):
  1. newest save half-written (killed after orbax wrote, before the manifest)  -> warn, resume from the one before
  2. newest save killed mid-write (orbax tmp directory left behind)           -> ignored, resume from the newest
  3. a file of the newest save deleted                                          -> warn, resume from the one before
  4. a file of the newest save truncated                                        -> warn, resume from the one before
  5. bytes overwritten inside a data file (same size; orbax restores garbage)   -> warn, resume from the one before
  6. the manifest itself overwritten with garbage                               -> warn, resume from the one before
  7. every save damaged                                                          -> one clear error, nothing moved
  8. rotation never deletes the last valid save before the next one is sealed
  9. the best save lives apart and survives rotation of the latest saves
 10. resuming with a config whose shapes differ                                 -> error listing arrays and keys
Training (in-process):
 11. exact resume: N steps + resume to 2N == 2N straight (every state leaf bitwise, metrics.jsonl equal)
 12. determinism: the same config and seed give identical metrics.jsonl
 13. divergence under train.on_nonfinite=stop -> error naming step and quantity, last good checkpoint kept
 14. divergence under train.on_nonfinite=skip -> poisoned steps skipped, counted, weights stay finite
Processes (real `gan-jax-train` subprocesses):
 15. SIGTERM -> checkpoint, W&B closed, exit 0; resume ends with the same samples as an uninterrupted run; the
     resumed W&B run has the same id and its offline history holds the keys and steps of both parts
 16. SIGKILL at a random moment after the first checkpoint -> resume ends with the same samples
 17. SIGINT -> checkpoint, exit 130
 18. a damaged newest checkpoint on resume via the CLI -> warning naming the step, run completes
 19. non-finite divergence via the CLI -> one line naming step and quantity, exit != 0, checkpoints intact
Bad data (data=npz and the MNIST IDX reader):
 20. wrong shape (3-D images) 21. wrong dtype (complex) 22. empty dataset 23. NaN/Inf values
 24. pixel values outside data.pixel_range 25. labels of the wrong shape 26. labels needed but absent
 27. missing file 28. not an npz (garbage bytes) 29. npz without 'x'
 30. MNIST IDX missing 31. MNIST IDX bad magic number 32. MNIST IDX truncated (these three in test_data.py)
 33. npz holding object (pickled) arrays, or cut short -> our own line, never numpy's allow_pickle advice
At scale ([reliability]; each in its own file):
 34. a full disk during a save (real tmpfs) -> one line naming the step and the last good checkpoint, exit 2;
     the unsealed attempt removed, sealed saves valid; read-only remount -> one line before Hydra writes;
     after space is freed a resume equals the straight run                           (test_disk_full.py)
 35. a file-size limit (RLIMIT_FSIZE) on the first save -> one line, nothing half-written (test_disk_full.py)
 36. a peer SIGKILLed mid-run -> the survivor exits 75 within a second, one line naming process and last
     sealed checkpoint; relaunching both resumes bit-exactly                       (test_peer_loss.py)
 37. a peer SIGSTOPped -> the survivor exits 75 after parallel.peer_timeout_s      (test_peer_loss.py)
 38. a second gan-jax-train into a live run's directory -> refused, one line naming pid/host; the live run's
     checkpoints untouched                                                          (test_run_lock.py)
 39. a lock left by a killed run -> detected as stale (free flock / dead pid / no heartbeat from another host)
     and taken over with a warning                                                  (test_run_lock.py)
 40. every latest save damaged, best/ intact -> resume from best/, saying so; bit-exact (test_best_fallback.py)
 41. best/ newer than the newest valid latest save -> best/ used                    (test_best_fallback.py)
 42. nothing valid in latest or best -> one error, nothing moved                    (test_best_fallback.py)
 43. a sweep job raising a project error -> failed.json, the other jobs finish, exit 2 (basic and joblib)
 44. a sweep job raising an unexpected exception -> traceback in failed.json, others finish (test_sweep.py)
 45. a sweep killed mid-job -> aggregate_sweep lists it unfinished and the rest not started (test_sweep.py)
 46. soak: 5,000 steps, 10 SIGTERMs + 5 SIGKILLs at seeded random steps -> identical metrics and samples
     (test_soak.py, scripts/soak.py)
 47. train.resume=<another run's checkpoint> with other shapes -> error naming arrays and keys
     (test_checkpoint_paths.py)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_config, poisoned_sampler

from gan_jax.data import images
from gan_jax.data.source import build_source
from gan_jax.errors import CheckpointError, ConfigError, DataError, DivergenceError
from gan_jax.families.catalog import build_family
from gan_jax.families.gan import GAN
from gan_jax.train.checkpoint import MANIFEST, Checkpointer
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn

NONFINITE_QUANTITIES = GAN.nonfinite_quantities

BIN = Path(sys.executable).parent
TINY = (
    "train.batch_size=64",
    "model.g_widths=[32,32]",
    "model.d_widths=[32,32]",
    "eval.num_samples=200",
    "logger.mode=disabled",
    "logger.progress=false",
)


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))


# --- checkpoints ------------------------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    """A store with valid saves at steps 1, 2, 3 of a small state (step i holds the state trained i steps)."""
    cfg = make_config(*TINY)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state = gan.init(cfg.seed)
    step_fn = make_train_fn(gan, 1)
    ckpt = Checkpointer(tmp_path / "checkpoints", keep=5)
    states = {}
    for i in (1, 2, 3):
        state, _ = step_fn(state, source.arrays)
        states[i] = jax.device_get(state)
        ckpt.save(i, state, {"step": i})
    ckpt.close()
    return tmp_path / "checkpoints", states, gan.init(cfg.seed)


def _largest_data_file(step_dir: Path) -> Path:
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST and "state" in p.parts]
    return max(files, key=lambda p: p.stat().st_size)


def _restore_with_warning(directory: Path, template, capsys) -> tuple[int, str]:
    ckpt = Checkpointer(directory)
    try:
        restored = ckpt.restore(template)
    finally:
        ckpt.close()
    return restored.step, capsys.readouterr().err


def test_half_written_newest_save_falls_back(saved, capsys):
    directory, _, template = saved
    (directory / "3" / MANIFEST).unlink()  # what a kill between orbax's commit and our seal leaves
    step, err = _restore_with_warning(directory, template, capsys)
    assert step == 2 and "step 3" in err and "never completed" in err
    assert not (directory / "3").exists() and list((directory / "damaged").iterdir())  # moved aside, not deleted


def test_a_reader_leaves_a_save_in_progress_alone(saved, capsys):
    """gan-jax-sample / gan-jax-eval may run beside training: a step without its manifest yet is skipped, not
    moved away from under the writer (which would break the run's save)."""
    directory, _, template = saved
    (directory / "3" / MANIFEST).unlink()
    ckpt = Checkpointer(directory)
    try:
        restored = ckpt.restore(template, read_only=True)
    finally:
        ckpt.close()
    assert restored.step == 2 and "save in progress" in capsys.readouterr().err
    assert (directory / "3").is_dir() and not (directory / "damaged").exists()


def test_orbax_tmp_directory_is_ignored(saved, capsys):
    directory, _, template = saved
    shutil.copytree(directory / "3", directory / "4.orbax-checkpoint-tmp-1234")
    (directory / "4.orbax-checkpoint-tmp-1234" / MANIFEST).unlink()
    step, _ = _restore_with_warning(directory, template, capsys)
    assert step == 3


@pytest.mark.parametrize("damage", ["missing", "truncated", "overwritten", "bad_manifest"])
def test_damaged_newest_save_falls_back_with_warning(saved, capsys, damage):
    directory, states, template = saved
    target = _largest_data_file(directory / "3")
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "overwritten":
        data = bytearray(target.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)  # same size: only a checksum can tell
        target.write_bytes(bytes(data))
    else:
        (directory / "3" / MANIFEST).write_bytes(os.urandom(100))
    ckpt = Checkpointer(directory)
    restored = ckpt.restore(template)
    ckpt.close()
    err = capsys.readouterr().err
    assert restored.step == 2 and "checkpoint step 3 is damaged" in err and "resuming from step 2" in err
    assert leaves_equal(restored.state, states[2])


def test_every_save_damaged_is_one_clear_error(saved):
    directory, _, template = saved
    for step in (1, 2, 3):
        (directory / str(step) / MANIFEST).unlink()
    ckpt = Checkpointer(directory)
    with pytest.raises(CheckpointError, match="no valid checkpoint") as info:
        ckpt.restore(template)
    ckpt.close()
    assert all(f"step {s}" in str(info.value) for s in (1, 2, 3))
    assert sorted(p.name for p in directory.iterdir() if p.name != "best") == ["1", "2", "3"]  # nothing moved


def test_rotation_keeps_last_valid_until_next_is_sealed(saved):
    directory, _, template = saved
    ckpt = Checkpointer(directory, keep=1)
    ckpt.save(4, template, {"step": 4})  # asynchronous: not sealed yet
    on_disk = {p.name for p in directory.iterdir()}
    assert {"1", "2", "3"} <= on_disk  # nothing rotated away while step 4 is unfinished
    ckpt.wait()
    assert sorted(p.name for p in directory.iterdir() if p.name.isdigit()) == ["4"]
    ckpt.close()


def test_best_save_is_kept_apart_from_rotation(tmp_path):
    cfg = make_config(*TINY)
    gan = build_family(cfg, build_source(cfg.data))
    state = gan.init(0)
    ckpt = Checkpointer(tmp_path / "checkpoints", keep=1)
    ckpt.save_best(1, state, {"best": {"value": 0.1}})
    for step in (1, 2, 3, 4):
        ckpt.save(step, state, {"step": step})
    ckpt.close()
    ckpt = Checkpointer(tmp_path / "checkpoints", keep=1)
    assert ckpt.restore(state, "best").step == 1 and ckpt.restore(state).step == 4
    ckpt.close()


def test_resume_with_different_shapes_lists_what_differs(tmp_path):
    run_dir = tmp_path / "run"
    train(make_config(*TINY, "train.steps=20", "train.log_every=10", "train.ckpt_every=10"), run_dir)
    before = (run_dir / "metrics.jsonl").read_text()
    changed = make_config(*TINY, "model.g_widths=[48,32]", "train.steps=40", "train.resume=true")
    with pytest.raises(CheckpointError) as info:
        train(changed, run_dir)
    message = str(info.value)
    assert "does not fit this config" in message and "(32, 32) float32, this config (48, 32)" in message
    assert "model.g_widths: [32, 32] -> [48, 32]" in message
    assert (run_dir / "metrics.jsonl").read_text() == before  # refused before any step
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == ["10", "20"]


# --- training ---------------------------------------------------------------------------------------------------

RESUMABLE = (*TINY, "train.steps_per_call=10", "train.log_every=20", "train.ckpt_every=60", "eval.every=60")


def _final_state(run_dir: Path, cfg):
    gan = build_family(cfg, build_source(cfg.data))
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        return ckpt.restore(gan.init(cfg.seed)).state
    finally:
        ckpt.close()


def test_exact_resume_is_bitwise_identical(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    cfg = make_config(*RESUMABLE, "train.steps=240", "train.ema_decay=0.9")
    train(cfg, straight)
    train(make_config(*RESUMABLE, "train.steps=120", "train.ema_decay=0.9"), split)
    train(make_config(*RESUMABLE, "train.steps=240", "train.ema_decay=0.9", "train.resume=true"), split)
    a, b = _final_state(straight, cfg), _final_state(split, cfg)
    assert int(a.step) == int(b.step) == 240 and a.nets["G"].ema is not None
    assert leaves_equal(a, b)  # G, D, EMA, both optimizers, step, key: every leaf, bit for bit
    lines = [(d / "metrics.jsonl").read_text().splitlines() for d in (straight, split)]
    assert len(lines[0]) > 10 and lines[0] == lines[1]


def test_same_seed_gives_identical_metrics(tmp_path):
    cfg = make_config(*RESUMABLE, "train.steps=120", "seed=3")
    for name in ("a", "b"):
        train(cfg, tmp_path / name)
    a, b = ((tmp_path / n / "metrics.jsonl").read_text() for n in ("a", "b"))
    assert a == b and len(a.splitlines()) >= 6
    other = make_config(*RESUMABLE, "train.steps=120", "seed=4")
    train(other, tmp_path / "c")
    assert (tmp_path / "c" / "metrics.jsonl").read_text() != a  # the seed matters


def test_divergence_stops_with_step_and_quantity(tmp_path, capsys):
    run_dir = tmp_path / "run"
    common = (*TINY, "train.steps_per_call=10", "train.log_every=10", "train.ckpt_every=20")
    train(make_config(*common, "train.steps=40"), run_dir)
    blowup = make_config(*common, "train.steps=100", "train.resume=true", "optim.g.lr=1e30", "optim.d.lr=1e30")
    with pytest.raises(DivergenceError) as info:
        train(blowup, run_dir)
    message = str(info.value)
    assert "non-finite" in message and "at step 4" in message and "last good checkpoint is step 40" in message
    assert any(q in message for q in NONFINITE_QUANTITIES)
    ckpt = Checkpointer(run_dir / "checkpoints")
    assert ckpt.latest_step() == 40 and ckpt.latest.problem(40) is None  # no bad state was saved
    ckpt.close()
    assert "optim.g.lr" in capsys.readouterr().err  # the changed setting was reported on resume


@pytest.mark.parametrize("mode", ["skip", "stop"])
def test_nonfinite_guard_modes(mode):
    cfg = make_config(*TINY, f"train.on_nonfinite={mode}")
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state = gan.init(0)
    fn = make_train_fn(dataclasses.replace(gan, sample=poisoned_sampler(source.sample, 0.2)), 50)
    state, metrics = fn(state, source.arrays)
    params = (state.nets["G"].params, state.nets["D"].params)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(params))
    if mode == "skip":
        skipped = int(state.nonfinite_skipped)
        assert 0 < skipped < 50 and int(state.step) == 50
        assert float(metrics["nonfinite_skipped"]) == skipped and np.isfinite(float(metrics["d_loss"]))
        assert int(state.nonfinite_step) == -1
    else:
        bad = int(state.nonfinite_step)
        assert 0 <= bad < 50 and int(state.step) == bad  # frozen at the last good state
        assert int(state.nonfinite_what) & 1  # d_loss (bit 0) went NaN
        assert int(state.nonfinite_skipped) == 0


# --- processes --------------------------------------------------------------------------------------------------

PROC = (
    "train.batch_size=256",
    "model.g_widths=[64,64]",
    "model.d_widths=[64,64]",
    "eval.num_samples=300",
    "logger.progress=false",
    "train.steps=2000",
    "train.steps_per_call=10",
    "train.log_every=50",
    "train.ckpt_every=500",
    "eval.every=500",
)


def _env() -> dict:
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": ""}


def _start(run_dir: Path, *extra: str) -> subprocess.Popen:
    cmd = [str(BIN / "gan-jax-train"), *PROC, *extra, f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _run(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = _start(run_dir, *extra)
    out, err = proc.communicate(timeout=400)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"run ended before the signal: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "timed out waiting for the run to get going"
        time.sleep(0.05)


def _metrics_lines(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _samples(run_dir: Path, out: Path) -> np.ndarray:
    cmd = [str(BIN / "gan-jax-sample"), f"run_dir={run_dir}", "n=400", "seed=11", f"out={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return np.load(out)["samples"]


@pytest.fixture(scope="module")
def straight_samples(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    done = _run(run_dir)
    assert done.returncode == 0, done.stderr
    return _samples(run_dir, run_dir.parent / "s.npz")


def _wandb_history(run_dir: Path) -> list[dict]:
    records = []
    for offline in sorted((run_dir / "wandb").glob("offline-run-*")):
        cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
        records += [json.loads(line) for line in out.splitlines() if line.strip()]
    return [r["history"]["item"] for r in records if r["type"] == "history"]


@pytest.mark.slow
def test_sigterm_checkpoints_and_resume_matches_straight_run(tmp_path, straight_samples):
    run_dir = tmp_path / "run"
    proc = _start(run_dir)
    _wait_for(lambda: _metrics_lines(run_dir) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "SIGTERM received: stopped at step" in err
    stopped_at = int(err.split("stopped at step ")[1].split()[0])
    assert 0 < stopped_at < 2000 and (run_dir / "checkpoints" / str(stopped_at) / MANIFEST).is_file()
    assert not (run_dir / "summary.json").exists()  # an unfinished run has no summary
    run_id = next((run_dir / "wandb").glob("offline-run-*")).name.rsplit("-", 1)[1]

    resumed = _run(run_dir, "train.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(_samples(run_dir, tmp_path / "r.npz"), straight_samples)
    assert json.loads((run_dir / "summary.json").read_text())["wandb_run_id"] == run_id
    history = _wandb_history(run_dir)
    steps = {int(h["_step"]) for h in history if "d_loss" in h and "g_loss" in h}
    assert min(steps) <= stopped_at < max(steps) == 2000  # both parts of the run, in one W&B run id
    assert len(list((run_dir / "wandb").glob(f"offline-run-*-{run_id}"))) == 2


@pytest.mark.slow
def test_sigkill_then_resume_matches_straight_run(tmp_path, straight_samples):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "logger.mode=disabled")
    _wait_for(lambda: (run_dir / "checkpoints" / "500" / MANIFEST).is_file(), proc)
    time.sleep(np.random.default_rng().uniform(0.0, 1.0))  # anywhere: mid-step, mid-save, mid-log
    proc.kill()
    proc.communicate(timeout=60)
    resumed = _run(run_dir, "logger.mode=disabled", "train.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    np.testing.assert_array_equal(_samples(run_dir, tmp_path / "k.npz"), straight_samples)


@pytest.mark.slow
def test_sigint_checkpoints_and_exits_130(tmp_path):
    run_dir = tmp_path / "run"
    proc = _start(run_dir, "logger.mode=disabled")
    _wait_for(lambda: _metrics_lines(run_dir) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped_at = int(err.split("stopped at step ")[1].split()[0])
    assert (run_dir / "checkpoints" / str(stopped_at) / MANIFEST).is_file()


def test_cli_resumes_past_a_damaged_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    common = ("logger.mode=disabled", "train.ckpt_every=100", "eval.every=100")
    first = _run(run_dir, *common, "train.steps=200")
    assert first.returncode == 0, first.stderr
    target = _largest_data_file(run_dir / "checkpoints" / "200")
    target.write_bytes(b"\0" * target.stat().st_size)
    resumed = _run(run_dir, *common, "train.steps=300", "train.resume=true")
    assert resumed.returncode == 0, resumed.stderr
    # checkpoints/best holds an intact copy of step 200 (eval.every=100): the newest valid state ([reliability] 4)
    assert "checkpoint step 200 is damaged" in resumed.stderr
    assert "resuming from step 200 of checkpoints/best" in resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 300


def test_cli_divergence_is_one_line_and_keeps_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    common = ("logger.mode=disabled", "train.ckpt_every=100", "eval.every=100")
    assert _run(run_dir, *common, "train.steps=100").returncode == 0
    proc = _run(run_dir, *common, "train.steps=300", "train.resume=true", "optim.g.lr=1e30", "optim.d.lr=1e30")
    assert proc.returncode != 0
    error = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(error) == 1 and "non-finite" in error[0] and "at step 10" in error[0], proc.stderr
    assert "Traceback" not in proc.stderr
    ckpt = Checkpointer(run_dir / "checkpoints")
    assert ckpt.latest_step() == 100 and ckpt.latest.problem(100) is None
    ckpt.close()


# --- bad data ---------------------------------------------------------------------------------------------------


def _npz(tmp_path: Path, **arrays) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def _images(n: int = 8, dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 8, 8, 1)).astype(dtype)


def test_npz_wrong_shape(tmp_path):
    with pytest.raises(DataError, match=r"data.npz:x must be 4-D NHWC.*x\[\.\.\., None\]"):
        images.load_npz(_npz(tmp_path, x=_images()[..., 0]))


def test_npz_wrong_dtype(tmp_path):
    with pytest.raises(DataError, match="dtype complex64; store uint8"):
        images.load_npz(_npz(tmp_path, x=_images().astype(np.complex64)))


def test_npz_empty(tmp_path):
    with pytest.raises(DataError, match=r"data\.npz:x are empty"):
        images.load_npz(_npz(tmp_path, x=np.zeros((0, 8, 8, 1), np.uint8)))


def test_npz_nan_and_inf(tmp_path):
    x = _images(dtype=np.float32) / 255.0
    x[3, 2, 1, 0], x[5, 0, 0, 0] = np.nan, np.inf
    with pytest.raises(DataError, match=r"data.npz:x hold 2 NaN/Inf values \(first at index \[3, 2, 1, 0\]\)"):
        images.load_npz(_npz(tmp_path, x=x), (0.0, 1.0))


def test_npz_values_outside_declared_range(tmp_path):
    x = _images(dtype=np.float32) / 127.5 - 1.0  # [-1, 1] data declared as [0, 1]
    with pytest.raises(DataError, match=r"outside the declared data.pixel_range \[0, 1\]"):
        images.load_npz(_npz(tmp_path, x=x), (0.0, 1.0))
    ok = images.load_npz(_npz(tmp_path, x=x), (-1.0, 1.0))
    np.testing.assert_array_equal(ok.x, _images())  # declared correctly, it round-trips to the same pixels


def test_npz_labels_of_wrong_shape(tmp_path):
    with pytest.raises(DataError, match=r"labels .*data.npz:y must be non-negative integers, one per image"):
        images.load_npz(_npz(tmp_path, x=_images(8), y=np.zeros(7, np.int64)))


def test_labels_needed_but_absent(tmp_path):
    data = images.load_npz(_npz(tmp_path, x=_images()))
    with pytest.raises(DataError, match="has no labels, but the class histogram needs them; add a 'y' array"):
        images.require_labels(data, "the class histogram")
    labelled = images.load_npz(_npz(tmp_path, x=_images(), y=np.arange(8) % 3))
    assert images.require_labels(labelled, "x").y.dtype == np.int32


def test_npz_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"dataset file .*nope.npz not found; set data.path"):
        images.load_npz(tmp_path / "nope.npz")


def test_npz_garbage_file(tmp_path):
    path = tmp_path / "data.npz"
    path.write_bytes(os.urandom(300))
    with pytest.raises(DataError, match=r"data\.npz is not an \.npz archive \(no zip structure"):
        images.load_npz(path)


def test_npz_with_object_arrays_or_cut_short_is_our_own_line(tmp_path):
    """Never numpy's wording, which suggests allow_pickle=True (a pickle in a data file can run code)."""
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match=r"holds object \(pickled\) arrays, which are never loaded") as info:
        images.load_npz(tmp_path / "objects.npz")
    assert "allow_pickle" not in str(info.value)
    np.savez(tmp_path / "whole.npz", x=np.zeros((10, 8, 8, 1), np.uint8))
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.npz is not an \.npz archive"):
        images.load_npz(tmp_path / "cut.npz")


def test_npz_without_x(tmp_path):
    with pytest.raises(DataError, match="has no array 'x' \\(it has: images\\)"):
        images.load_npz(_npz(tmp_path, images=_images()))


def test_npz_bad_input_via_cli_is_one_line(tmp_path):
    x = _images(dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    path = _npz(tmp_path, x=x)
    cmd = [str(BIN / "gan-jax-train"), "data=npz", f"data.path={path}", "model.g_output=tanh"]
    cmd.append(f"hydra.run.dir={tmp_path / 'run'}")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "NaN/Inf" in proc.stderr and str(path) in proc.stderr


def test_npz_without_path_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data=npz needs data\.path"):
        make_config("data=npz")


def test_npz_feeds_the_image_pipeline(tmp_path):
    path = _npz(tmp_path, x=images.load_digits(8).x[:200], y=np.arange(200) % 10)
    source = build_source(
        make_config("data=npz", f"data.path={path}", "data.resolution=16", "model.g_output=tanh").data
    )
    assert source.kind == "images" and source.example_shape == (16, 16, 1) and source.num_classes == 10
    batch = source.sample(source.arrays, jax.random.PRNGKey(0), 5)
    assert batch["x"].shape == (5, 16, 16, 1) and float(batch["x"].min()) >= -1.0


def test_gan_jax_sample_output_is_a_data_npz(tmp_path):
    """What gan-jax-sample writes (uint8 `samples`, int `labels`, `step`) loads as data=npz without renaming."""
    samples = images.load_digits(8).x[:30]
    path = tmp_path / "samples.npz"
    np.savez(path, samples=samples, step=100, labels=np.arange(30, dtype=np.int32) % 10)
    data = images.load_npz(path)
    np.testing.assert_array_equal(data.x, samples)
    assert data.y is not None and data.y.tolist() == [i % 10 for i in range(30)]
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"garbage\.npz is not an \.npz archive"):
        images.load_npz(tmp_path / "garbage.npz")

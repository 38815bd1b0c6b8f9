"""Resume falls back to `checkpoints/best/` when it holds the newest intact copy of the state (every newer latest
save damaged), says so, and continues bit for bit; real orbax saves, damaged at the file layer."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import make_config
from test_faults import TINY

from gan_jax.data.source import build_source
from gan_jax.errors import CheckpointError
from gan_jax.families.catalog import build_family
from gan_jax.train.checkpoint import MANIFEST, Checkpointer
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn

# Evaluations (and so best/ saves) only at step 120 and the end: best/ holds step 120, as the latest save does.
CADENCE = (*TINY, "train.steps_per_call=10", "train.log_every=20", "train.ckpt_every=60", "eval.every=120")
FROM_BEST = "of checkpoints/best (the newest valid copy of the state)"


def leaves_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb, strict=True))


def _overwrite_data(step_dir: Path) -> None:
    """Same size, other bytes in the largest array file: only the manifest's checksum can tell."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST and "state" in p.parts]
    target = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = os.urandom(64)
    target.write_bytes(bytes(data))


def _restore(directory: Path, template, **kwargs):
    ckpt = Checkpointer(directory)
    try:
        return ckpt.restore(template, **kwargs)
    finally:
        ckpt.close()


def _steps(directory: Path) -> list[str]:
    return sorted((p.name for p in directory.iterdir() if p.name.isdigit()), key=int)


def _save_steps(directory: Path, best_at: int):
    """Latest saves at steps 1, 2, 3 and best/ at `best_at` (the same state), as a run that evaluates there
    leaves them; the states saved, and a template to restore into."""
    cfg = make_config(*TINY)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state, step_fn = gan.init(cfg.seed), make_train_fn(gan, 1)
    ckpt = Checkpointer(directory, keep=5)
    states = {}
    for i in (1, 2, 3):
        state, _ = step_fn(state, source.arrays)
        states[i] = jax.device_get(state)
        if i == best_at:
            ckpt.save_best(i, state, {"step": i})
        ckpt.save(i, state, {"step": i})
    ckpt.close()
    return directory, states, gan.init(cfg.seed)


@pytest.fixture
def saved(tmp_path):
    return _save_steps(tmp_path / "checkpoints", best_at=3)


def test_best_is_used_when_the_newest_latest_save_is_damaged(saved, capsys):
    directory, states, template = saved
    _overwrite_data(directory / "3")
    restored = _restore(directory, template)
    err = capsys.readouterr().err
    assert restored.step == 3 and leaves_equal(restored.state, states[3])  # not step 2: best/ has step 3 intact
    assert "checkpoint step 3 is damaged (file " in err and "does not match its checksum" in err
    assert f"resuming from step 3 {FROM_BEST}" in err
    assert _steps(directory) == ["1", "2"] and len(list((directory / "damaged").iterdir())) == 1


def test_an_intact_latest_save_of_the_same_step_is_preferred(saved, capsys):
    directory, _, template = saved
    restored = _restore(directory, template)
    assert restored.step == 3 and capsys.readouterr().err == ""
    _overwrite_data(directory / "best" / "3")  # a damaged best/ older than nothing else: never looked at
    assert _restore(directory, template).step == 3 and capsys.readouterr().err == ""


def test_every_latest_save_damaged_uses_the_copy_in_best(saved, capsys):
    directory, states, template = saved
    _overwrite_data(directory / "3")
    (directory / "2" / MANIFEST).write_bytes(os.urandom(100))
    (directory / "1" / MANIFEST).unlink()
    restored = _restore(directory, template)
    err = capsys.readouterr().err
    assert restored.step == 3 and leaves_equal(restored.state, states[3])
    assert "checkpoint step 3 is damaged (file " in err and f"resuming from step 3 {FROM_BEST}" in err
    assert _steps(directory) == ["1", "2"]  # older than the state restored: left as they are (as before)


def test_best_alone_left_after_a_fallback_is_still_found(tmp_path, capsys):
    directory, states, template = _save_steps(tmp_path / "checkpoints", best_at=1)
    for step in (1, 2, 3):
        (directory / str(step) / MANIFEST).unlink()
    assert _restore(directory, template).step == 1
    err = capsys.readouterr().err
    assert all(f"checkpoint step {s} is damaged" in err for s in (1, 2, 3)) and err.count(FROM_BEST) == 3
    assert _steps(directory) == [] and len(list((directory / "damaged").iterdir())) == 3
    # Killed before its next save: best/ alone holds the run, and a resume finds it (not a fresh start).
    ckpt = Checkpointer(directory)
    assert ckpt.latest_step() == 1 and ckpt.read_meta()["step"] == 1
    ckpt.close()
    restored = _restore(directory, template)
    assert restored.step == 1 and leaves_equal(restored.state, states[1])
    assert f"resuming from step 1 {FROM_BEST}; no other save is left" in capsys.readouterr().err


def test_a_reader_uses_best_and_moves_nothing(saved, capsys):
    directory, states, template = saved
    (directory / "3" / MANIFEST).unlink()  # a save in progress, as a reader beside a live run may see it
    restored = _restore(directory, template, read_only=True)
    assert restored.step == 3 and leaves_equal(restored.state, states[3])
    assert "checkpoint step 3 is not readable (no manifest" in capsys.readouterr().err
    assert _steps(directory) == ["1", "2", "3"] and not (directory / "damaged").exists()


def test_nothing_valid_anywhere_is_one_error_and_touches_nothing(saved):
    directory, _, template = saved
    for step_dir in (directory / "1", directory / "2", directory / "3", directory / "best" / "3"):
        (step_dir / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match="no valid checkpoint") as info:
        _restore(directory, template)
    message = str(info.value)
    assert "\n" not in message and "step 3 of checkpoints/best: no manifest" in message
    assert all(f"step {s}: no manifest" in message for s in (1, 2, 3))
    assert _steps(directory) == ["1", "2", "3"] and _steps(directory / "best") == ["3"]
    assert not (directory / "damaged").exists()


def _final_state(run_dir: Path, cfg):
    gan = build_family(cfg, build_source(cfg.data))
    return _restore(run_dir / "checkpoints", gan.init(cfg.seed)).state


def test_resume_from_best_continues_bit_for_bit(tmp_path, capsys):
    straight, split = tmp_path / "straight", tmp_path / "split"
    cfg = make_config(*CADENCE, "train.steps=240")
    train(cfg, straight)
    train(make_config(*CADENCE, "train.steps=120"), split)
    ckpts = split / "checkpoints"
    assert _steps(ckpts) == ["60", "120"] and _steps(ckpts / "best") == ["120"]
    _overwrite_data(ckpts / "120")  # every latest save damaged: the bytes of one, the manifest of the other
    (ckpts / "60" / MANIFEST).write_bytes(os.urandom(100))
    capsys.readouterr()
    train(make_config(*CADENCE, "train.steps=240", "train.resume=true"), split)
    err = capsys.readouterr().err
    assert "checkpoint step 120 is damaged (file " in err and f"resuming from step 120 {FROM_BEST}" in err
    assert "step 60" not in err and (ckpts / "60").is_dir()  # older than the state restored: not looked at
    a, b = _final_state(straight, cfg), _final_state(split, cfg)
    assert int(a.step) == int(b.step) == 240 and leaves_equal(a, b)
    lines = [(d / "metrics.jsonl").read_text().splitlines() for d in (straight, split)]
    assert len(lines[0]) > 10 and lines[0] == lines[1]

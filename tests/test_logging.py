"""Logger against real W&B in offline mode, read back with `wandb leet inspect --json` (wandb 0.31 has no
Python reader for .wandb files), plus metrics.jsonl, resume truncation, NaN handling and the no-op modes."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_jax.errors import GanJaxError
from gan_jax.logging import METRICS_FILE, SUMMARY_FILE, Logger, read_metrics


@pytest.fixture(scope="module", autouse=True)
def wandb_env(tmp_path_factory):
    """One offline W&B environment for the module: wandb reads its env vars once per process."""
    home = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(home))
        mp.setenv("WANDB_CONFIG_DIR", str(home / "config"))
        mp.setenv("WANDB_CACHE_DIR", str(home / "cache"))
        mp.setenv("WANDB_DATA_DIR", str(home / "data"))
        mp.setenv("WANDB_SILENT", "true")
        mp.setenv("NETRC", str(home / "no-netrc"))
        mp.delenv("WANDB_API_KEY", raising=False)
        yield
        import wandb

        wandb.teardown()


def _inspect(run_dir: Path, *flags: str) -> str:
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(run_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def _history(offline_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in _inspect(offline_dir).splitlines() if line.strip()]
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def _offline_dirs(run_dir: Path, run_id: str) -> list[Path]:
    return sorted((run_dir / "wandb").glob(f"offline-run-*-{run_id}*"))


def _losses(step: int) -> dict[str, float]:
    return {"d_loss": 1.0 / (step + 1), "g_loss": 2.0 + step}


def test_offline_run_history_summary_and_jsonl(tmp_path):
    run_dir = tmp_path / "run"
    png = tmp_path / "grid.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    logger = Logger(run_dir, {"lr": 2e-4, "model": {"width": 64}}, show_progress=False, tags=("test",))
    run_id = logger.run_id
    assert run_id
    for step in (0, 10, 20):
        logger.log(step, {**_losses(step), "steps_per_s": np.float32(3.5)})
    logger.log_image(20, "samples", png)
    logger.finish({"final_fid": 12.5, "steps": 20})
    assert logger.run_id == run_id  # still known after finish, for the checkpoint's metadata

    (offline_dir,) = _offline_dirs(run_dir, run_id)
    history = _history(offline_dir)
    assert [h["_step"] for h in history] == [0, 10, 20]
    assert all({"d_loss", "g_loss", "steps_per_s"} <= h.keys() for h in history)
    assert history[1]["g_loss"] == 12.0
    assert history[2]["samples._type"] == "image-file"
    assert (offline_dir / "files" / history[2]["samples.path"]).is_file()

    summary = json.loads(_inspect(offline_dir, "--summary"))
    assert summary["run_id"] == run_id
    assert summary["state"] == "finished"
    assert summary["summary"]["final_fid"] == 12.5
    assert summary["config"]["lr"] == 2e-4
    assert summary["config"]["model"] == {"width": 64}
    assert summary["tags"] == ["test"]

    lines = (run_dir / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [0, 10, 20]
    assert read_metrics(run_dir / METRICS_FILE)[1] == {"step": 10, **_losses(10), "steps_per_s": 3.5}
    assert json.loads((run_dir / SUMMARY_FILE).read_text()) == {"final_fid": 12.5, "steps": 20}


def test_resume_truncates_later_lines_and_reuses_run_id(tmp_path):
    run_dir = tmp_path / "run"
    first = Logger(run_dir, {"lr": 1e-3}, show_progress=False)
    run_id = first.run_id
    for step in range(1, 6):
        first.log(step, _losses(step))
    first.finish({})
    with (run_dir / METRICS_FILE).open("a") as handle:  # a kill in the middle of a write
        handle.write('{"step": 6, "d_lo')

    second = Logger(run_dir, {"lr": 1e-3}, show_progress=False, run_id=run_id, resume_step=3)
    assert second.run_id == run_id
    assert [r["step"] for r in read_metrics(run_dir / METRICS_FILE)] == [1, 2, 3]
    assert not list(run_dir.glob("*.tmp"))
    for step in (4, 5):
        second.log(step, _losses(step))
    second.finish({})

    assert [r["step"] for r in read_metrics(run_dir / METRICS_FILE)] == [1, 2, 3, 4, 5]
    offline_dirs = _offline_dirs(run_dir, run_id)  # same id twice; "-1" is appended within one second
    assert len(offline_dirs) == 2
    second_dir = max(offline_dirs, key=lambda d: d.stat().st_mtime)
    assert [h["_step"] for h in _history(second_dir)] == [4, 5]
    assert json.loads(_inspect(second_dir, "--summary"))["run_id"] == run_id


def test_nonfinite_metrics_are_strict_json_and_round_trip(tmp_path):
    run_dir = tmp_path / "run"
    logger = Logger(run_dir, {}, show_progress=False)
    run_id = logger.run_id
    logger.log(1, {"d_loss": math.nan, "g_loss": np.float32("inf"), "grad_norm": -math.inf, "ok": 1.5})
    logger.finish({"last_d_loss": math.nan})

    line = (run_dir / METRICS_FILE).read_text().strip()
    raw = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard JSON constant {name}"))
    assert raw == {"step": 1, "d_loss": "NaN", "g_loss": "Infinity", "grad_norm": "-Infinity", "ok": 1.5}
    (record,) = read_metrics(run_dir / METRICS_FILE)
    assert math.isnan(record["d_loss"])
    assert record["g_loss"] == math.inf
    assert record["grad_norm"] == -math.inf
    assert json.loads((run_dir / SUMMARY_FILE).read_text()) == {"last_d_loss": "NaN"}
    (offline_dir,) = _offline_dirs(run_dir, run_id)
    assert _history(offline_dir)[0]["d_loss"] == "NaN"


def test_disabled_writes_jsonl_but_no_wandb(tmp_path):
    run_dir = tmp_path / "run"
    logger = Logger(run_dir, {}, wandb_mode="disabled", show_progress=False)
    assert logger.run_id is None
    logger.log(0, _losses(0))
    logger.log_image(0, "samples", tmp_path / "missing.png")
    logger.finish({"done": True})
    assert [r["step"] for r in read_metrics(run_dir / METRICS_FILE)] == [0]
    assert (run_dir / SUMMARY_FILE).is_file()
    assert not (run_dir / "wandb").exists()


def test_non_main_process_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    logger = Logger(run_dir, {}, is_main=False)
    assert logger.run_id is None
    logger.log(0, _losses(0))
    logger.advance(1)
    logger.finish({"done": True})
    assert not run_dir.exists()


def test_progress_bar_shows_losses(tmp_path, monkeypatch):
    stderr = io.StringIO()
    stderr.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", stderr)
    logger = Logger(tmp_path / "run", {}, wandb_mode="disabled", total_steps=10)
    logger.advance(4)
    logger.log(4, {"d_loss": 0.25, "g_loss": 1.5, "steps_per_s": 12.0})
    logger.advance(10)
    logger.finish({})
    text = stderr.getvalue()
    assert "10/10" in text
    assert "d_loss=0.25" in text
    assert "g_loss=1.5" in text


def test_bad_mode_and_online_without_key_raise_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(GanJaxError, match=r"logger\.mode"):
        Logger(tmp_path / "a", {}, wandb_mode="offlien")
    with pytest.raises(GanJaxError, match="WANDB_MODE=offline"):
        Logger(tmp_path / "b", {}, wandb_mode="online", show_progress=False)
    monkeypatch.delenv("WANDB_MODE")
    with pytest.raises(GanJaxError, match="wandb login"):
        Logger(tmp_path / "c", {}, wandb_mode="online", show_progress=False)

"""What a run prints (gan_jax/console.py): where it writes and from which step, one status line per log_every
without a terminal (also in train.log), and at the end the directory, final metrics, best checkpoint, wall time."""

from __future__ import annotations

import logging
import subprocess
import sys

from gan_jax.console import LOGGER, Console

RUN = ("model.g_widths=[16]", "model.d_widths=[16]", "train.batch_size=32", "logger=none", "eval.num_samples=200")
CODE = "import sys; from gan_jax.cli.train import main; sys.argv[0] = 'gan-jax-train'; main()"


def _train(run_dir, *args):
    cmd = [sys.executable, "-c", CODE, *RUN, *args, f"hydra.run.dir={run_dir}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def test_status_lines_without_a_terminal_and_a_resume_that_has_nothing_to_do(tmp_path):
    run = ("train.steps=40", "train.steps_per_call=10", "train.log_every=10", "eval.every=20", "train.ckpt_every=20")
    done = _train(tmp_path, *run)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert any(f"run directory {tmp_path}; training 40 steps" in line for line in out), done.stdout
    status = [line for line in out if " steps/s" in line and "step " in line]
    assert len(status) == 4 and "step 10/40 (25%) d_loss" in status[0] and "ETA" in status[0], status
    assert "reverse_kl" in status[-1]  # the latest evaluation (step 20)
    end = out[-1]
    assert "done at step 40" in end and "best reverse_kl" in end and str(tmp_path) in end, end
    assert (tmp_path / "train.log").read_text().count(" steps/s") == 4  # the same lines in train.log
    assert all((tmp_path / "plots" / f"samples_{step}.png").is_file() for step in (20, 40))  # one per evaluation

    again = _train(tmp_path, *run, "train.resume=true")
    assert again.returncode == 0, again.stderr
    assert "nothing to do: the checkpoint is at step 40 >= train.steps=40" in again.stdout
    resumed = _train(tmp_path, *run, "train.steps=60", "train.resume=true")
    assert "resumed from step 40 of 60" in resumed.stdout, resumed.stdout


def test_without_logging_configured_the_run_writes_stdout_and_train_log(tmp_path, monkeypatch, capsys):
    """The Python API has no Hydra logging: the console attaches its own handlers for the run, then removes them."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    console = Console(tmp_path, 100, bar=False, is_main=True)
    console.start(0, resumed=False)
    console.status(50, {"d_loss": 1.25, "g_loss": [0.5, 0.7]}, 10.0, None)  # a population: the mean
    console.finish({"step": 100, "d_loss": 1.0, "best": None}, None)
    text = (tmp_path / "train.log").read_text()
    assert (
        "training 100 steps" in text and "step 50/100 (50%) d_loss 1.25 g_loss 0.6 | 10.0 steps/s | ETA 0m05s" in text
    )
    assert "done at step 100" in capsys.readouterr().out
    assert not LOGGER.handlers


def test_with_a_progress_bar_there_are_no_status_lines(tmp_path, caplog):
    console = Console(tmp_path, 10, bar=True, is_main=True)
    with caplog.at_level(logging.INFO, logger="gan_jax.run"):
        console.status(5, {"d_loss": 1.0}, 1.0, None)
    assert not caplog.records

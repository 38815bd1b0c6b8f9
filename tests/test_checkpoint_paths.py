"""A checkpoint's own path where a run directory is asked for (`gan-jax-sample`, `gan-jax-eval`, `gan_jax.load`),
and `train.resume=<path>`: a new run that starts from another run's checkpoint (fine-tuning)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import gan_jax
from gan_jax.cli.evaluate import evaluate_run
from gan_jax.config import EvalRunConfig
from gan_jax.errors import CheckpointError, ConfigError
from gan_jax.logging import read_metrics
from gan_jax.train.runs import locate_checkpoint

QUICK = (
    "model.g_widths=[16]",
    "model.d_widths=[16]",
    "train.batch_size=32",
    "train.steps_per_call=10",
    "train.log_every=10",
    "train.ckpt_every=20",
    "eval.every=20",
    "eval.num_samples=200",
    "logger=none",
    "logger.progress=false",
)


@pytest.fixture(scope="module")
def straight_and_short(tmp_path_factory):
    """A 60-step run and a 40-step run of the same config (checkpoints at 20 and 40, best by reverse KL)."""
    base = tmp_path_factory.mktemp("runs")
    gan_jax.train(gan_jax.config("toy_ring", *QUICK, "train.steps=60"), base / "straight")
    gan_jax.train(gan_jax.config("toy_ring", *QUICK, "train.steps=40"), base / "short")
    return base / "straight", base / "short"


def test_locate_checkpoint_reads_every_kind_of_path(straight_and_short):
    _, run = straight_and_short
    best_step = json.loads((run / "summary.json").read_text())["best"]["step"]
    assert locate_checkpoint(run) == (run, "latest")
    assert locate_checkpoint(run, "best") == (run, "best")
    assert locate_checkpoint(run / "checkpoints") == (run, "latest")
    assert locate_checkpoint(run / "checkpoints" / "20") == (run, "20")
    assert locate_checkpoint(run / "checkpoints" / "best") == (run, "best")
    assert locate_checkpoint(run / "checkpoints" / "best" / str(best_step)) == (run, "best")
    assert locate_checkpoint(run / "checkpoints" / "20", "20") == (run, "20")
    with pytest.raises(ConfigError, match=r"is checkpoint 20 but checkpoint=best was also given; drop one"):
        locate_checkpoint(run / "checkpoints" / "20", "best")


def test_sample_and_eval_take_a_step_directory(straight_and_short):
    _, run = straight_and_short
    by_step = gan_jax.load(run, checkpoint="20").sample(100, seed=3)
    by_path = gan_jax.load(run / "checkpoints" / "20").sample(100, seed=3)
    latest = gan_jax.load(run).sample(100, seed=3)
    np.testing.assert_array_equal(by_step, by_path)
    assert not np.array_equal(by_path, latest)  # step 20, not the newest (40)
    np.testing.assert_array_equal(
        gan_jax.load(run / "checkpoints" / "best").sample(50, seed=1), gan_jax.load(run, "best").sample(50, seed=1)
    )
    record = evaluate_run(EvalRunConfig(run_dir=str(run / "checkpoints" / "20")))
    assert record["step"] == 20 and record["checkpoint"] == "20"
    assert json.loads((run / "eval.json").read_text())["step"] == 20  # eval.json goes into the run directory
    logged = {r["step"]: r for r in read_metrics(run / "metrics.jsonl") if "reverse_kl" in r}
    assert record["values"]["reverse_kl"] == logged[20]["reverse_kl"]  # the same score the run logged at step 20


def test_resume_from_another_runs_checkpoint_continues_it_exactly(straight_and_short, tmp_path, caplog):
    """Starting a new run from the 40-step run's step-20 checkpoint and training to 60 gives the straight run's
    numbers from step 20 on, bit for bit; the new run's logs start after step 20 and it has its own checkpoints."""
    straight, short = straight_and_short
    cfg = gan_jax.config("toy_ring", *QUICK, "train.steps=60", f"train.resume={short / 'checkpoints' / '20'}")
    with caplog.at_level(logging.INFO, logger="gan_jax.run"):
        summary = gan_jax.train(cfg, tmp_path / "tuned")
    assert summary["step"] == 60
    assert f"starting from {short} (20, step 20), training to step 60" in caplog.text, caplog.text
    tuned = read_metrics(tmp_path / "tuned" / "metrics.jsonl")
    assert tuned and min(r["step"] for r in tuned) > 20
    reference = [r for r in read_metrics(straight / "metrics.jsonl") if r["step"] > 20]
    assert tuned == reference
    assert sorted(p.name for p in (tmp_path / "tuned" / "checkpoints").iterdir() if p.name.isdigit()) == ["40", "60"]
    assert (short / "checkpoints" / "20").is_dir()  # the source run is read, never changed


def test_resume_from_a_path_lists_changed_settings_and_refuses_other_shapes(straight_and_short, tmp_path, capfd):
    _, short = straight_and_short
    start = f"train.resume={short}"
    tuned = gan_jax.config("toy_ring", *QUICK, "train.steps=50", "optim.g.lr=1e-4", start)
    gan_jax.train(tuned, tmp_path / "tuned")
    err = capfd.readouterr().err
    assert "optim.g.lr: 0.0002 -> 0.0001" in err, err
    wider = gan_jax.config("toy_ring", *QUICK, "train.steps=50", "model.g_widths=[32]", start)
    with pytest.raises(CheckpointError, match=r"does not fit this config.*model\.g_widths"):
        gan_jax.train(wider, tmp_path / "wider")
    with pytest.raises(ConfigError, match=r"train\.resume=''"):
        gan_jax.config("toy_ring", "train.resume=''")

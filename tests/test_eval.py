"""Evaluation wired into training and `gan-jax-eval`: image metrics with their protocol, best-by-metric
checkpoints, and clear errors for metrics that cannot apply."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_config

from gan_jax.cli.evaluate import EVAL_FILE, evaluate_run, to_eval_config
from gan_jax.config import EvalRunConfig
from gan_jax.errors import ConfigError
from gan_jax.logging import read_metrics
from gan_jax.metrics.evaluator import ImageEvaluator, check_metrics, default_image_metrics
from gan_jax.train.loop import train

DCGAN_DIGITS = (
    "experiment=dcgan_digits",
    "data.resolution=28",
    "train.steps=4",
    "train.batch_size=8",
    "train.steps_per_call=2",
    "train.log_every=2",
    "train.ckpt_every=2",
    "eval.every=2",
    "eval.num_samples=200",
    "logger.mode=disabled",
    "logger.progress=false",
)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dcgan_digits") / "run"
    summary = train(make_config(*DCGAN_DIGITS), run_dir)
    return run_dir, summary


def test_training_logs_image_metrics_with_protocol(digits_run):
    run_dir, summary = digits_run
    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if "classifier_fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["classifier_fid"] > 0 and 0 < r["classes_covered"] <= 10 for r in evals)
    protocol = summary["eval_protocol"]["classifier"]
    assert protocol["n_real"] == 1797 and protocol["n_fake"] == 200 and protocol["split"] == "all"
    assert len(protocol["weights_sha256"]) == 64 and protocol["classifier_heldout_accuracy"] > 0.9
    best = summary["best"]
    assert best["metric"] == "classifier_fid" and best["value"] == min(r["classifier_fid"] for r in evals)
    assert (run_dir / "checkpoints" / "best" / str(best["step"])).is_dir()


def test_gan_jax_eval_writes_eval_json(digits_run):
    run_dir, summary = digits_run
    cfg = to_eval_config(make_eval_config(str(run_dir), "best", ["classifier_fid", "duplicates", "memorization"]))
    record = evaluate_run(cfg)
    on_disk = json.loads((run_dir / EVAL_FILE).read_text())
    assert on_disk == record and record["step"] == summary["best"]["step"] and record["checkpoint"] == "best"
    assert {"classifier_fid", "duplicate_rate", "nn_real_ratio", "copy_fraction"} <= set(record["values"])
    protocol = record["protocol"]["classifier"]
    assert {"feature_extractor", "weights_sha256", "preprocessing", "n_real", "n_fake", "split"} <= set(protocol)
    # the same checkpoint, samples and metric as during training: the same number
    logged = [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("step") == record["step"]]
    fid_logged = next(r["classifier_fid"] for r in logged if "classifier_fid" in r)
    assert record["values"]["classifier_fid"] == pytest.approx(fid_logged, rel=1e-9)


def make_eval_config(run_dir: str, checkpoint: str, metrics: list[str]):
    from omegaconf import OmegaConf

    return OmegaConf.structured(EvalRunConfig(run_dir=run_dir, checkpoint=checkpoint, metrics=metrics))


def test_metric_errors_name_the_fix(tmp_path):
    with pytest.raises(ConfigError, match="unknown image metric 'fdi'"):
        check_metrics(["fdi"], "digits")
    with pytest.raises(ConfigError, match=r"pt_inception-2015-12-05-6726825d\.pth \(sha256 6726825d"):
        check_metrics(["is"], "mnist", str(tmp_path / "no-weights"))
    with pytest.raises(ConfigError, match=r"digit classifier.*not data=npz.*fid, kid, prdc"):
        check_metrics(["classifier_fid"], "npz")
    with pytest.raises(ConfigError, match="stacked_mnist"):
        check_metrics(["stacked_modes"], "mnist")
    with pytest.raises(ConfigError, match="does not apply to 2-D data"):
        from gan_jax.data.source import build_source
        from gan_jax.evaluation import Evaluator
        from gan_jax.families.catalog import build_family

        cfg = make_config("eval.metrics=[fid]")
        source = build_source(cfg.data)
        Evaluator(build_family(cfg, source), source, cfg)
    assert default_image_metrics("npz") == [] and "classes" in default_image_metrics("mnist")


def test_evaluator_rejects_float_samples():
    from gan_jax.data.images import load_digits

    evaluator = ImageEvaluator("digits", "all", load_digits(8), ["classes"])
    with pytest.raises(ConfigError, match="uint8"):
        evaluator(np.zeros((4, 8, 8, 1), np.float32))


def test_stacked_mnist_source(shared_mnist):
    from gan_jax.data.source import build_source

    source = build_source(make_config("data=stacked_mnist", "data.size=300", "model.g_output=tanh").data)
    assert source.example_shape == (32, 32, 3) and source.num_classes is not None
    labels = np.asarray(source.arrays["y"])
    assert labels.shape == (300,) and labels.min() >= 0 and labels.max() < 1000 and len(set(labels)) > 200
    with pytest.raises(ConfigError, match="use stacked_modes"):
        check_metrics(["classes"], "stacked_mnist")


@pytest.fixture
def shared_mnist():
    import os
    from pathlib import Path

    root = Path(os.environ.get("GAN_JAX_DATA", ""))
    if not (root / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("MNIST test set not available (set GAN_JAX_DATA)")

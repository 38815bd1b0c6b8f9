"""Tables through the common machinery: data=csv + model=ctgan train with the same step, loop, checkpoints,
evaluation and CLI as every other GAN (small synthetic table, few steps)."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import make_config

from gan_jax.cli.sample import sample_run
from gan_jax.config import ConditionConfig, SampleConfig
from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.families.gan import generator_extra_loss
from gan_jax.models.tabular import conditional_loss
from gan_jax.train.loop import train

CITIES = ["Lyon", "Oslo", "Pune", "Lima"]


def mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Integers, a bimodal float, categories with a dependence on the float, a boolean and missing values."""
    rng = np.random.default_rng(seed)
    city = rng.choice(CITIES, n, p=[0.5, 0.3, 0.15, 0.05])
    score = np.where(city == "Lyon", rng.normal(-2, 0.3, n), rng.normal(3, 0.5, n)).round(3)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "score": score,
            "city": np.where(rng.random(n) < 0.05, None, city),
            "member": rng.random(n) < 0.3,
            "label": np.where(score > 0, "high", "low"),
        }
    )


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    mixed_table(600, 0).to_csv(root / "train.csv", index=False)
    mixed_table(300, 1).to_csv(root / "test.csv", index=False)
    return root


def table_overrides(tables, *extra: str) -> list[str]:
    return [
        "experiment=tabular",
        f"data.path={tables / 'train.csv'}",
        f"data.test_path={tables / 'test.csv'}",
        "data.target=label",
        "model.g_widths=[32,32]",
        "model.d_widths=[32,32]",
        "model.z_dim=16",
        "train.batch_size=100",
        "train.steps_per_call=10",
        "train.log_every=10",
        "train.ckpt_every=20",
        "eval.every=20",
        "eval.num_samples=400",
        "logger.progress=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tables, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tab_run")
    cfg = make_config(*table_overrides(tables, "train.steps=20"))
    summary = train(cfg, run_dir)
    return run_dir, summary, cfg


def test_table_run_logs_quality_efficacy_and_privacy(trained):
    run_dir, summary, _ = trained
    for key in ("quality", "quality_column_shapes", "quality_pair_trends", "ml_f1", "exact_copy_share", "dcr_median"):
        assert 0.0 <= summary[key] <= (1.0 if key != "dcr_median" else 10.0), key
    assert summary["g_cond_loss"] > 0  # the conditional cross-entropy is part of G's loss
    assert summary["g_loss"] == pytest.approx(summary["g_adversarial"] + summary["g_cond_loss"], rel=1e-5)
    assert summary["eval_protocol"]["n_real"] == 600 and summary["eval_protocol"]["n_test"] == 300
    assert 0.5 < summary["eval_protocol"]["ml_f1_identity"] <= 1.0  # label is a function of score: learnable
    assert summary["best"]["metric"] == "quality"
    assert (run_dir / "transformer.json").is_file()
    assert (run_dir / "plots" / "samples.png").is_file() and (
        run_dir / "plots" / "correlation_difference.png"
    ).is_file()
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("quality" in line for line in lines) and any("g_cond_loss" in line for line in lines)


def test_resume_continues_the_same_run(trained, tables, tmp_path):
    """Resuming a table run from step 20 to 30 equals one 30-step run: same model space, same numbers."""
    run_dir, _, _ = trained
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed, ignore=shutil.ignore_patterns("wandb"))
    extra = ("train.steps=30", "eval.every=0", "eval.metrics=[quality]", "train.ckpt_every=10")
    a = train(make_config(*table_overrides(tables, *extra, "train.resume=true")), resumed)
    b = train(make_config(*table_overrides(tables, *extra)), tmp_path / "straight")
    for key in ("d_loss", "g_loss", "g_cond_loss", "quality"):
        assert a[key] == b[key], key


def test_sampled_csv_keeps_header_dtypes_categories_and_ranges(trained, tables, tmp_path):
    run_dir, _, _ = trained
    out = tmp_path / "rows.csv"
    sample_run(SampleConfig(run_dir=str(run_dir), n=700, out=str(out)))
    real, synth = pd.read_csv(tables / "train.csv"), pd.read_csv(out)
    assert list(synth.columns) == list(real.columns) and len(synth) == 700
    assert synth["age"].dtype.kind == "i" and synth["member"].dtype == bool
    assert set(synth["city"].dropna()) <= set(CITIES) and set(synth["label"]) <= {"high", "low"}
    for column in ("age", "score"):
        assert real[column].min() <= synth[column].min() and synth[column].max() <= real[column].max(), column


def test_conditioned_sampling_gives_the_value_or_says_why(trained, tmp_path):
    run_dir, _, _ = trained
    out = tmp_path / "oslo.csv"
    cond = ConditionConfig(column="city", value="Oslo", max_draws=200)
    sample_run(SampleConfig(run_dir=str(run_dir), n=50, out=str(out), condition=cond))
    assert (pd.read_csv(out)["city"] == "Oslo").all()
    with pytest.raises(ConfigError, match="not a category of column 'city'"):
        sample_run(SampleConfig(run_dir=str(run_dir), n=5, out=str(out), condition=ConditionConfig("city", "Rome")))
    with pytest.raises(ConfigError, match="only categorical/boolean columns"):
        sample_run(SampleConfig(run_dir=str(run_dir), n=5, out=str(out), condition=ConditionConfig("age", "30")))
    with pytest.raises(ConfigError, match="acceptance"):  # one draw of 5 rows cannot give 5 rare rows every time
        rare = ConditionConfig("city", "Lima", max_draws=1)
        for seed in range(5):
            sample_run(SampleConfig(run_dir=str(run_dir), n=5, seed=seed, out=str(out), condition=rare))


def test_gan_jax_eval_scores_a_table_checkpoint(trained):
    """gan-jax-eval on a table run: the same metrics as the run's own final evaluation (same samples, same key)."""
    from gan_jax.cli.evaluate import evaluate_run
    from gan_jax.config import EvalRunConfig

    run_dir, summary, _ = trained
    record = evaluate_run(EvalRunConfig(run_dir=str(run_dir), metrics=["quality", "dcr"]))
    assert record["step"] == 20 and (run_dir / "eval.json").is_file()
    assert record["values"]["quality"] == pytest.approx(summary["quality"], abs=1e-12)
    assert record["values"]["exact_copy_share"] == summary["exact_copy_share"]
    assert record["protocol"]["n_fake"] == 400


def test_generator_sows_ctgan_conditional_loss(tables):
    """The loss the step adds to G's is exactly conditional_loss on the raw outputs, for the batch's condition."""
    cfg = make_config(*table_overrides(tables))
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state = gan.init(0)
    batch = source.sample(source.arrays, jax.random.PRNGKey(1), 100)
    z = jax.random.normal(jax.random.PRNGKey(2), (100, gan.z_dim))
    _, _, extra = generator_extra_loss(
        gan, state.nets["G"].params, state.nets["G"].stats, z, batch["y"], jax.random.PRNGKey(3)
    )
    inner = gan.generator.bind({"params": state.nets["G"].params, "batch_stats": state.nets["G"].stats})
    # The raw outputs: the generator network without its output heads, in training mode as in the step.
    from gan_jax.models.tabular import CTGANGenerator

    net, g = CTGANGenerator(source.info["transformer"].output_dim, (32, 32)), state.nets["G"]
    raw, _ = net.apply(
        {"params": g.params["CTGANGenerator_0"], "batch_stats": g.stats["CTGANGenerator_0"]},
        z, batch["y"]["cond"], train=True, mutable=["batch_stats"],
    )  # fmt: skip
    want = conditional_loss(raw, batch["y"]["cond"], batch["y"]["mask"], source.info["transformer"].output_info)
    assert inner is not None and float(extra) == pytest.approx(float(want), rel=1e-6) and float(want) > 0
    # Each real row in the batch has the category its condition names (training-by-sampling).
    rows = np.asarray(batch["x"])
    cond = np.asarray(batch["y"]["cond"])
    spans = source.info["transformer"].output_info
    starts = np.cumsum([0] + [s.dim for s in spans])
    discrete = np.concatenate([np.arange(starts[i], starts[i + 1]) for i, s in enumerate(spans) if s.discrete])
    assert np.all(rows[:, discrete][cond.astype(bool)] == 1.0)
    assert jnp.all(jnp.sum(batch["y"]["mask"], axis=1) == 1)


@pytest.mark.parametrize(
    ("overrides", "must_name"),
    [
        (["data.target=nope"], ["data.target='nope'", "columns are"]),
        (["data.path=missing.csv"], ["missing.csv", "not found"]),
        (["model=mlp"], ["tables (data=csv) train with model=ctgan"]),
        (["train.batch_size=105"], ["model.pack=10", "train.batch_size=105"]),
        (["eval.metrics=[fid]"], ["unknown table metric 'fid'"]),
    ],
)
def test_bad_table_configs_fail_with_one_clear_line(tables, tmp_path, overrides, must_name):
    args = [a for a in table_overrides(tables) if not any(a.startswith(o.split("=")[0] + "=") for o in overrides)]
    proc = subprocess.run(
        [sys.executable, "-m", "gan_jax.cli.train", *args, *overrides, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("gan-jax-train: error:")]
    assert len(errors) == 1, proc.stderr
    for text in must_name:
        assert text in errors[0], errors[0]

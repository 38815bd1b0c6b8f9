"""The cyclegan family through the family contract: configs and their errors, exact resume (pools, learning-rate
schedule), populations, the divergence guard, `gan-jax-sample direction=... input=...`, `gan-jax-eval` and the
translation metrics of a training run. Tiny networks at 16x16 (digits <-> MNIST); the networks' faithfulness is
tests/test_cyclegan_nets.py's, one train step against the PyTorch reference tests/test_cyclegan_step_parity.py's."""

from __future__ import annotations

import dataclasses
import importlib
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import StopAtSecondChunk, make_config, poisoned_sampler

from gan_jax.api import load
from gan_jax.data.images import to_uint8
from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.logging import read_metrics
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn

TINY = (
    "experiment=cyclegan_digits_mnist",
    "data.resolution=16",
    "model.ngf=4",
    "model.n_blocks=1",
    "model.ndf=4",
    "model.n_layers=1",
    "model.pool_size=3",
    "train.batch_size=2",
    "logger=none",
    "logger.progress=false",
    "eval.metrics=[cycle_l1]",
    "eval.num_samples=16",
)
RUN = ("train.steps_per_call=5", "train.log_every=5", "train.ckpt_every=10", "eval.every=10")


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_configs_compose_and_bad_pairs_are_one_line():
    cfg = make_config(*TINY)
    family = build_family(cfg, build_source(cfg.data))
    assert family.name == "cyclegan" and family.pool_size == 3 and family.cycle_weight == 10.0
    assert cfg.optim.g.schedule == "constant_linear" and cfg.loss.name == "lsgan"
    ref = make_config("experiment=cyclegan", "data.a=digits", "data.b=mnist", "logger=none")  # the reference's
    assert (ref.train.batch_size, ref.model.ngf, ref.model.n_blocks, ref.model.n_layers) == (1, 64, 9, 3)
    assert ref.optim.d.schedule == "constant_linear" and ref.loss.name == "lsgan" and ref.model.pool_size == 50
    cases = [
        (("model=cyclegan", "data=digits"), "family=cyclegan translates between two image domains"),
        (("experiment=cyclegan_digits_mnist", "data.b=null"), r"data.a=<dataset> and data.b=<dataset>"),
        (("data=unpaired", "data.a=digits", "data.b=mnist"), "trains with model=cyclegan"),
        ((*TINY, "train.n_critic=2"), "set train.n_critic=1"),
        ((*TINY, "model.norm=layer"), "model.norm='layer' is not a valid choice"),
        ((*TINY, "loss=wgan_gp"), "no gradient penalty"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            make_config(*overrides)
    with pytest.raises(ConfigError, match=r"model\.n_layers=3"):
        cfg = make_config(*TINY, "model.n_layers=3")
        build_family(cfg, build_source(cfg.data))


def test_resume_continues_pools_and_schedule_exactly(tmp_path, monkeypatch):
    """A run preempted at step 10 of 20 and resumed equals the uninterrupted run bit for bit: the loss curve,
    every network and optimizer, both image pools (full after two steps; swaps drawn from the step key) and
    the constant-then-linear learning rate (which depends on train.steps, so the stopped run must know it)."""
    loop = importlib.import_module("gan_jax.train.loop")  # `gan_jax.train` the attribute is the API function

    cfg = make_config(*TINY, *RUN, "train.steps=20")
    straight = train(cfg, tmp_path / "straight")
    monkeypatch.setattr(loop, "StopRequests", StopAtSecondChunk)
    stopped = train(cfg, tmp_path / "resumed")
    assert stopped["step"] == 10 and stopped["stopped_by"] == "SIGTERM"
    monkeypatch.undo()
    resumed = train(make_config(*TINY, *RUN, "train.steps=20", "train.resume=true"), tmp_path / "resumed")
    ours, theirs = (read_metrics(tmp_path / d / "metrics.jsonl") for d in ("resumed", "straight"))
    assert len(theirs) >= 4 and ours == theirs
    assert straight["g_loss"] == resumed["g_loss"]
    a, b = load(tmp_path / "straight").state, load(tmp_path / "resumed").state
    assert int(a.step) == int(b.step) == 20 and int(a.extra["pool_count_a"]) == 3
    for x, y in zip(_leaves((a.nets, a.extra)), _leaves((b.nets, b.extra)), strict=True):
        np.testing.assert_array_equal(x, y)


def test_population_member_is_its_single_run(tmp_path):
    common = (*TINY, *RUN, "train.steps=10")
    pop = make_config(*common, "train.population=2", "population.seeds=[3,4]", "population.lr_g=[1e-4,5e-4]")
    train(pop, tmp_path / "pop")
    from gan_jax.config import member_config

    train(member_config(pop, 1), tmp_path / "single")
    ours = read_metrics(tmp_path / "pop" / "members" / "1" / "metrics.jsonl")
    assert ours == read_metrics(tmp_path / "single" / "metrics.jsonl") and "cycle_a" in ours[0]
    assert read_metrics(tmp_path / "pop" / "members" / "0" / "metrics.jsonl")[0]["g_loss"] != ours[0]["g_loss"]


@pytest.mark.parametrize("mode", ["skip", "stop"])
def test_divergence_guard(mode):
    cfg = make_config(*TINY, f"train.on_nonfinite={mode}")
    source = build_source(cfg.data)
    family = build_family(cfg, source)
    poisoned = dataclasses.replace(family, sample=poisoned_sampler(source.sample, 0.3, "a"))
    state, _ = make_train_fn(poisoned, 20)(family.init(0), source.arrays)
    assert all(np.isfinite(x).all() for x in _leaves((state.nets, state.extra)))
    if mode == "skip":
        assert 0 < int(state.nonfinite_skipped) < 20 and int(state.step) == 20
    else:
        assert 0 <= int(state.nonfinite_step) < 20 and int(state.step) == int(state.nonfinite_step)
        assert int(state.nonfinite_what) & 1  # g_loss (bit 0)


def test_sample_eval_and_translation_metrics(tmp_path):
    """A run with label-preservation metrics (tiny classifiers); gan-jax-sample both ways from its test split
    and from a file of RGB images of another size; gan-jax-eval on it."""
    from gan_jax.cli.evaluate import evaluate_run
    from gan_jax.cli.sample import sample_run
    from gan_jax.config import EvalRunConfig, SampleConfig

    run_dir = tmp_path / "run"
    overrides = (*TINY, *RUN, "train.steps=10", "eval.metrics=[auto]", "eval.classifier_steps=20")
    summary = train(make_config(*overrides, f"eval.cache_dir={tmp_path / 'cache'}"), run_dir)
    last = read_metrics(run_dir / "metrics.jsonl")[-1]
    for key in ("a2b_label_acc", "b2a_label_acc", "a2b_source_only_acc", "a_ceiling_acc", "b_ceiling_acc",
                "a2b_cfid", "b2a_ckid", "a2b_cycle_l1", "label_acc"):  # fmt: skip
        assert np.isfinite(last[key]), key
    assert summary["best"]["metric"] == "label_acc"
    assert (run_dir / "plots" / "a2b.png").is_file() and (run_dir / "plots" / "b2a.png").is_file()

    out = tmp_path / "b2a.npz"
    sample_run(SampleConfig(run_dir=str(run_dir), n=6, out=str(out), direction="b2a", input="test"))
    got = np.load(out)
    assert got["inputs"].shape == got["samples"].shape == got["reconstructions"].shape == (6, 16, 16, 1)
    assert out.with_suffix(".png").is_file()
    translated, _ = load(run_dir).translate(got["inputs"], "b2a")
    np.testing.assert_array_equal(got["samples"], to_uint8(translated))

    rgb = tmp_path / "rgb.npz"
    np.savez(rgb, x=np.random.default_rng(0).integers(0, 256, (5, 24, 24, 3), dtype=np.uint8))
    sample_run(SampleConfig(run_dir=str(run_dir), n=4, out=str(tmp_path / "f.npz"), input=str(rgb)))
    assert np.load(tmp_path / "f.npz")["samples"].shape == (4, 16, 16, 1)
    for bad, message in (({"direction": "ab"}, "a2b or b2a"), ({"input": "nowhere"}, "not test, train")):
        with pytest.raises(ConfigError, match=message):
            sample_run(SampleConfig(run_dir=str(run_dir), out=str(tmp_path / "x.npz"), **bad))

    record = evaluate_run(EvalRunConfig(run_dir=str(run_dir), metrics=["cycle_l1"]))
    assert record["step"] == 10 and np.isfinite(record["values"]["cycle_l1"])
    assert json.loads((run_dir / "eval.json").read_text())["values"] == record["values"]


# --- devices: jit over a 2-device mesh and pmap, in a subprocess (the device count is fixed at JAX start) ---------


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree_util.tree_leaves(tree)])


def _run_on(devices: int, backend: str, steps: int) -> dict:
    from gan_jax.train.sharding import Plan

    cfg = make_config(*TINY, "train.batch_size=4", f"parallel.devices={devices}", f"parallel.backend={backend}")
    plan, source = Plan(cfg), build_source(cfg.data)
    family = build_family(cfg, source)
    state, arrays = plan.init_state(family), plan.place(source.arrays)
    fn = plan.train_fn(lambda c: build_family(c, source), family, 1, state, arrays)
    state, metrics = fn(state, arrays)
    first = plan.host_metrics(metrics)
    for _ in range(steps - 1):
        state, metrics = fn(state, arrays)
    return {"metrics": first, "last": plan.host_metrics(metrics), "state": jax.device_get(state)}


def _pmap_replicas(steps: int) -> dict[str, np.ndarray]:
    """Both devices' own pools after `steps` pmapped steps (the Plan keeps replica 0's; here both are kept)."""
    from gan_jax.families.base import Layout
    from gan_jax.train.sharding import AXIS
    from gan_jax.train.step import train_steps

    cfg = make_config(*TINY, "train.batch_size=4")
    source = build_source(cfg.data)
    family = build_family(cfg, source).with_layout(Layout(axis_name=AXIS, replicas=2))
    stack = lambda tree: jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), tree)  # noqa: E731
    state, _ = jax.pmap(train_steps(family, steps), axis_name=AXIS)(stack(family.init(0)), stack(source.arrays))
    return {d: np.asarray(state.extra[f"pool_{d}"]) for d in "ab"}


def _devices_worker() -> None:
    assert jax.device_count() == 2, jax.devices()
    one, mesh = _run_on(1, "jit", 4), _run_on(2, "jit", 4)
    keys = ("g_loss", "d_loss", "cycle_a", "idt_b", "d_a_loss")
    pmap, copies = _run_on(2, "pmap", 4)["state"], _pmap_replicas(4)
    report = {
        "first_step": max(abs(mesh["metrics"][k] - one["metrics"][k]) / abs(one["metrics"][k]) for k in keys),
        # Not the weights: the convs before instance norm have biases whose true gradient is 0; Adam turns their
        # float noise into +-lr steps, so those differ by up to 2 lr per step while every output agrees.
        "losses_at_4": max(abs(mesh["last"][k] - one["last"][k]) / abs(one["last"][k]) for k in keys),
        "pools_after_4": float(np.max(np.abs(_flat(mesh["state"].extra) - _flat(one["state"].extra)))),
        "pmap_copies": [len(copies[d]) for d in "ab"],
        "pmap_replicas_equal": all(np.array_equal(c[0], c[-1]) for c in copies.values()),
        "pmap_pool_filled": bool(np.abs(copies["a"][0]).sum() > 0),
        "pmap_step": int(np.ravel(np.asarray(pmap.step))[0]),
        "pmap_finite": bool(np.isfinite(_flat(pmap.nets)).all()),
    }
    print("RESULT " + json.dumps(report), flush=True)


def test_two_devices_mesh_equals_one_and_pmap_keeps_pools_replicated():
    """jit over a 2-device mesh: the same global batch as one device, so the same losses, weights and pools up
    to reduction order. pmap: each device draws its half, the pools take the gathered whole batch, so both
    replicas hold the same pools (a replicated state that checkpoints and resumes as one)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_NUM_CPU_DEVICES": "2"}
    proc = subprocess.run(
        [sys.executable, __file__, "--devices-worker"], capture_output=True, text=True, env=env,
        cwd=Path(__file__).parent, timeout=600,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT ") :])
    assert r["first_step"] < 1e-5 and r["losses_at_4"] < 1e-4 and r["pools_after_4"] < 1e-3, r
    assert r["pmap_step"] == 4 and r["pmap_finite"], r
    assert r["pmap_copies"] == [2, 2] and r["pmap_replicas_equal"] and r["pmap_pool_filled"], r


if __name__ == "__main__" and "--devices-worker" in __import__("sys").argv:
    _devices_worker()

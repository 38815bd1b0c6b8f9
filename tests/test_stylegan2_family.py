"""The stylegan2 family through the family contract: presets and their errors, the reference's phase schedule
(lazy R1 / path length, ADA's p every ada_interval steps, EMA ramp-up), exact resume with p and the image counter,
populations, the divergence guard, `gan-jax-sample` modes, and no slow XLA:CPU convolution in the compiled step.
Tiny networks on the 8x8 digits; the networks' faithfulness is tests/test_stylegan2_nets.py's."""

from __future__ import annotations

import dataclasses
import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import StopAtSecondChunk, make_config, poisoned_sampler

from gan_jax.api import load
from gan_jax.data.source import build_source
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.families.stylegan2 import lazy_optimizer
from gan_jax.logging import read_metrics
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.train.loop import train
from gan_jax.train.step import make_train_fn, train_steps

TINY = (
    "model=stylegan2",
    "optim=stylegan2",
    "data=digits",
    "data.resolution=8",
    "model.z_dim=8",
    "model.w_dim=8",
    "model.mapping_layers=2",
    "model.channel_base=64",
    "model.channel_max=8",
    "model.mbstd_group_size=2",
    "model.r1_every=4",
    "model.pl_every=2",
    "model.ada_interval=2",
    "model.ada_kimg=0.05",  # p moves by 4 * 2 / 50 = 0.16 per adjustment: visible within a few steps
    "model.ema_kimg=0.01",
    "model.ema_rampup=0.05",
    "train.batch_size=4",
    "logger=none",
    "logger.progress=false",
    "eval.metrics=[]",
    "eval.num_samples=8",
)
# XLA:CPU hands a conv to its library only with NHWC/HWIO labels and no window reversal (test_dcgan's criterion).
_CONV = re.compile(r"convolution\(.*?window=\{([^}]*)\}, dim_labels=(\S+?),")
LEAN = ("model.ada_target=0", "model.pl_weight=0")  # generic contract tests: fewer phases compile faster
RUN = ("train.steps_per_call=4", "train.log_every=4", "train.ckpt_every=8", "eval.every=8")


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def _setup(*overrides: str):
    cfg = make_config(*TINY, *overrides)
    source = build_source(cfg.data)
    return cfg, source, build_family(cfg, source)


def test_presets_compose_and_bad_configs_are_one_line():
    cifar = make_config("experiment=stylegan2_cifar10", "logger=none")
    m = cifar.model
    assert (m.mapping_layers, m.mbstd_group_size, m.d_architecture, m.g_architecture) == (2, 32, "orig", "skip")
    assert (m.r1_gamma, m.pl_weight, m.style_mixing_prob, m.ema_kimg, m.ema_rampup) == (0.01, 0.0, 0.0, 500.0, 0.05)
    assert (cifar.train.batch_size, cifar.optim.g.lr, cifar.optim.d.b1, cifar.optim.d.b2) == (64, 0.0025, 0.0, 0.99)
    fashion = make_config("experiment=stylegan2_fashion", "logger=none")
    assert fashion.data.name == "fashion_mnist" and fashion.data.resolution == 32 and fashion.model.name == "stylegan2"
    cases = [
        ((*TINY, "loss=hinge"), "set loss=ns"),
        (("model=stylegan2", "data=ring"), "generates images"),
        ((*TINY, "model.d_architecture=dense"), "model.d_architecture='dense' is not a valid choice"),
        ((*TINY, "train.n_critic=2"), "set train.n_critic=1"),
        ((*TINY, "loss.r1_gamma=1.0"), r"model\.r1_gamma"),
        ((*TINY, "model.ada_target=1.5"), r"model\.ada_target=1\.5 must be in \[0, 1\]"),
        ((*TINY, "train.ema_decay=0.999"), r"model\.ema_kimg"),
    ]
    for overrides, message in cases:
        with pytest.raises(ConfigError, match=message):
            make_config(*overrides)
    with pytest.raises(ConfigError, match="power-of-two resolution"):
        _setup("data.resolution=28")
    with pytest.raises(ConfigError, match=r"model\.augpipe=.nope. is not a valid choice"):
        _setup("model.augpipe=nope")


def test_lazy_regularisation_rescales_adam_as_the_reference():
    """lr *= k / (k + 1) and betas **= k / (k + 1) (training_loop.py), for the regularised network only."""
    cfg = make_config(*TINY)
    ratio = 4 / 5
    ours = lazy_optimizer(cfg.optim.d, 4, 100, regularized=True)
    theirs = optax.adam(0.0025 * ratio, b1=0.0**ratio, b2=0.99**ratio, eps=1e-8)
    params = {"w": jnp.arange(3.0)}
    grads = [{"w": jnp.array([0.3, -1.0, 2.0])}, {"w": jnp.array([-0.1, 0.5, 0.2])}]
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    for g in grads:
        u_ours, s_ours = ours.update(g, s_ours, params)
        u_theirs, s_theirs = theirs.update(g, s_theirs, params)
        np.testing.assert_allclose(u_ours["w"], u_theirs["w"], rtol=1e-6)
    plain = lazy_optimizer(cfg.optim.d, 4, 100, regularized=False).update(grads[0], ours.init(params), params)[0]
    np.testing.assert_allclose(plain["w"], -0.0025 * np.sign(grads[0]["w"]), rtol=1e-4)


def test_phases_follow_the_reference_schedule_with_fast_convolutions():
    """Step by step: R1 at steps divisible by r1_every, path length at those divisible by pl_every (both at step
    0, as the reference's batch_idx % interval == 0), p adjusted after steps where (step + 1) % ada_interval == 0
    from that window's sign statistics, the EMA equal to G at step 0 (ramp-up: a half-life of 0 images), and the
    image counter in the state. The same compiled step (Gmain; Greg's path length, a second-order gradient
    through the synthesis; Dmain; Dreg's R1, a second-order gradient through D; ADA) has only fast-path
    convolutions on XLA:CPU: NHWC/HWIO labels and no window reversal (the criterion of test_dcgan)."""
    _, source, family = _setup()
    assert [p.name for p in family.phases()] == ["Gmain", "Greg", "Dmain", "Dreg", "tick"]
    assert family.num_ws == 4 and family.augment is not None
    state = family.init(0)
    options = {"xla_backend_optimization_level": 0, **cpu_compiler_options()}
    fn = jax.jit(train_steps(family, 1)).lower(state, source.arrays).compile(options)
    convs = _CONV.findall(fn.as_text())
    assert len(convs) > 40
    assert not [c for c in convs if "rhs_reversal" in c[0] or c[1] != "b01f_01io->b01f"]
    p_before = 0.0
    for step in range(8):
        state, metrics = fn(state, source.arrays)
        m = {k: float(v) for k, v in metrics.items()}
        assert (m["r1_penalty"] > 0) == (step % 4 == 0), (step, m)
        assert (m["pl_penalty"] > 0) == (step % 2 == 0), (step, m)
        p = float(state.extra["augment_p"])
        if (step + 1) % 2 == 0:
            window = m["ada_rt"]  # the window's mean sign, read before the reset
            expected = max(p_before + np.sign(window - 0.6) * 4 * 2 / 50, 0.0)
            assert p == pytest.approx(expected, abs=1e-6), (step, window)
            assert float(state.extra["ada_sign_count"]) == 0.0
        else:
            assert p == p_before
        if step == 0:
            for e, w in zip(_leaves(state.nets["G"].ema), _leaves(state.nets["G"].params), strict=True):
                np.testing.assert_array_equal(e, w)
        p_before = p
    assert int(state.extra["nimg"]) == 32 and float(state.extra["pl_mean"]) > 0
    ema, params = _leaves(state.nets["G"].ema), _leaves(state.nets["G"].params)
    assert any(not np.array_equal(e, w) for e, w in zip(ema, params, strict=True))


def test_resume_continues_p_counters_and_lazy_phases_exactly(tmp_path, monkeypatch):
    """8 + 8 steps equal 16 bit for bit: metrics, G, its EMA, w_avg, D, both Adams, ADA's p and its sign
    window, pl_mean and the image counter (the reference's resume resets p and kimg: its issues #81, #61)."""
    loop = importlib.import_module("gan_jax.train.loop")
    ada = ("model.augment_p=0.3", "model.ada_kimg=1")  # p > 0 throughout, adapted by 0.008 every 2 steps
    cfg = make_config(*TINY, *RUN, *ada, "train.steps=16")
    train(cfg, tmp_path / "straight")
    monkeypatch.setattr(loop, "StopRequests", StopAtSecondChunk)
    stopped = train(cfg, tmp_path / "resumed")
    assert stopped["step"] == 8 and stopped["stopped_by"] == "SIGTERM"
    monkeypatch.undo()
    train(make_config(*TINY, *RUN, *ada, "train.steps=16", "train.resume=true"), tmp_path / "resumed")
    ours, theirs = (read_metrics(tmp_path / d / "metrics.jsonl") for d in ("resumed", "straight"))
    assert len(theirs) == 4 and ours == theirs
    a, b = load(tmp_path / "straight").state, load(tmp_path / "resumed").state
    assert int(a.step) == 16 and int(a.extra["nimg"]) == 64 and float(a.extra["augment_p"]) > 0
    for x, y in zip(_leaves((a.nets, a.extra)), _leaves((b.nets, b.extra)), strict=True):
        np.testing.assert_array_equal(x, y)


def test_population_member_is_its_single_run(tmp_path):
    common = (*TINY, *LEAN, *RUN, "train.steps=8")
    pop = make_config(*common, "train.population=2", "population.seeds=[3,4]", "population.lr_g=[1e-3,3e-3]")
    train(pop, tmp_path / "pop")
    from gan_jax.config import member_config

    train(member_config(pop, 1), tmp_path / "single")
    ours = read_metrics(tmp_path / "pop" / "members" / "1" / "metrics.jsonl")
    assert ours == read_metrics(tmp_path / "single" / "metrics.jsonl") and "augment_p" in ours[0]
    assert read_metrics(tmp_path / "pop" / "members" / "0" / "metrics.jsonl")[0]["g_loss"] != ours[0]["g_loss"]


def test_divergence_guard_names_what_went_non_finite():
    """NaN reals: the guard stops at the first bad step with d_loss flagged (the guard itself, both modes, is
    tests/test_faults.py's; here the family's own finite checks)."""
    _, source, family = _setup(*LEAN)
    poisoned = dataclasses.replace(family, sample=poisoned_sampler(source.sample, 0.3))
    state, _ = make_train_fn(poisoned, 12)(family.init(0), source.arrays)
    assert all(np.isfinite(x).all() for x in _leaves((state.nets, state.extra)))
    assert 0 <= int(state.nonfinite_step) < 12 and int(state.step) == int(state.nonfinite_step)
    assert int(state.nonfinite_what) & (1 << 3)  # d_loss: the reals are NaN


def test_sample_modes(tmp_path):
    """gan-jax-sample: truncation ψ = 0 with constant noise gives one image (every w is w_avg); the style-mixing
    grid is (rows + 1) x (cols + 1) with the plain rows and columns on its edges; interpolation strips start and
    end at their seeds' images; bad modes are one line."""
    from gan_jax.cli.sample import sample_run
    from gan_jax.config import SampleConfig

    run_dir = tmp_path / "run"
    train(make_config(*TINY, *LEAN, *RUN, "train.steps=4"), run_dir)

    def draw(name: str, **kw) -> np.ndarray:
        out = tmp_path / f"{name}.npz"
        sample_run(SampleConfig(run_dir=str(run_dir), out=str(out), **kw))
        assert out.with_suffix(".png").is_file()
        return np.load(out)["samples"]

    flat = draw("psi0", n=5, truncation_psi=0.0)
    assert flat.shape == (5, 8, 8, 1) and all(np.array_equal(flat[0], x) for x in flat)
    plain = draw("plain", n=5, seed=3)
    assert len({x.tobytes() for x in plain}) > 1
    grid = draw("mix", mode="style_mixing", row_seeds=[3, 4], col_seeds=[5, 6, 7])
    assert grid.shape == (12, 8, 8, 1)
    _same_image(grid[4], plain[0])  # row seed 3 opens its row
    _same_image(grid[3], plain[4])  # column seed 7 ends the top row
    strips = draw("interp", mode="interpolation", interp_seeds=[3, 5], interp_frames=4)
    assert strips.shape == (4, 8, 8, 1)
    _same_image(strips[0], plain[0])
    _same_image(strips[-1], plain[2])
    for bad, message in (({"mode": "zoom"}, "sampling mode"), ({"noise_mode": "loud"}, "noise_mode")):
        with pytest.raises(ConfigError, match=message):
            draw("bad", **bad)


def _same_image(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to one grey level: other batch shapes (and w + (w' - w) * 1) may round the last bit apart."""
    assert np.max(np.abs(a.astype(int) - b.astype(int))) <= 1


_CONV = re.compile(r"convolution\(.*?window=\{([^}]*)\}, dim_labels=(\S+?),")

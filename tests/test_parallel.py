"""Data parallelism, pmap and populations (gan_jax/train/sharding.py, population.py, distributed.py).

The device count is fixed when JAX starts, so the multi-device checks run in one subprocess with 8 CPU devices
(`python tests/test_parallel.py --devices-worker`); it prints one JSON line of measured differences and the
assertions are made here. Tolerances, from the issue: the first step's losses and gradients agree within 1e-5
(relative) across 1, 2 and 8 devices; parameters within 1e-3 after 10 Adam steps (Adam divides by the gradient's
running RMS, which amplifies reduction-order noise in small gradients).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import make_config

from gan_jax.errors import ConfigError

TINY = ("model.g_widths=[32,32]", "model.d_widths=[32,32]", "model.z_dim=4", "train.batch_size=64")
RUN = (*TINY, "eval.num_samples=200", "logger.mode=disabled", "logger.progress=false")


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree_util.tree_leaves(tree)])


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Largest elementwise difference relative to the larger array's scale (max |value|)."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30))


# --- the 8-device worker ------------------------------------------------------------------------------------------


def _jit_run(devices: int, calls: int) -> dict:
    """One step per dispatch over `devices` devices: first-step metrics and Adam moments, and the final params."""
    from gan_jax.data.source import build_source
    from gan_jax.families.catalog import build_family
    from gan_jax.train.sharding import Plan

    cfg = make_config(*TINY, f"parallel.devices={devices}")
    plan = Plan(cfg)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state, arrays = plan.init_state(gan), plan.place(source.arrays)
    fn = plan.train_fn(lambda c: build_family(c, source), gan, 1, state, arrays)
    state, metrics = fn(state, arrays)
    first = {
        "metrics": plan.host_metrics(metrics),
        # Adam's first moment after one update is (1 - b1) * gradient: the first step's gradients, exactly scaled.
        "d_grad": _flat(jax.device_get(state.nets["D"].opt[0].mu)) / (1 - cfg.optim.d.b1),
        "g_grad": _flat(jax.device_get(state.nets["G"].opt[0].mu)) / (1 - cfg.optim.g.b1),
    }
    for _ in range(calls - 1):
        state, _ = fn(state, arrays)
    sharding = str(jax.tree_util.tree_leaves(state)[0].sharding)
    hlo = fn.compiled.as_text() if hasattr(fn, "compiled") else ""
    return {
        **first,
        "params": _flat(jax.device_get((state.nets["G"].params, state.nets["D"].params))),
        "sharding": sharding,
        "all_reduce": "all-reduce" in hlo,  # the batch really is split: gradients are reduced across devices
    }


def _pmap_against_per_device_reference(devices: int) -> dict:
    """pmap with SGD (linear in the gradient): one step must equal the mean over devices of single-device steps,
    each on its own B/N examples drawn from fold_in(fold_in(key, step), device index)."""
    from gan_jax.data.source import build_source
    from gan_jax.families.base import Layout
    from gan_jax.families.catalog import build_family
    from gan_jax.families.gan import critic_update, generator_update
    from gan_jax.train.sharding import Plan

    sgd = ("optim.g.name=sgd", "optim.d.name=sgd", "optim.g.lr=0.1", "optim.d.lr=0.1")
    cfg = make_config(*TINY, *sgd, f"parallel.devices={devices}", "parallel.backend=pmap")
    plan = Plan(cfg)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state0 = gan.init(cfg.seed)
    fn = plan.train_fn(lambda c: build_family(c, source), gan, 1, plan.init_state(gan), source.arrays)
    state, metrics = fn(plan.init_state(gan), source.arrays)

    local = gan.with_layout(Layout(replicas=devices))  # one device's share of the batch, no collectives
    step_keys = [jax.random.fold_in(jax.random.fold_in(state0.key, 0), i) for i in range(devices)]
    critic = jax.jit(critic_update, static_argnums=0)  # one compilation for every device's reference
    generator = jax.jit(generator_update, static_argnums=0)
    d_runs = [critic(local, state0, source.arrays, jax.random.split(jax.random.fold_in(k, 0), 1)[0]) for k in step_keys]
    d_params = jax.tree_util.tree_map(lambda *xs: sum(xs) / devices, *[s.nets["D"].params for s, _ in d_runs])
    after_d = state0.replace(nets={**state0.nets, "D": state0.nets["D"].replace(params=d_params)})
    g_runs = [generator(local, after_d, source.arrays, jax.random.fold_in(k, 1)) for k in step_keys]
    g_params = jax.tree_util.tree_map(lambda *xs: sum(xs) / devices, *[s.nets["G"].params for s, _ in g_runs])
    d_loss = float(np.mean([float(m["d_loss"]) for _, m in d_runs]))
    g_loss = float(np.mean([float(m["g_loss"]) for _, m in g_runs]))
    delta_d = _flat(d_params) - _flat(state0.nets["D"].params)
    delta_g = _flat(g_params) - _flat(state0.nets["G"].params)
    return {
        "d_update": float(np.max(np.abs(_flat(state.nets["D"].params) - _flat(d_params))) / np.max(np.abs(delta_d))),
        "g_update": float(np.max(np.abs(_flat(state.nets["G"].params) - _flat(g_params))) / np.max(np.abs(delta_g))),
        "d_loss": abs(float(metrics["d_loss"]) - d_loss) / abs(d_loss),
        "g_loss": abs(float(metrics["g_loss"]) - g_loss) / abs(g_loss),
        "step": int(state.step),
    }


def _batch_norm_over_the_global_batch() -> dict:
    """The DCGAN critic in training mode on 16 images over 8 devices: under jit (batch sharded over the mesh) and
    under pmap (per-device slices, BatchNorm averaging over the device axis) it must normalise with the
    statistics of all 16, like one device: same logits, same updated running averages."""
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from gan_jax.families.base import Layout
    from gan_jax.models.dcgan import DCGANCritic
    from gan_jax.train.sharding import AXIS

    critic = DCGANCritic(resolution=28, channels=1)
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 28, 28, 1)) * 2.0 + 0.5
    variables = critic.init(jax.random.PRNGKey(1), x, train=False)

    def forward(module, x, layout=Layout()):  # noqa: B008
        logits, updates = layout.apply(module, variables, x, train=True, mutable=["batch_stats"])
        return logits, updates["batch_stats"]

    one = jax.jit(lambda x: forward(critic, x))(x)
    mesh = Mesh(np.asarray(jax.devices()), (AXIS,))
    sharded = jax.jit(lambda x: forward(critic, x))(jax.device_put(x, NamedSharding(mesh, P(AXIS))))
    # Any BatchNorm is synced under pmap by the layout (no list of model classes).
    sync = Layout(axis_name=AXIS, replicas=8)
    pmapped = jax.pmap(lambda x: forward(critic, x, sync), axis_name=AXIS)(x.reshape(8, 2, 28, 28, 1))
    pmapped = (pmapped[0].reshape(16), jax.tree_util.tree_map(lambda v: v[0], pmapped[1]))
    return {name: _rel(_flat(one), _flat(other)) for name, other in (("jit", sharded), ("pmap", pmapped))}


def _population_member_vs_single_run(backend: str, steps: int = 200) -> dict:
    """Member 1 of a population (seeds 3, 4; learning rates 1e-4, 5e-4) against the single run with its seed and
    learning rate, `steps` steps on `backend` over all devices: are the final states equal bit for bit?"""
    from gan_jax.config import member_config
    from gan_jax.data.source import build_source
    from gan_jax.families.catalog import build_family
    from gan_jax.train.population import member_state
    from gan_jax.train.sharding import Plan

    def final(cfg):
        plan, source = Plan(cfg), build_source(cfg.data)
        family = build_family(cfg, source)
        state, arrays = plan.init_state(family), plan.place(source.arrays)
        fn = plan.train_fn(lambda c: build_family(c, source), family, steps, state, arrays)
        return jax.device_get(fn(state, arrays)[0])

    pop_cfg = make_config(
        *TINY,
        f"parallel.backend={backend}",
        "train.population=2",
        "population.seeds=[3,4]",
        "population.lr_g=[1e-4,5e-4]",
    )
    member, single = member_state(final(pop_cfg), 1), final(member_config(pop_cfg, 1))
    pairs = list(zip(jax.tree_util.tree_leaves(member), jax.tree_util.tree_leaves(single), strict=True))
    return {
        "identical": all(np.array_equal(a, b) for a, b in pairs),
        "max_diff": max(float(np.max(np.abs(np.asarray(a, np.float64) - b))) for a, b in pairs),
        "step": int(single.step),
    }


def _devices_worker() -> None:
    assert jax.device_count() == 8, jax.devices()
    runs = {d: _jit_run(d, calls=10) for d in (1, 2, 8)}
    one = runs[1]
    report: dict = {"jit": {}, "pmap": {}}
    for d in (2, 8):
        run = runs[d]
        report["jit"][d] = {
            "losses": max(
                abs(run["metrics"][k] - one["metrics"][k]) / abs(one["metrics"][k]) for k in ("d_loss", "g_loss")
            ),
            "d_grad": _rel(one["d_grad"], run["d_grad"]),
            "g_grad": _rel(one["g_grad"], run["g_grad"]),
            "params_after_10": float(np.max(np.abs(one["params"] - run["params"]))),
            "sharding": run["sharding"],
            "all_reduce": run["all_reduce"],
        }
    report["pmap"][8] = _pmap_against_per_device_reference(8)  # 2 devices: the same code, one more compilation
    report["batch_norm"] = _batch_norm_over_the_global_batch()
    report["pmap_population"] = _population_member_vs_single_run("pmap")
    print("RESULT " + json.dumps(report), flush=True)


@pytest.fixture(scope="module")
def device_report() -> dict:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_NUM_CPU_DEVICES": "8"}
    proc = subprocess.run(
        [sys.executable, __file__, "--devices-worker"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parent,
        timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.parametrize("devices", ["2", "8"])
def test_sharded_devices_match_one_device(device_report, devices):
    """jit over a NamedSharding mesh: the same global batch, so the same numbers up to reduction order."""
    r = device_report["jit"][devices]
    assert "NamedSharding" in r["sharding"] and r["all_reduce"], r  # state on the mesh, batch split over it
    assert r["losses"] < 1e-5, r
    assert r["d_grad"] < 1e-5 and r["g_grad"] < 1e-5, r
    assert r["params_after_10"] < 1e-3, r


def test_pmap_equals_mean_of_per_device_steps(device_report):
    """pmap on 8 devices: per-device streams (fold_in device index), gradients and losses averaged over devices."""
    r = device_report["pmap"]["8"]
    assert r["step"] == 1
    assert r["d_update"] < 1e-4 and r["g_update"] < 1e-4, r
    assert r["d_loss"] < 1e-5 and r["g_loss"] < 1e-5, r


def test_pmap_population_member_is_its_single_run_bit_for_bit(device_report):
    """Populations under pmap (8 devices): member 1 after 200 steps equals its own single pmap run exactly."""
    r = device_report["pmap_population"]
    assert r["step"] == 200 and r["identical"], r


def test_batch_norm_statistics_span_all_devices(device_report):
    r = device_report["batch_norm"]
    assert r["jit"] < 1e-5 and r["pmap"] < 1e-5, r


# --- in-process: one device -------------------------------------------------------------------------------------


def test_population_member_is_its_single_run_bit_for_bit(tmp_path, capsys):
    """Member i of a population (own seed and learning rate; population.batching=map, the default) trains exactly
    like the single run with those values: the same metrics.jsonl, bit for bit, over 200 steps, and the same
    samples from `gan-jax-sample member=i`. Re-running the best member of a sweep alone reproduces it. A member
    that diverges (member 2, learning rate 1e30) is frozen and reported while the others train on."""
    from gan_jax.cli.sample import sample_run
    from gan_jax.config import SampleConfig, member_config
    from gan_jax.logging import read_metrics
    from gan_jax.train.loop import train

    common = (*RUN, "train.steps=200", "train.steps_per_call=100", "train.log_every=50", "train.ckpt_every=100")
    pop_cfg = make_config(*common, "train.population=3", "population.seeds=[3,4,5]", "population.lr_g=[1e-4,5e-4,1e30]")
    train(pop_cfg, tmp_path / "pop")
    single_cfg = member_config(pop_cfg, 1)
    assert (single_cfg.seed, single_cfg.optim.g.lr, single_cfg.train.population) == (4, 5e-4, 1)
    train(single_cfg, tmp_path / "single")

    summary = json.loads((tmp_path / "pop" / "summary.json").read_text())
    assert summary["population"] == 3 and [m["seed"] for m in summary["members"]] == [3, 4, 5]
    assert "population member 2: non-finite" in capsys.readouterr().err
    assert summary["members"][1]["hparams"] == {"optim.g.lr": 5e-4}
    ours = read_metrics(tmp_path / "pop" / "members" / "1" / "metrics.jsonl")
    theirs = read_metrics(tmp_path / "single" / "metrics.jsonl")
    assert len(ours) >= 5 and ours == theirs  # every logged loss, gradient norm and evaluation value
    other = read_metrics(tmp_path / "pop" / "members" / "0" / "metrics.jsonl")
    assert other[0]["d_loss"] != ours[0]["d_loss"]  # members really differ
    top = read_metrics(tmp_path / "pop" / "metrics.jsonl")
    assert "m0/d_loss" in top[0] and "m1/d_loss" in top[0]
    assert (tmp_path / "pop" / "members" / "1" / "plots" / "samples.png").is_file()

    outs = {}
    for name, run_dir, member in (("pop", tmp_path / "pop", 1), ("single", tmp_path / "single", None)):
        sample_run(SampleConfig(run_dir=str(run_dir), n=200, seed=0, out=str(tmp_path / f"{name}.npz"), member=member))
        outs[name] = np.load(tmp_path / f"{name}.npz")["samples"]
    np.testing.assert_array_equal(outs["pop"], outs["single"])
    with pytest.raises(ConfigError, match="member=I"):
        sample_run(SampleConfig(run_dir=str(tmp_path / "pop"), n=10, out=str(tmp_path / "x.npz")))


def test_vmapped_population_and_any_numeric_key_by_path(tmp_path):
    """population.batching=vmap batches the members (reduction-order noise only), and population.vary takes any
    numeric key by its dotted path with no code for it (here the R1 weight and G's EMA decay)."""
    from gan_jax.config import member_config
    from gan_jax.logging import read_metrics
    from gan_jax.train.loop import train

    common = (*RUN, "train.steps=20", "train.steps_per_call=10", "train.log_every=10", "train.ckpt_every=20")
    vary = ("population.vary={loss.r1_gamma:[0.1,1.0]}", "train.ema_decay=0.9", "loss.r1_gamma=0.5")
    pop_cfg = make_config(*common, *vary, "train.population=2", "population.batching=vmap")
    assert pop_cfg.population.vary == {"loss.r1_gamma": [0.1, 1.0]}
    train(pop_cfg, tmp_path / "pop")
    single_cfg = member_config(pop_cfg, 1)
    assert single_cfg.loss.r1_gamma == 1.0 and single_cfg.seed == pop_cfg.seed + 1
    train(single_cfg, tmp_path / "single")
    ours = read_metrics(tmp_path / "pop" / "members" / "1" / "metrics.jsonl")
    theirs = read_metrics(tmp_path / "single" / "metrics.jsonl")
    for a, b in zip(ours, theirs, strict=True):
        assert a.keys() == b.keys()
        for key in set(b) & {"d_loss", "g_loss", "r1"}:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4, err_msg=key)
    summary = json.loads((tmp_path / "pop" / "summary.json").read_text())
    assert [m["hparams"] for m in summary["members"]] == [{"loss.r1_gamma": 0.1}, {"loss.r1_gamma": 1.0}]


def test_population_vary_refuses_what_cannot_vary(tmp_path):
    from gan_jax.train.loop import train

    with pytest.raises(ConfigError, match=r"population\.vary: 'loss\.nope' is not a config key"):
        make_config("train.population=2", "population.vary={loss.nope:[1,2]}")
    with pytest.raises(ConfigError, match="only numeric keys"):
        make_config("train.population=2", "population.vary={loss.name:[1,2]}")
    with pytest.raises(ConfigError, match=r"train\.n_critic cannot vary"):  # it sets the program's loop count
        cfg = make_config(*RUN, "train.steps=2", "train.population=2", "population.vary={train.n_critic:[1,2]}")
        train(cfg, tmp_path / "run")


@pytest.mark.parametrize(
    ("overrides", "must_name"),
    [
        (("train.population=2", "population.lr_g=[1e-4]"), "population.lr_g"),
        (("train.population=2", "population.batching=loop"), "population.batching"),
        (("population.gp_weight=[1.0]",), "loss=wgan_gp"),
        (("parallel.devices=two",), "parallel.devices"),
        (("parallel.num_processes=2", "parallel.process_id=2"), "parallel.process_id"),
    ],
)
def test_bad_parallel_config_names_key(overrides, must_name):
    with pytest.raises(ConfigError, match=must_name.replace(".", r"\.")):
        make_config(*overrides)


def test_more_devices_than_exist_is_a_clear_error():
    from gan_jax.train.sharding import Plan

    with pytest.raises(ConfigError, match=r"parallel\.devices=64"):
        Plan(make_config("parallel.devices=64"))


def test_distributed_settings_from_config_slurm_and_nothing():
    from gan_jax.train.distributed import distributed_settings, first_host

    assert distributed_settings(make_config(), env={}) is None
    explicit = make_config(
        "parallel.coordinator_address=10.0.0.1:1234", "parallel.num_processes=4", "parallel.process_id=3"
    )
    s = distributed_settings(explicit, env={})
    assert (s.coordinator_address, s.num_processes, s.process_id, s.local_device_ids) == ("10.0.0.1:1234", 4, 3, None)
    with pytest.raises(ConfigError, match="process_id"):
        distributed_settings(make_config("parallel.coordinator_address=h:1"), env={})
    slurm = {  # srun over 2 nodes x 4 tasks (one GPU per task); task 6 is the third task on the second node
        "SLURM_JOB_ID": "4242",
        "SLURM_STEP_ID": "0",
        "SLURM_NTASKS": "8",
        "SLURM_PROCID": "6",
        "SLURM_LOCALID": "2",
        "SLURM_STEP_NUM_NODES": "2",
        "SLURM_STEP_NODELIST": "gpu[017-018]",
    }
    s = distributed_settings(make_config(), env=slurm)
    assert (s.coordinator_address, s.num_processes, s.process_id, s.local_device_ids) == ("gpu017:24242", 8, 6, [2])
    one_task_per_node = {**slurm, "SLURM_NTASKS": "2", "SLURM_PROCID": "1", "SLURM_LOCALID": "0"}
    assert distributed_settings(make_config(), env=one_task_per_node).local_device_ids is None  # all its GPUs
    batch_script = {k: v for k, v in slurm.items() if k != "SLURM_STEP_ID"}  # sbatch's shell, not an srun task
    assert distributed_settings(make_config(), env=batch_script) is None
    assert [first_host(x) for x in ("node7", "a[01-04],b2", "n[3,5-7]")] == ["node7", "a01", "n3"]


def test_pmap_syncs_every_batch_norm_of_any_module():
    """Under pmap the layout syncs each nn.BatchNorm it meets, in any module (a user's own, nested, with no
    axis_name field): no list of model classes. On a pmap of one device it must equal the plain call, and the
    interceptor must have set the axis (a pmean over an unknown axis would fail to trace)."""
    import flax.linen as nn

    from gan_jax.families.base import Layout

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.BatchNorm(use_running_average=False)(nn.Dense(3)(x))

    class UserNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            return Block()(Block()(x))

    net, x = UserNet(), jax.random.normal(jax.random.PRNGKey(0), (6, 4)) * 3.0
    variables = net.init(jax.random.PRNGKey(1), x)
    plain, _ = net.apply(variables, x, mutable=["batch_stats"])
    seen = []

    def spy(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, nn.BatchNorm):
            seen.append(context.module.axis_name)
        return out

    def synced(x):
        with nn.intercept_methods(spy):
            return Layout(axis_name="data").apply(net, variables, x, mutable=["batch_stats"])[0]

    out = jax.pmap(synced, axis_name="data", devices=jax.devices()[:1])(x[None])
    np.testing.assert_allclose(np.asarray(out[0]), np.asarray(plain), rtol=1e-5, atol=1e-6)
    assert seen and all(name == "data" for name in seen), seen


if __name__ == "__main__" and "--devices-worker" in sys.argv:
    _devices_worker()

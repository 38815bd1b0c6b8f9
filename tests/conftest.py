"""Shared test helpers: compose real configs the way the CLI does, and keep W&B offline and local."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from gan_jax.cli.common import CONFIG_DIR, expand_dict_overrides
from gan_jax.config import Config, register_configs, to_config

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def adult_dir() -> Path:
    """The shared Adult CSVs: $GAN_JAX_DATA, the checkout's shared/, or the workspace's."""
    here = Path(__file__).resolve()
    roots = [os.environ.get("GAN_JAX_DATA"), here.parents[1] / "shared" / "data", SHARED_DATA]
    for root in roots:
        if root and (Path(root) / "adult" / "adult_train.csv").is_file():
            return Path(root) / "adult"
    return Path("/nonexistent/adult")


def make_config(*overrides: str) -> Config:
    """The typed config `gan-jax-train <overrides>` would run, composed by Hydra from configs/."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return to_config(compose("config", overrides=expand_dict_overrides(overrides)))


def poisoned_sampler(sample, rate: float, field: str = "x"):
    """A family's sampler that turns `field` of a pseudo-random share `rate` of its batches into NaN (the
    divergence guard tests)."""
    import jax
    import jax.numpy as jnp

    def draw(arrays, key, n):
        batch = sample(arrays, key, n)
        poison = jax.random.uniform(jax.random.fold_in(key, 7)) < rate
        return {**batch, field: jnp.where(poison, jnp.nan, batch[field])}

    return draw


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (the default in pyproject.toml): one worker per core, at most 4, since each worker holds its own
    JAX, torch and XLA caches (about 1.5 GB) and the CLI tests start processes of their own."""
    return max(1, min(4, os.cpu_count() or 1))


# Test files in about descending CPU time (measured with two workers). Workers take whole files in collection
# order, so the long ones start first and the workers finish close together (longest-processing-time first).
# A file not listed runs after these, in pytest's order; a stale list only costs balance.
class StopAtSecondChunk:
    """Stands in for the signal handler (train.preemption.StopRequests) in the resume tests: a stop request once
    the loop asks the second time, i.e. after its second chunk of steps, as a SIGTERM then would be seen."""

    def __init__(self) -> None:
        self.reads = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    @property
    def requested(self) -> str | None:
        self.reads += 1
        return "SIGTERM" if self.reads >= 2 else None


HEAVY_FILES_FIRST = (
    "test_stylegan2_family.py",
    "test_experiments.py",
    "test_cyclegan_family.py",
    "test_faults.py",
    "test_cli.py",
    "test_train_step.py",
    "test_conditional.py",
    "test_tabular_train.py",
    "test_parallel.py",
    "test_multihost.py",
    "test_packing.py",
    "test_eval.py",
    "test_sweep.py",
    "test_cyclegan_step_parity.py",
    "test_cyclegan_nets.py",
    "test_device_check.py",
    "test_ada.py",
    "test_fashion_classifier.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
    """One persistent XLA compilation cache per test session, shared by the xdist workers and the CLI
    subprocesses: tests that build the same program (a run and its resume, the same tiny model in several tests,
    the same small jitted helpers) compile it once. Every program is stored, however fast its compile; a fresh
    session starts empty, so no test depends on an earlier run."""
    import jax

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's popen-gwN
    path = str(base / "xla_cache")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    yield
    jax.config.update("jax_compilation_cache_dir", None)


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path_factory.getbasetemp() / "wandb-config"))
    # One cache per test session (classifier weights, reference statistics), never the user's ~/.cache.
    monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path_factory.getbasetemp() / "gan_jax_cache"))
    if "GAN_JAX_DATA" not in os.environ and SHARED_DATA.is_dir():
        monkeypatch.setenv("GAN_JAX_DATA", str(SHARED_DATA))

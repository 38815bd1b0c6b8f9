"""Devices and the run's layout: where the per-replica train step of `train/step.py` runs, and how many of it.

* **Data parallel over devices** (`parallel.devices=all|N`). `parallel.backend=jit` (default) compiles one
  program for a 1-D device mesh with axis `data`: the state and the dataset are replicated (`NamedSharding`
  with `P()`), the global batch is laid out along `data` (`P("data")`), and XLA inserts the gradient
  all-reduce; BatchNorm computes its statistics over the global batch with nothing special. `backend=pmap`
  runs one replica per device, each on batch_size / N examples: gradients, metrics and BatchNorm statistics
  are averaged over the `data` axis explicitly (the family's `layout`; every BatchNorm of any model is synced
  by `Layout.apply`).
* **Processes** (multi-host, `train/distributed.py`): the mesh spans every process's devices (process-major, so
  each process holds a contiguous part of every batch).
* **Populations** (`train/population.py`): the step vmapped over a leading member axis.

Randomness. Under jit the global batch is drawn once from `fold_in(key, step)`, exactly as on one device, and
JAX's partitionable threefry gives the same numbers however the draw is sharded: 1, 2 or 8 devices (or 2
processes) train on the same examples and differ only in the order of floating-point reductions. Under pmap each
device draws its own B/N examples from `fold_in(fold_in(key, step), device index)`: statistically equivalent,
not the same numbers. On one device with one member nothing here touches the step: `make_train_fn` runs as is.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.config import Config, member_config, population_values
from gan_jax.errors import ConfigError
from gan_jax.families.base import Layout, Metrics
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.train import population as pop
from gan_jax.train.distributed import any_process, initialize_distributed, is_primary
from gan_jax.train.state import TrainState
from gan_jax.train.step import TrainFn, make_train_fn, train_steps

AXIS = "data"  # the device axis of the mesh (jit) and of pmap
FamilyFor = Callable[[Config], Any]  # config -> family (the run's builder, applied to a member's config)


def select_devices(cfg: Config) -> list[jax.Device]:
    """`parallel.devices` of each process (all, or the first N), process-major over all processes."""
    local = jax.local_devices()
    wanted = len(local) if str(cfg.parallel.devices) == "all" else int(cfg.parallel.devices)
    if wanted > len(local):
        kind = local[0].platform.upper()
        raise ConfigError(
            f"parallel.devices={wanted} but this process sees {len(local)} {kind} device(s); use parallel.devices=all "
            f"or a number up to {len(local)}"
        )
    by_process: dict[int, list[jax.Device]] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    return [d for index in sorted(by_process) for d in by_process[index][:wanted]]


def _replicated(x: Any, sharding: NamedSharding) -> jax.Array:
    """A global array with a full copy of `x` on every device of the mesh (works across processes)."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _replicated(x: Any, sharding: NamedSharding) -> jax.Array:
    """A global array with a full copy of `x` on every device of the mesh (works across processes)."""
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


class Plan:
    """How one run is laid out; the loop asks it for the initial state, the compiled train function, host
    values of the metrics, and (for populations) per-member loggers and evaluators."""

    def __init__(self, cfg: Config) -> None:
        initialize_distributed(cfg)  # before anything touches a device
        self.cfg = cfg
        self.backend = cfg.parallel.backend
        self.population = cfg.train.population
        self.process_count = jax.process_count()
        self.process_id = jax.process_index()
        self.is_main = is_primary()
        self.devices = select_devices(cfg)
        self.seeds = pop.member_seeds(cfg)
        self.values = pop.member_values(cfg)
        n = len(self.devices)
        if cfg.train.batch_size % n:
            raise ConfigError(
                f"train.batch_size={cfg.train.batch_size} does not split evenly over {n} devices; use a multiple of "
                f"{n} or set parallel.devices"
            )
        if self.backend == "pmap":
            if self.process_count > 1:
                raise ConfigError("parallel.backend=pmap runs in one process; use parallel.backend=jit across hosts")
            if (cfg.train.batch_size // n) % cfg.model.pack:
                raise ConfigError(
                    f"parallel.backend=pmap gives each of {n} devices {cfg.train.batch_size // n} examples, which "
                    f"model.pack={cfg.model.pack} does not divide; change train.batch_size or model.pack"
                )
        sharded = self.backend == "jit" and n > 1
        self.mesh = Mesh(np.asarray(self.devices), (AXIS,)) if sharded else None
        self._scratch: Path | None = None

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def describe(self) -> dict[str, Any]:
        """For the summary: what the run ran on."""
        return {"devices": self.n_devices, "processes": self.process_count, "backend": self.backend}

    def init_state(self, family: Any) -> TrainState:
        return self.place(pop.population_state(family, self.cfg))

    def place(self, tree: Any) -> Any:
        """Replicate onto the mesh (jit over several devices); unchanged otherwise."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P())
        return jax.tree_util.tree_map(lambda x: _replicated(x, sharding), tree)

    def member(self, state: TrainState, i: int) -> TrainState:
        return state if self.population == 1 else pop.member_state(state, i)

    def layout(self) -> Layout:
        if self.backend == "pmap":
            return Layout(axis_name=AXIS, replicas=self.n_devices)
        if self.mesh is not None:
            return Layout(batch_sharding=NamedSharding(self.mesh, P(AXIS)))
        return Layout()

    def train_fn(self, family_for: FamilyFor, family: Any, steps: int, state: TrainState, arrays: dict) -> TrainFn:
        """`steps` fused train steps, compiled for this layout: `state, metrics = fn(state, arrays)`. Metrics
        are scalars, or arrays [population] for a population. `family_for(cfg)` rebuilds the family for a
        member's config (with traced values)."""
        layout = self.layout()
        if self.mesh is None and self.population == 1 and self.backend != "pmap":
            return make_train_fn(family, steps).lower(state, arrays).compile()  # the one-device program
        run = self._members_fn(family_for, family, steps, layout)
        extra = () if self.population == 1 else ({k: jnp.asarray(v) for k, v in self.values.items()},)
        if self.backend == "pmap":
            return self._pmap_fn(run, state, arrays, extra)
        return self._compile(run, state, arrays, tuple(self.place(x) for x in extra))

    def _members_fn(self, family_for: FamilyFor, family: Any, steps: int, layout: Layout) -> Callable[..., Any]:
        """The per-replica function: one run, or every member (`population.batching`): `map` runs the members
        one after another inside the program, each exactly its single run's computation (bit for bit); `vmap`
        batches them (faster on accelerators; equal to reduction-order noise)."""
        if self.population == 1:
            return train_steps(family.with_layout(layout), steps)
        cfg = self.cfg

        def one(si: TrainState, a: dict, vi: dict) -> tuple[TrainState, Metrics]:
            member = family_for(pop.with_member_values(cfg, vi)).with_layout(layout)
            return train_steps(member, steps)(si, a)

        def run(s: TrainState, a: dict, values: dict) -> tuple[TrainState, Metrics]:
            if cfg.population.batching == "vmap":
                return jax.vmap(lambda si, vi: one(si, a, vi))(s, values)
            return jax.lax.map(lambda sv: one(sv[0], a, sv[1]), (s, values))

        return run

    def _compile(self, run: Callable[..., Any], state: TrainState, arrays: dict, extra: tuple) -> TrainFn:
        options: dict[str, Any] = {}
        if self.mesh is not None:
            rep = NamedSharding(self.mesh, P())
            options = {"in_shardings": (rep,) * (2 + len(extra)), "out_shardings": (rep, rep)}
        jitted = jax.jit(run, donate_argnums=0, compiler_options=cpu_compiler_options(), **options)
        compiled = self._lower(jitted, state, arrays, *extra)

        def call(s: TrainState, a: dict) -> tuple[TrainState, Metrics]:
            return compiled(s, a, *extra)

        call.compiled = compiled  # type: ignore[attr-defined]  # for inspection (tests look for the all-reduce)
        return call

    def _lower(self, fn: Any, *args: Any) -> Any:
        """Compiles; a varied key that shapes the program (a width, a step count) is named in one line."""
        try:
            return fn.lower(*args).compile()
        except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError, TypeError) as err:
            if not self.values:
                raise
            raise pop.structural_keys_error(list(self.values), err) from err

    def _pmap_fn(self, run: Callable[..., Any], state: TrainState, arrays: dict, extra: tuple) -> TrainFn:
        n = self.n_devices
        stacked = NamedSharding(Mesh(np.asarray(self.devices), (AXIS,)), P(AXIS))

        def replicate(tree: Any) -> Any:
            return jax.tree_util.tree_map(lambda x: jax.device_put(jnp.stack([x] * n), stacked), tree)

        pmapped = jax.pmap(run, axis_name=AXIS, devices=self.devices, donate_argnums=0)
        local_arrays, local_extra = replicate(arrays), replicate(extra)  # once: they stay on every device
        compiled = self._lower(pmapped, replicate(state), local_arrays, *local_extra)

        def call(s: TrainState, a: dict) -> tuple[TrainState, Metrics]:
            del a  # replicated above
            new, metrics = compiled(replicate(s), local_arrays, *local_extra)
            return jax.tree_util.tree_map(lambda x: x[0], (new, metrics))  # replicas are identical

        return call

    # host side

    def host_metrics(self, metrics: Metrics) -> dict[str, Any]:
        """Floats; per-member lists of floats for a population."""
        values = jax.device_get(metrics)
        if self.population == 1:
            return {k: float(v) for k, v in values.items()}
        return {k: [float(x) for x in np.asarray(v)] for k, v in values.items()}

    def host_value(self, x: jax.Array) -> int | list[int]:
        values = np.asarray(jax.device_get(x))
        return int(values) if self.population == 1 else [int(v) for v in values]

    def any_process(self, flag: bool) -> bool:
        return any_process(flag)

    def output_dir(self, run_dir: Path) -> Path:
        """Where this process writes plots: the run directory on process 0, a scratch directory elsewhere (every
        process evaluates, since sampling is a collective computation, but only process 0 keeps the files)."""
        if self.is_main:
            return run_dir
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"gan_jax_process{jax.process_index()}_"))
            atexit.register(shutil.rmtree, self._scratch, ignore_errors=True)
        return self._scratch

    def member_logs(self, logger: Any, run_dir: Path, resume_step: int | None) -> Any:
        """The run's Logger, or for a population a PopulationLogger over it and one file logger per member."""
        if self.population == 1:
            return logger
        from omegaconf import OmegaConf

        from gan_jax.logging import Logger

        dirs = pop.member_dirs(run_dir, self.population)
        members = [
            Logger(
                dirs[i],
                OmegaConf.to_container(OmegaConf.structured(member_config(self.cfg, i)), resolve=True),
                wandb_mode="disabled",  # the run's W&B run gets every member's values, prefixed m<i>/
                resume_step=resume_step,
                show_progress=False,
                is_main=self.is_main,
            )
            for i in range(self.population)
        ]
        info = [{"member": i, "seed": self.seeds[i], "hparams": self.member_values(i)} for i in range(self.population)]
        return pop.PopulationLogger(logger, members, dirs, info)

    def member_values(self, i: int) -> dict[str, float]:
        """Member i's own values, by the config key they replace (e.g. {"optim.g.lr": 2e-4})."""
        return {key: values[i] for key, values in population_values(self.cfg).items()}

    def member_evaluators(self, make: Callable[[Config], Any], out_dir: Path) -> Any:
        """`make(cfg)` builds one evaluator; a population gets one per member (its seed fixes its eval samples)."""
        if self.population == 1:
            return make(self.cfg)
        evaluators = [make(member_config(self.cfg, i)) for i in range(self.population)]
        dirs = [out_dir / "members" / str(i) / "plots" for i in range(self.population)]
        return pop.PopulationEvaluator(evaluators, dirs)

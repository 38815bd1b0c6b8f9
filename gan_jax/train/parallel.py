"""Devices, processes and populations: where the per-replica train step of `step.py` runs, and how many of it.

Three independent ways to scale one run (README: Scaling out):

* **Data parallel over devices** (`parallel.devices=all|N`). `parallel.backend=jit` (default) compiles one
  program for a 1-D device mesh with axis `data`: the state and the dataset are replicated (`NamedSharding`
  with `P()`), the global batch is laid out along `data` (`P("data")`), and XLA inserts the gradient
  all-reduce; BatchNorm computes its statistics over the global batch with nothing special. `backend=pmap`
  runs one replica per device, each on batch_size / N examples: gradients, metrics and BatchNorm statistics
  are averaged over the `data` axis explicitly (`gan.axis_name`).
* **Processes** (multi-host): `jax.distributed` joins processes into one set of devices and the mesh spans all
  of them (process-major, so each process holds a contiguous part of every batch).
* **Populations** (`train.population=N`): N independent GANs as one state with a leading member axis; the
  train step is vmapped over it, with per-member seeds and hyperparameters (traced, so one compilation).

Randomness. The key convention stays `fold_in(key, step)`. Under jit the global batch is drawn once from that
key, exactly as on one device, and JAX's partitionable threefry (the default) gives the same numbers however
the draw is sharded, with each device computing only its own rows. So 1, 2 or 8 devices (or 2 processes)
train on the same examples, latents, dropout masks and penalty interpolates and differ only in the order of
floating-point reductions: runs are comparable, and resumable, across device counts. Under pmap each device
draws its own B/N examples from `fold_in(fold_in(key, step), device index)`: the classic per-device streams,
statistically equivalent but not the same numbers as one device (its equivalence is tested against the
per-device reference instead). Population member i draws from its own root key (its seed).

On one device with one member nothing here touches the step: the plain `make_train_fn` runs, bit for bit.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gan_jax.build import GAN, build_optimizer
from gan_jax.config import Config, PopulationConfig
from gan_jax.errors import ConfigError, warn
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.train.state import GANState, init_state
from gan_jax.train.step import Metrics, SampleFn, TrainFn, make_train_fn, train_steps

AXIS = "data"  # the device axis of the mesh (jit) and of pmap
HPARAM_KEYS = {"lr_g": "optim.g.lr", "lr_d": "optim.d.lr", "gp_weight": "loss.gp_weight"}  # population.* -> key

# --- processes: jax.distributed -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedSettings:
    """Arguments for `jax.distributed.initialize`, and where they came from (for messages)."""

    coordinator_address: str
    num_processes: int
    process_id: int
    local_device_ids: list[int] | None = None  # None: every local device (e.g. all GPUs of a node)
    source: str = "config"


def _env_int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    return int(value) if value not in (None, "") else None


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list: 'node[003-005,9],gpu1' -> 'node003'."""
    match = re.match(r"([^,\[]+)(\[([^\],\-]+))?", nodelist.strip())
    if not match:
        raise ConfigError(f"cannot read the SLURM node list {nodelist!r}; set parallel.coordinator_address=HOST:PORT")
    return match.group(1) + (match.group(3) or "")


def _port_for(job_id: str) -> int:
    """A coordinator port that differs between jobs sharing a node (in [20000, 40000))."""
    digits = re.sub(r"\D", "", job_id) or "0"
    return 20000 + int(digits) % 20000


def distributed_settings(cfg: Config, env: Mapping[str, str] | None = None) -> DistributedSettings | None:
    """How this process joins a multi-process run, or None for a single process. In order: the config
    (`parallel.coordinator_address`, `num_processes`, `process_id`) or the same as JAX_COORDINATOR_ADDRESS /
    JAX_NUM_PROCESSES / JAX_PROCESS_ID; a hydra-submitit-launcher job with several tasks; a SLURM job step
    (srun) with several tasks. With several tasks per node each task takes one local device (one GPU per
    task); with one task per node it takes them all."""
    env = os.environ if env is None else env
    p = cfg.parallel
    address = p.coordinator_address or env.get("JAX_COORDINATOR_ADDRESS")
    if address:
        num = p.num_processes if p.num_processes is not None else _env_int(env, "JAX_NUM_PROCESSES")
        pid = p.process_id if p.process_id is not None else _env_int(env, "JAX_PROCESS_ID")
        if num is None or pid is None:
            raise ConfigError(
                f"parallel.coordinator_address={address} needs parallel.num_processes and parallel.process_id "
                "(or JAX_NUM_PROCESSES and JAX_PROCESS_ID) for every process"
            )
        if not 0 <= pid < num:
            raise ConfigError(f"parallel.process_id={pid} must be in [0, parallel.num_processes={num})")
        return DistributedSettings(address, num, pid, None, "config")
    if p.num_processes not in (None, 1) or p.process_id not in (None, 0):
        raise ConfigError(
            "parallel.num_processes / parallel.process_id need parallel.coordinator_address=HOST:PORT (process 0's "
            "address, the same for every process)"
        )
    if env.get("SUBMITIT_EXECUTOR") in ("slurm", "local"):
        return _submitit_settings(env)
    slurm = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")
    if all(k in env for k in slurm) and int(env["SLURM_NTASKS"]) > 1:  # inside srun, not the batch script
        nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "localhost"
        num, pid = int(env["SLURM_NTASKS"]), int(env["SLURM_PROCID"])
        num_nodes = _env_int(env, "SLURM_STEP_NUM_NODES") or _env_int(env, "SLURM_JOB_NUM_NODES") or 1
        port = _env_int(env, "JAX_COORDINATOR_PORT") or _port_for(env["SLURM_JOB_ID"])
        local = [int(env["SLURM_LOCALID"])] if num // num_nodes > 1 else None
        return DistributedSettings(f"{first_host(nodes)}:{port}", num, pid, local, "slurm")
    return None


def _submitit_settings(env: Mapping[str, str]) -> DistributedSettings | None:
    import submitit  # present wherever the submitit launcher runs jobs

    job = submitit.JobEnvironment()
    if job.num_tasks <= 1:
        return None
    host = "127.0.0.1" if env.get("SUBMITIT_EXECUTOR") == "local" else first_host(job.hostnames[0])
    port = _env_int(env, "JAX_COORDINATOR_PORT") or _port_for(job.raw_job_id)
    local = [job.local_rank] if job.num_tasks // job.num_nodes > 1 else None
    return DistributedSettings(f"{host}:{port}", job.num_tasks, job.global_rank, local, "submitit")


def initialize_distributed(cfg: Config) -> None:
    """Join the other processes of the run, if there are any. Must run before any JAX computation; a second
    call (e.g. the next job of a sweep in the same process) does nothing."""
    if jax.distributed.is_initialized():
        return
    settings = distributed_settings(cfg)
    timeout = cfg.parallel.init_timeout_s
    if settings is None:
        if cfg.parallel.auto:  # Cloud TPU pod slices, Open MPI, Kubernetes: JAX finds the peers itself
            jax.config.update("jax_enable_preemption_service", False)
            jax.distributed.initialize(initialization_timeout=timeout)
        return
    # Stop signals are ours (train.preemption: every process stops at the same step, agreed over a collective);
    # JAX's preemption service would also catch SIGTERM and steer orbax's saves differently per process.
    jax.config.update("jax_enable_preemption_service", False)
    jax.distributed.initialize(
        settings.coordinator_address,
        settings.num_processes,
        settings.process_id,
        local_device_ids=settings.local_device_ids,
        cluster_detection_method="deactivate",  # we resolved everything above (JAX would pin one GPU per task)
        initialization_timeout=timeout,
    )


def is_primary() -> bool:
    """Process 0: the one that writes logs, plots, summaries and checkpoint manifests."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """True on every process when it is True on any (e.g. a stop signal that reached only some of them)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray(flag, np.int32))))


def requeued() -> bool:
    """A SLURM job that the scheduler (or submitit) requeued after a preemption or time limit."""
    return (_env_int(os.environ, "SLURM_RESTART_COUNT") or 0) > 0


def requeue_with_submitit(stopped_by: str | None) -> None:
    """A hydra-submitit SLURM job that a scheduler signal stopped has its checkpoint now: raise submitit's preemption
    signal again so that its handler (ours was active during training) requeues the job, which then resumes."""
    if stopped_by in (None, "SIGINT") or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
        return
    signal.raise_signal(signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")])


# --- devices ----------------------------------------------------------------------------------------------------


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


def _with_axis(module: Any) -> Any:
    """The module with its BatchNorm layers averaging statistics over pmap's device axis."""
    from gan_jax.models.mlp import MLPCritic, MLPGenerator
    from gan_jax.models.packing import PackedCritic

    if isinstance(module, PackedCritic):
        return module.clone(critic=_with_axis(module.critic))
    if "axis_name" in {f.name for f in dataclasses.fields(module)}:
        return module.clone(axis_name=AXIS)
    if isinstance(module, MLPGenerator | MLPCritic):
        return module  # no batch statistics
    raise ConfigError(
        f"parallel.backend=pmap cannot average the batch statistics of {type(module).__name__} across devices; "
        "use parallel.backend=jit (the default)"
    )


# --- populations ------------------------------------------------------------------------------------------------


def member_seeds(cfg: Config) -> list[int]:
    """Seeds of the population members: `population.seeds`, or seed, seed + 1, ..."""
    return list(cfg.population.seeds) or [cfg.seed + i for i in range(cfg.train.population)]


def member_hparams(cfg: Config) -> dict[str, np.ndarray]:
    """The per-member hyperparameters given as lists, as float32 arrays [population] (empty: none vary)."""
    return {k: np.asarray(v, np.float32) for k in HPARAM_KEYS if (v := getattr(cfg.population, k))}


def member_config(cfg: Config, i: int) -> Config:
    """The single-run config that member i of a population equals (its seed and hyperparameters)."""
    pop = cfg.population
    optim, loss = cfg.optim, cfg.loss
    if pop.lr_g:
        optim = dataclasses.replace(optim, g=dataclasses.replace(optim.g, lr=float(pop.lr_g[i])))
    if pop.lr_d:
        optim = dataclasses.replace(optim, d=dataclasses.replace(optim.d, lr=float(pop.lr_d[i])))
    if pop.gp_weight:
        loss = dataclasses.replace(loss, gp_weight=float(pop.gp_weight[i]))
    train = dataclasses.replace(cfg.train, population=1)
    return dataclasses.replace(
        cfg, seed=member_seeds(cfg)[i], optim=optim, loss=loss, train=train, population=PopulationConfig()
    )


def member_gan(cfg: Config, gan: GAN, hparams: Mapping[str, Any]) -> GAN:
    """The GAN of one member inside the vmapped step: per-member values are tracers, so every member shares one
    compiled program. Optimizers are rebuilt around the traced learning rate (their state has the same shape)."""
    changes: dict[str, Any] = {}
    if "lr_g" in hparams:
        changes["g_tx"] = build_optimizer(dataclasses.replace(cfg.optim.g, lr=hparams["lr_g"]), cfg.train.steps)
    if "lr_d" in hparams:
        d_cfg = dataclasses.replace(cfg.optim.d, lr=hparams["lr_d"])
        changes["d_tx"] = build_optimizer(d_cfg, cfg.train.steps * cfg.train.n_critic)
    if "gp_weight" in hparams:
        changes["gp_weight"] = hparams["gp_weight"]
    return dataclasses.replace(gan, **changes)


def stack_states(states: Sequence[GANState]) -> GANState:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def population_state(gan: GAN, cfg: Config) -> GANState:
    """The initial state of a run: one member's, or every member's stacked along a leading axis."""
    if cfg.train.population == 1:
        return init_state(gan, cfg.seed)
    return stack_states([init_state(gan, seed) for seed in member_seeds(cfg)])


def member_state(state: GANState, i: int) -> GANState:
    """Member i of a stacked population state."""
    return jax.tree_util.tree_map(lambda x: x[i], state)


# --- the plan: one run's devices, processes and members -----------------------------------------------------------


class Parallel:
    """How one run is laid out; the loop asks it for the initial state, the compiled train function, host
    values of the metrics, and (for populations) per-member loggers and evaluators."""

    def __init__(self, cfg: Config) -> None:
        initialize_distributed(cfg)  # before anything touches a device
        self.cfg = cfg
        self.backend = cfg.parallel.backend
        self.population = cfg.train.population
        self.process_count = jax.process_count()
        self.is_main = is_primary()
        self.devices = select_devices(cfg)
        self.seeds = member_seeds(cfg)
        self.hparams = member_hparams(cfg)
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

    # state and arrays

    def init_state(self, gan: GAN) -> GANState:
        return self.place(population_state(gan, self.cfg))

    def place(self, tree: Any) -> Any:
        """Replicate onto the mesh (jit over several devices); unchanged otherwise."""
        if self.mesh is None:
            return tree
        sharding = NamedSharding(self.mesh, P())
        return jax.tree_util.tree_map(lambda x: _replicated(x, sharding), tree)

    def member(self, state: GANState, i: int) -> GANState:
        return state if self.population == 1 else member_state(state, i)

    # the train function

    def train_fn(self, gan: GAN, sample: SampleFn, steps: int, state: GANState, arrays: dict) -> TrainFn:
        """`steps` fused train steps, compiled for this layout: `state, metrics = fn(state, arrays)`. Metrics
        are scalars, or arrays [population] for a population."""
        if self.backend == "pmap":
            return self._pmap_fn(gan, sample, steps, state, arrays)
        if self.mesh is None and self.population == 1:
            return make_train_fn(gan, sample, steps).lower(state, arrays).compile()  # the one-device program
        if self.mesh is not None:
            gan = dataclasses.replace(gan, batch_sharding=NamedSharding(self.mesh, P(AXIS)))
        if self.population == 1:
            run: Callable[..., Any] = train_steps(gan, sample, steps)
            extra: tuple = ()
        else:
            cfg = self.cfg

            def run(s: GANState, a: dict, h: dict) -> tuple[GANState, Metrics]:
                return jax.vmap(lambda si, hi: train_steps(member_gan(cfg, gan, hi), sample, steps)(si, a))(s, h)

            extra = (self.place({k: jnp.asarray(v) for k, v in self.hparams.items()}),)
        options: dict[str, Any] = {}
        if self.mesh is not None:
            rep = NamedSharding(self.mesh, P())
            options = {"in_shardings": (rep,) * (2 + len(extra)), "out_shardings": (rep, rep)}
        jitted = jax.jit(run, donate_argnums=0, compiler_options=cpu_compiler_options(), **options)
        compiled = jitted.lower(state, arrays, *extra).compile()

        def call(s: GANState, a: dict) -> tuple[GANState, Metrics]:
            return compiled(s, a, *extra)

        call.compiled = compiled  # type: ignore[attr-defined]  # for inspection (tests look for the all-reduce)
        return call

    def _pmap_fn(self, gan: GAN, sample: SampleFn, steps: int, state: GANState, arrays: dict) -> TrainFn:
        n = self.n_devices
        gan = dataclasses.replace(
            gan,
            axis_name=AXIS,
            batch_size=gan.batch_size // n,
            generator=_with_axis(gan.generator),
            critic=_with_axis(gan.critic),
        )
        stacked = NamedSharding(Mesh(np.asarray(self.devices), (AXIS,)), P(AXIS))

        def replicate(tree: Any) -> Any:
            return jax.tree_util.tree_map(lambda x: jax.device_put(jnp.stack([x] * n), stacked), tree)

        pmapped = jax.pmap(train_steps(gan, sample, steps), axis_name=AXIS, devices=self.devices, donate_argnums=0)
        local_arrays = replicate(arrays)  # once: the dataset stays on every device between calls
        compiled = pmapped.lower(replicate(state), local_arrays).compile()

        def run(s: GANState, a: dict) -> tuple[GANState, Metrics]:
            del a  # replicated above
            new, metrics = compiled(replicate(s), local_arrays)
            return jax.tree_util.tree_map(lambda x: x[0], (new, metrics))  # replicas are identical

        return run

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

        members = []
        for i in range(self.population):
            members.append(
                Logger(
                    run_dir / "members" / str(i),
                    OmegaConf.to_container(OmegaConf.structured(member_config(self.cfg, i)), resolve=True),
                    wandb_mode="disabled",  # the run's W&B run gets every member's values, prefixed m<i>/
                    resume_step=resume_step,
                    show_progress=False,
                    is_main=self.is_main,
                )
            )
        info = [{"member": i, "seed": self.seeds[i], "hparams": self.member_hparams(i)} for i in range(self.population)]
        return PopulationLogger(logger, members, [run_dir / "members" / str(i) for i in range(self.population)], info)

    def member_hparams(self, i: int) -> dict[str, float]:
        """Member i's own values, by the config key they replace (e.g. {"optim.g.lr": 2e-4})."""
        return {HPARAM_KEYS[k]: float(getattr(self.cfg.population, k)[i]) for k in self.hparams}

    def member_evaluators(self, make: Callable[[Config], Any], out_dir: Path) -> Any:
        """`make(cfg)` builds one evaluator; a population gets one per member (its seed fixes its eval samples)."""
        if self.population == 1:
            return make(self.cfg)
        evaluators = [make(member_config(self.cfg, i)) for i in range(self.population)]
        dirs = [out_dir / "members" / str(i) / "plots" for i in range(self.population)]
        return PopulationEvaluator(evaluators, dirs)


class PopulationEvaluator:
    """The Evaluator interface over a population: each member is sampled and scored like a single run, its
    plots go to members/<i>/plots; values come back as per-member lists."""

    def __init__(self, evaluators: list[Any], plots_dirs: list[Path]) -> None:
        self.evaluators, self.plots_dirs = evaluators, plots_dirs

    @property
    def protocol(self) -> Any:
        return getattr(self.evaluators[0], "protocol", {})

    def __call__(self, state: GANState, plots_dir: Path, title: str) -> tuple[dict[str, list], list[Path]]:
        del plots_dir  # per member, below
        values: dict[str, list] = {}
        pngs = []
        for i, evaluator in enumerate(self.evaluators):
            metrics, png = evaluator(member_state(state, i), self.plots_dirs[i], f"{title}, member {i}")
            for key, value in metrics.items():
                values.setdefault(key, [float("nan")] * len(self.evaluators))[i] = value
            pngs.append(png)
        return values, pngs


def _split(values: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-member dicts from values that are per-member lists (length n) or shared by all members."""

    def pick(v: Any, i: int) -> Any:
        return v[i] if isinstance(v, list | tuple | np.ndarray) and len(v) == n else v

    return [{k: pick(v, i) for k, v in values.items()} for i in range(n)]


class PopulationLogger:
    """The Logger interface over a population. Member i's values go to members/<i>/metrics.jsonl (the same lines
    a single run with its seed and hyperparameters writes) and its summary.json; the run's own metrics.jsonl
    and W&B run get every member's values as `m<i>/<name>`; timing stays run-level."""

    def __init__(self, top: Any, members: list[Any], member_dirs: list[Path], info: list[dict[str, Any]]) -> None:
        self.top, self.members, self.member_dirs, self.info = top, members, member_dirs, info

    @property
    def run_id(self) -> str | None:
        return self.top.run_id

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        per_member = _split(metrics, len(self.members))
        for logger, values in zip(self.members, per_member, strict=True):
            logger.log(step, values)
        self.top.log(step, {f"m{i}/{k}": v for i, values in enumerate(per_member) for k, v in values.items()})

    def log_timing(self, step: int, values: Mapping[str, float]) -> None:
        self.top.log_timing(step, values)

    def log_image(self, step: int, key: str, png: Any) -> None:
        for i, path in enumerate(png if isinstance(png, list) else [png]):
            self.top.log_image(step, f"m{i}/{key}", path)

    def advance(self, step: int) -> None:
        self.top.advance(step)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Each member's summary.json (with its seed and hyperparameters) and loss plot; the run's summary.json
        lists them under `members`."""
        from gan_jax import plots
        from gan_jax.logging import METRICS_FILE, read_metrics

        per_member = [
            {**values, **info} for values, info in zip(_split(summary, len(self.members)), self.info, strict=True)
        ]
        for logger, directory, values in zip(self.members, self.member_dirs, per_member, strict=True):
            if (directory / METRICS_FILE).is_file():
                plots.plot_losses(read_metrics(directory / METRICS_FILE), directory / "plots" / "losses.png")
            logger.finish(values)
        shared = {k: v for k, v in summary.items() if not isinstance(v, list)}
        self.top.finish({**shared, "population": len(self.members), "members": per_member})

    def close(self, exit_code: int = 0, preempted: bool = False) -> None:
        for logger in self.members:
            logger.close(exit_code=exit_code)
        self.top.close(exit_code=exit_code, preempted=preempted)


def warn_member_stopped(i: int, step: int, what: str) -> None:
    warn(
        f"population member {i}: non-finite {what} at step {step}; this member stopped (train.on_nonfinite=stop) "
        "and keeps its last good weights while the others train on"
    )

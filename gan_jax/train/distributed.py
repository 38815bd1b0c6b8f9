"""Processes: joining a multi-host run through `jax.distributed` (from the config, JAX_* variables, SLURM or
the hydra-submitit launcher), barriers, and the collective yes/no a stop signal needs.

Multi-process runs on one machine work the same way (README: Scaling out): each process feeds its slice of the
global batch, the mesh spans every process's devices, and process 0 writes the logs, plots and manifests.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass

import jax
import numpy as np

from gan_jax.config import Config
from gan_jax.errors import ConfigError


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
        # JAX aborts the process (SIGABRT) when a peer misses heartbeats this long: later than our own watchdog
        # (train.peers.PeerWatch), which reports the lost peer in one line first.
        heartbeat_timeout_seconds=int(max(100, 2 * cfg.parallel.peer_timeout_s)),
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

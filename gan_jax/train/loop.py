"""The host loop: it only schedules. Dispatch k fused steps, then log, evaluate and checkpoint on cadence.

It knows a family only through its contract (families/base.py), the data only as a DataSource, and the rest as
the Plan (devices, processes, population), the Checkpointer, the Logger and the family's evaluator. Chunk
boundaries fall exactly on every log / eval / checkpoint step, so the schedule (and with it the logged numbers)
depends only on the step count, never on when a run was started or resumed.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import jax
import numpy as np

from gan_jax import plots
from gan_jax.config import Config
from gan_jax.console import Console, eval_text
from gan_jax.data.source import source_for_run
from gan_jax.errors import ConfigError, DivergenceError, SaveError, warn
from gan_jax.evaluation import best_metric_name, is_better
from gan_jax.families.catalog import build_family
from gan_jax.logging import Logger, read_metrics
from gan_jax.train.checkpoint import Checkpointer, config_differences
from gan_jax.train.disk import disk_problem
from gan_jax.train.distributed import requeued
from gan_jax.train.peers import PeerWatch, exit_peer_lost, is_peer_loss, lost_process
from gan_jax.train.population import warn_member_stopped
from gan_jax.train.preemption import StopRequests
from gan_jax.train.run_lock import hold_run_dir
from gan_jax.train.runs import config_dict, locate_checkpoint, save_config
from gan_jax.train.sharding import Plan
from gan_jax.train.step import describe_nonfinite

# Keys a resumed run may change without comment: they steer the loop, not what the state means.
RESUME_FREE_KEYS = (
    "train.steps",
    "train.resume",
    "train.log_every",
    "train.ckpt_every",
    "train.keep_checkpoints",
    "train.steps_per_call",
    "train.best_metric",
    "train.on_nonfinite",
)


def next_boundary(step: int, cfg: Config) -> int:
    """The next step at which the host must act (log, evaluate, checkpoint or stop)."""
    periods = [cfg.train.log_every, cfg.train.ckpt_every] + ([cfg.eval.every] if cfg.eval.every > 0 else [])
    candidates = [(step // p + 1) * p for p in periods] + [cfg.train.steps]
    return min(min(candidates), step + cfg.train.steps_per_call)


def warn_config_changes(saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """On resume, say which settings differ from the checkpoint's (same shapes, so the run can go on)."""
    if not saved:
        return
    changed = [d for d in config_differences(saved, now, shared_only=True) if not d.startswith(RESUME_FREE_KEYS)]
    if saved.get("seed") != now.get("seed"):
        changed.append(f"seed: {saved.get('seed')!r} -> {now.get('seed')!r} (ignored: the checkpoint holds the key)")
    if changed:
        warn("resuming with settings that differ from the checkpoint's: " + "; ".join(changed))
    schedules = {now["optim"][k]["schedule"] for k in ("g", "d")}
    if "linear" in schedules and saved["train"]["steps"] != now["train"]["steps"]:
        warn("train.steps changed while a linear learning-rate decay is on: the decay now runs to the new step count")


@dataclass
class Run:
    """What one training run holds between chunks (host side; the state is the only device value that changes)."""

    cfg: Config
    run_dir: Path
    plan: Plan
    family: Any
    family_for: Any
    state: Any
    arrays: Any
    ckpt: Checkpointer
    config: dict[str, Any]
    logger: Any = None
    evaluator: Any = None
    best_name: str | None = None
    best: dict[str, Any] | None = None
    step: int = 0
    last_metrics: dict[str, Any] = field(default_factory=dict)
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, float] = field(default_factory=dict)
    evaluated_at: int = -1
    compile_s: float = 0.0
    stopped_members: set[int] = field(default_factory=set)
    out_dir: Path = Path(".")  # where plots go: the run directory on process 0
    console: Console | None = None
    latest_eval: str | None = None  # the newest evaluation, for the status line
    watch: PeerWatch | None = None  # multi-process runs: bounds the wait for a peer that hangs

    def checkpoint_meta(self, at: int) -> dict[str, Any]:
        return {"step": at, "wandb_run_id": self.logger.run_id, "config": self.config, "best": self.best}


def train(cfg: Config, run_dir: str | Path) -> dict[str, Any]:
    """Trains the family the config describes; writes everything into `run_dir`; returns the summary.

    A stop signal ends the run early after a checkpoint (the summary then has `stopped_by`); a non-finite value
    under `train.on_nonfinite=stop` raises DivergenceError and leaves the last good checkpoint as the newest."""
    run_dir = Path(run_dir)
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    with StopRequests() as stop:
        plan = Plan(cfg)  # devices, processes (joins jax.distributed before anything runs) and population members
        try:
            with hold_run_dir(run_dir, is_main=plan.is_main, any_process=plan.any_process):  # before any file
                return _train(cfg, run_dir, stop, plan)
        except OSError as err:  # the lock file met a full or read-only disk (later writes report their own)
            if disk_problem(err) is None:
                raise
            raise SaveError(f"{disk_problem(err)} while taking {run_dir}'s run lock; nothing was written") from err


def _train(cfg: Config, run_dir: Path, stop: StopRequests, plan: Plan) -> dict[str, Any]:
    start = start_checkpoint(cfg)
    # A resumed run keeps what its dataset fitted (a table's model space); a new run fits it (seeded) and saves it.
    source = source_for_run(
        cfg.data,
        run_dir,
        reuse_fitted=bool(cfg.train.resume),
        save_fitted=plan.is_main,
        fitted_from=start[0] if start else None,
    )

    def family_for(c: Config) -> Any:
        return build_family(c, source)

    family = family_for(cfg)
    state = plan.init_state(family)  # replicated over the devices; stacked over population members
    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.train.keep_checkpoints)
    run = Run(cfg, run_dir, plan, family, family_for, state, plan.place(source.arrays), ckpt, config_dict(cfg))
    bar = cfg.logger.progress and sys.stderr.isatty()  # as the Logger decides; with a bar, no status lines
    run.console = Console(run_dir, cfg.train.steps, bar=bar, is_main=plan.is_main)
    if plan.process_count > 1:  # a peer that hangs ends the run within parallel.peer_timeout_s
        run.watch = PeerWatch(cfg.parallel.peer_timeout_s, lambda step, limit: _exit_hung_peer(run, step, limit))
    try:
        meta = _resume(run)
        run.console.start(run.step, resumed=bool(meta), started_from=meta.get("started_from"))
        _open_outputs(run, source, meta)
        return _loop(run, stop)
    except Exception as err:
        if plan.process_count > 1 and is_peer_loss(err):  # ends the process: the clean-up below would hang
            _exit_peer_lost(run, f"lost {lost_process(str(err), plan.process_count, plan.process_id)} ({err!s:.120})")
        if run.logger is not None:
            with contextlib.suppress(OSError):  # its last flush may meet the same full disk
                run.logger.close(exit_code=1)
        if isinstance(err, OSError) and disk_problem(err) is not None:
            raise _disk_error(err, ckpt) from err
        raise
    except BaseException:
        if run.logger is not None:
            run.logger.close(exit_code=1)  # the W&B run ends as failed; metrics.jsonl keeps every line written
        raise
    finally:
        run.console.close()
        ckpt.close()


def _exit_peer_lost(run: Run, what: str, step: int | None = None) -> NoReturn:
    exit_peer_lost(" ".join(what.split()), run.step if step is None else step, run.ckpt.directory, run.plan.is_main)


def _exit_hung_peer(run: Run, step: int, limit: float) -> NoReturn:
    who = lost_process("", run.plan.process_count, run.plan.process_id)
    _exit_peer_lost(run, f"{who} stopped responding (a collective waited {limit:.0f} s; parallel.peer_timeout_s)", step)


def _disk_error(err: OSError, ckpt: Checkpointer) -> SaveError:
    """A log, plot or summary that met a full disk (or a read-only directory): one line naming the file and the
    last sealed checkpoint."""
    problem = disk_problem(err)
    return SaveError(
        f"{problem} while writing {err.filename or 'the run directory'}; the last good checkpoint is "
        f"{ckpt.last_good()}. Free space (or fix the directory), then resume with train.resume=true"
    )


def _resume(run: Run) -> dict[str, Any]:
    """Restores the latest valid checkpoint when resuming (or after a SLURM requeue); returns its metadata."""
    latest = run.ckpt.latest_step()
    resume = run.cfg.train.resume
    if latest is not None and not resume and requeued():
        warn(f"this SLURM job was requeued: resuming from the checkpoints in {run.ckpt.directory}")
        resume = True
    if latest is not None and not resume:
        raise ConfigError(
            f"{run.run_dir} already holds checkpoints up to step {latest}; pass train.resume=true to continue that "
            "run, or choose a new directory with hydra.run.dir=..."
        )
    meta: dict[str, Any] = {}
    start = start_checkpoint(run.cfg)
    if resume:
        run.ckpt.drop_unfinished()
    if resume and latest is not None:
        if start is not None:  # a fine-tuning run that was interrupted (or requeued) goes on from its own saves
            warn(f"{run.run_dir} has checkpoints of its own (up to step {latest}): continuing them, not {resume}")
        restored = run.ckpt.restore(run.state, config=run.config)
        run.state, meta = restored.state, restored.meta
        warn_config_changes(meta.get("config"), run.config)
    elif start is not None:  # train.resume=<path>: a new run that starts from another run's checkpoint
        meta = _start_from(run, *start)
    if run.plan.is_main:
        save_config(run.cfg, run.run_dir)
    run.step = int(np.max(jax.device_get(run.state.step)))  # a population: members that diverged lag behind
    run.best = meta.get("best")
    return meta


def start_checkpoint(cfg: Config) -> tuple[Path, str] | None:
    """The run directory and checkpoint that `train.resume=<path>` names (None for true/false)."""
    return locate_checkpoint(cfg.train.resume) if isinstance(cfg.train.resume, str) else None


def _start_from(run: Run, source_dir: Path, which: str) -> dict[str, Any]:
    """Fine-tuning: the whole state of another run's checkpoint (refused if its arrays do not fit this config;
    differing settings are listed). This run keeps its own W&B run, logs and best checkpoint."""
    source = Checkpointer(source_dir / "checkpoints")
    try:
        restored = source.restore(run.state, which, config=run.config, read_only=True)
    finally:
        source.close()
    run.state = restored.state
    warn_config_changes(restored.meta.get("config"), run.config)
    step = int(np.max(jax.device_get(run.state.step)))
    return {"config": restored.meta.get("config"), "started_from": f"{source_dir} ({which}, step {step})"}


def _open_outputs(run: Run, source: Any, meta: dict[str, Any]) -> None:
    """The logger (W&B run resumed by id), the evaluator(s) and the metric that picks the best checkpoint."""
    cfg, plan = run.cfg, run.plan
    # Log lines after the restored step belong to no checkpoint: a resume replays them, and those of a run that
    # died before its first save (-1: no state restored) would otherwise stay in front of the new ones.
    resume_step = run.step if meta else -1
    logger = Logger(
        run.run_dir,
        run.config,
        wandb_mode=cfg.logger.mode,
        tensorboard=cfg.logger.tensorboard,
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        name=f"{cfg.name}-s{cfg.seed}",
        group=cfg.logger.group,
        tags=cfg.logger.tags,
        run_id=meta.get("wandb_run_id"),
        resume_step=resume_step,
        total_steps=cfg.train.steps,
        start_step=run.step,
        show_progress=cfg.logger.progress,
        is_main=plan.is_main,
    )
    run.logger = plan.member_logs(logger, run.run_dir, resume_step)  # population: per member too
    out_dir = plan.output_dir(run.run_dir)  # plots: the run directory on process 0 only
    run.evaluator = plan.member_evaluators(lambda member_cfg: run.family.evaluator(member_cfg, source), out_dir)
    run.out_dir = out_dir
    if plan.population == 1:  # checkpoints/best holds one GAN
        run.best_name = best_metric_name(cfg, run.evaluator)


def _evaluate(run: Run, at: int) -> None:
    run.eval_metrics, png = run.evaluator(run.state, run.out_dir / "plots", f"{run.cfg.name} step {at}")
    if run.eval_metrics:
        run.logger.log(at, run.eval_metrics)
    run.logger.log_image(at, "samples", png)
    if getattr(run.logger, "wants_histograms", False):  # D's outputs on real and fake samples (populations: none)
        for name, values in (getattr(run.evaluator, "last_d_outputs", None) or {}).items():
            run.logger.log_histogram(at, name, values)
    for path in png if isinstance(png, list) else [png]:  # every evaluation's samples kept: samples_<step>.png
        shutil.copyfile(path, path.with_name(f"{path.stem}_{at}{path.suffix}"))
    run.evaluated_at = at
    run.latest_eval = eval_text(run.eval_metrics, at, run.best_name) or run.latest_eval
    name = run.best_name
    if name and name in run.eval_metrics and is_better(name, run.eval_metrics[name], run.best):
        run.best = {"metric": name, "value": float(run.eval_metrics[name]), "step": at}
        run.ckpt.save_best(at, run.state, run.checkpoint_meta(at))


def curve_metrics(eval_metrics: dict[str, Any], best_name: str | None, limit: int = 4) -> list[str]:
    """Which evaluation values losses.png plots over steps: the best-checkpoint metric first, then others."""
    names = [k for k, v in eval_metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    ordered = ([best_name] if best_name in names else []) + [k for k in names if k != best_name]
    return ordered[:limit]


def _check_finite(run: Run) -> None:
    """Reports a diverged run (DivergenceError) or, in a population, each member that has stopped."""
    steps = np.atleast_1d(np.asarray(jax.device_get(run.state.nonfinite_step)))
    whats = np.atleast_1d(np.asarray(jax.device_get(run.state.nonfinite_what)))
    bad = [i for i, at in enumerate(steps) if at >= 0]
    if not bad:
        return
    if len(bad) < len(steps):  # a population: a diverged member stays frozen, the others train on
        for i in sorted(set(bad) - run.stopped_members):
            warn_member_stopped(i, int(steps[i]), describe_nonfinite(run.family, int(whats[i])))
            run.stopped_members.add(i)
        return
    bad_step, what = int(steps[bad[0]]), describe_nonfinite(run.family, int(whats[bad[0]]))
    run.logger.log(bad_step, {"nonfinite_stop": 1})
    run.ckpt.wait()
    good = run.ckpt.latest_step()
    kept = (
        f"the last good checkpoint is step {good} in {run.ckpt.directory}"
        if good is not None
        else "no checkpoint had been written yet"
    )
    raise DivergenceError(
        f"non-finite {what} at step {bad_step}: the run stopped (train.on_nonfinite=stop) and {kept}. "
        "Lower the learning rate, use a gradient penalty (loss=wgan_gp) or weight clipping, or set "
        "train.on_nonfinite=skip to skip such steps."
    )


class _Clock:
    """Training time between logs, without compilation, evaluation and checkpointing."""

    def __init__(self) -> None:
        self.start, self.steps, self.paused = time.perf_counter(), 0, 0.0

    def rate(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.start - self.paused
        speed = {"steps_per_s": self.steps / max(elapsed, 1e-9)}
        self.start, self.steps, self.paused = time.perf_counter(), 0, 0.0
        return speed


def _loop(run: Run, stop: StopRequests) -> dict[str, Any]:
    cfg, plan = run.cfg, run.plan
    train_fns: dict[int, Any] = {}
    clock = _Clock()
    while run.step < cfg.train.steps:
        n = next_boundary(run.step, cfg) - run.step
        compiled = n not in train_fns  # the peers compile at their own pace: that wait is not a hang
        if compiled:
            t0 = time.perf_counter()
            train_fns[n] = plan.train_fn(run.family_for, run.family, n, run.state, run.arrays)
            run.compile_s += time.perf_counter() - t0
            clock.paused += time.perf_counter() - t0  # compilation is not training time
        run.state, metrics = train_fns[n](run.state, run.arrays)
        run.step += n
        clock.steps += n
        run.logger.advance(run.step)
        if _after_chunk(run, metrics, clock, stop, watched=not compiled):
            return _stopped(run, stop)
    if run.evaluated_at != run.step:  # a resumed run that had nothing left to train
        _evaluate(run, run.step)
    return _finish(run)


def _after_chunk(run: Run, metrics: Any, clock: _Clock, stop: StopRequests, watched: bool = True) -> bool:
    """Log, evaluate and checkpoint where the step falls on their cadence; True when a stop was requested."""
    cfg, plan, step = run.cfg, run.plan, run.step
    is_log = step % cfg.train.log_every == 0 or step == cfg.train.steps
    is_eval = (cfg.eval.every and step % cfg.eval.every == 0) or step == cfg.train.steps
    is_ckpt = step % cfg.train.ckpt_every == 0 or step == cfg.train.steps
    with _watched(run, step, watched):  # a hung peer: PeerWatch bounds the chunk's collectives and this one
        if run.watch:
            jax.block_until_ready(run.state)
        stopping = plan.any_process(stop.requested is not None)  # every process stops at the same step
    if is_log or is_eval or is_ckpt or stopping:
        _check_finite(run)  # before anything is logged or saved from a diverged state
    if is_log:
        run.last_metrics = plan.host_metrics(metrics)  # waits for the step; population: per-member lists
        if run.family.on_nonfinite == "skip":
            run.last_metrics["nonfinite_skipped_total"] = plan.host_value(run.state.nonfinite_skipped)
        run.speed = clock.rate()
        run.logger.log(step, run.last_metrics)
        run.logger.log_timing(step, run.speed)
        run.console.status(step, run.last_metrics, run.speed["steps_per_s"], run.latest_eval)
    if is_eval or is_ckpt:
        jax.block_until_ready(run.state)
        t0 = time.perf_counter()
        if is_eval:
            _evaluate(run, step)
        if is_ckpt:
            with _watched(run, step, watched):  # a collective save: a peer stopped mid-save hangs it
                run.ckpt.save(step, run.state, run.checkpoint_meta(step))
        clock.paused += time.perf_counter() - t0
    return stopping


def _watched(run: Run, step: int, watched: bool) -> contextlib.AbstractContextManager:
    """PeerWatch's timer in a multi-process run (evaluations stay unwatched: they may rightly take minutes)."""
    return run.watch.collective(step, watched) if run.watch else contextlib.nullcontext()


def _stopped(run: Run, stop: StopRequests) -> dict[str, Any]:
    signal_name = stop.requested or "a stop signal to another process"
    run.ckpt.save(run.step, run.state, run.checkpoint_meta(run.step))
    run.ckpt.wait()  # the checkpoint is whole and sealed before we report it
    warn(
        f"{signal_name} received: stopped at step {run.step} with a checkpoint in {run.ckpt.directory}; "
        "continue with train.resume=true"
    )
    run.logger.close(preempted=True)
    return {"step": run.step, "stopped_by": stop.requested or "peer", "wandb_run_id": run.logger.run_id}


def _finish(run: Run) -> dict[str, Any]:
    cfg, plan = run.cfg, run.plan
    if plan.is_main and plan.population == 1:  # members' loss plots: members/<i>/plots
        records = read_metrics(run.run_dir / "metrics.jsonl")
        curves = curve_metrics(run.eval_metrics, run.best_name)
        title = f"{cfg.name} (seed {cfg.seed}): step {run.step}"
        plots.plot_losses(records, run.run_dir / "plots" / "losses.png", title=title, metrics=curves)
    summary = {
        "step": run.step,
        "name": cfg.name,
        "seed": cfg.seed,
        **run.last_metrics,
        **run.speed,
        **run.eval_metrics,
        "best": run.best,
        "eval_protocol": run.evaluator.protocol,
        "compile_s": run.compile_s,
        **run.family.describe(plan.member(run.state, 0)),
        "device": str(jax.devices()[0].device_kind),
        **plan.describe(),
        "wandb_run_id": run.logger.run_id,
    }
    run.logger.finish(summary)
    run.console.finish(summary, run.best_name)
    return summary

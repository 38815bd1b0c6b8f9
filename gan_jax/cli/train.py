"""`gan-jax-train key=value ...`: one training run (or a sweep with -m) composed from configs/."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from gan_jax.cli.common import CONFIG_DIR, fail, precheck, run_reporting_errors
from gan_jax.cli.run_dir import live_run_problem, unwritable_problem
from gan_jax.config import one_line, to_config
from gan_jax.errors import GanJaxError

PROG = "gan-jax-train"
FAILED_FILE = "failed.json"  # in a sweep job's directory: why the job failed (the other jobs go on)
MULTIRUN_ID = "GAN_JAX_MULTIRUN_ID"  # set by SweepFailures for the jobs of one multirun (workers inherit it)
CALLBACK = "+hydra.callbacks.gan_jax_sweep._target_=gan_jax.cli.train.SweepFailures"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _app(dcfg: DictConfig) -> None:
    from gan_jax.train.distributed import requeue_with_submitit
    from gan_jax.train.loop import train  # heavy imports (jax, orbax, wandb) only once the config is known good

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir

    def job() -> Any:
        return train(to_config(dcfg), run_dir)

    if hydra_cfg.mode == RunMode.MULTIRUN:
        job = _sweep_job(Path(run_dir), hydra_cfg.job.num, job)
    summary = run_reporting_errors(PROG, job)
    stopped_by = summary.get("stopped_by") if isinstance(summary, dict) else None
    if stopped_by == "SIGINT":
        sys.exit(130)  # the shell convention for Ctrl-C; SIGTERM/SIGUSR1 stops exit 0 so schedulers requeue
    requeue_with_submitit(stopped_by)  # hydra/launcher=slurm: submitit requeues the job; it resumes by itself


def _sweep_job(job_dir: Path, num: int, job: Callable[[], Any]) -> Callable[[], Any]:
    """A sweep job that fails records why in failed.json and returns, so that Hydra runs the other jobs (our
    sys.exit(2) would end the whole basic-launcher process, or break a joblib pool); SweepFailures then sets the
    exit code. Ctrl-C (KeyboardInterrupt) still ends the sweep."""

    def guarded() -> Any:
        (job_dir / FAILED_FILE).unlink(missing_ok=True)  # a rerun into the same directory: the old failure is gone
        try:
            return job()
        except Exception as err:
            expected = isinstance(err, GanJaxError)
            if not expected:
                traceback.print_exc()  # a bug, not a bad setting: the traceback is what a fix needs
            message = str(err) if expected else one_line(err)
            _write_failure(job_dir, num, err, message, None if expected else traceback.format_exc())
            said = message if expected else f"{type(err).__name__}: {message}"
            print(f"{PROG}: error: sweep job {num} ({job_dir}): {said}", file=sys.stderr, flush=True)
            return None

    return guarded


def _write_failure(job_dir: Path, num: int, err: BaseException, message: str, trace: str | None) -> None:
    """failed.json, written atomically (a reader never sees half a record)."""
    record = {
        "error": type(err).__name__,
        "message": " ".join(message.split()),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "job": num,
        "multirun": os.environ.get(MULTIRUN_ID),
    }
    if trace:
        record["traceback"] = trace
    job_dir.mkdir(parents=True, exist_ok=True)
    tmp = job_dir / f"{FAILED_FILE}.{os.getpid()}.tmp"  # one per process: a multi-process job fails in each
    tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, job_dir / FAILED_FILE)


class SweepFailures(Callback):
    """Hydra callback (added to every -m run by main): after all jobs ran, exit 2 if any job of this multirun
    wrote failed.json. Works for every launcher whose jobs write under hydra.sweep.dir (basic, joblib, slurm)."""

    def __init__(self) -> None:
        self.started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        os.environ[MULTIRUN_ID] = uuid.uuid4().hex  # before the launcher starts any worker process

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        failed = failed_jobs(sweep_dir, os.environ.get(MULTIRUN_ID), self.started)
        if failed:
            names = ", ".join(str(p.relative_to(sweep_dir)) for p in failed)
            print(
                f"{PROG}: error: {len(failed)} sweep job(s) failed ({names}; each has a {FAILED_FILE}), the other "
                f"jobs ran; `python scripts/aggregate_sweep.py {sweep_dir}` lists every job",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(2)


def failed_jobs(sweep_dir: Path, multirun_id: str | None, since: float) -> list[Path]:
    """Job directories under `sweep_dir` whose failed.json this multirun wrote (by its id; a job that did not
    inherit the id counts when its record is newer than the multirun's start)."""
    found = []
    for path in sorted(sweep_dir.rglob(FAILED_FILE)):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        mine = record.get("multirun") == multirun_id if record.get("multirun") else path.stat().st_mtime >= since
        if mine:
            found.append(path.parent)
    return found


def _is_multirun(argv: list[str]) -> bool:
    return any(a in ("-m", "--multirun") or a.replace(" ", "") == "hydra.mode=MULTIRUN" for a in argv)


def main() -> None:
    precheck(PROG, "config", to_config)
    problem = unwritable_problem(sys.argv[1:]) or live_run_problem(sys.argv[1:])  # before Hydra writes there
    if problem:
        fail(PROG, problem)
    if _is_multirun(sys.argv[1:]):
        sys.argv.append(CALLBACK)  # a hydra.* override: not in the jobs' overrides.yaml or their configs
    _app()


if __name__ == "__main__":
    main()

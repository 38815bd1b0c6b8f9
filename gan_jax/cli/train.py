"""`gan-jax-train key=value ...`: one training run (or a sweep with -m) composed from configs/."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from gan_jax.cli.common import CONFIG_DIR, precheck, run_reporting_errors
from gan_jax.config import to_config

PROG = "gan-jax-train"


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _app(dcfg: DictConfig) -> None:
    from gan_jax.train.distributed import requeue_with_submitit
    from gan_jax.train.loop import train  # heavy imports (jax, orbax, wandb) only once the config is known good

    run_dir = HydraConfig.get().runtime.output_dir
    summary = run_reporting_errors(PROG, lambda: train(to_config(dcfg), run_dir))
    stopped_by = summary.get("stopped_by") if isinstance(summary, dict) else None
    if stopped_by == "SIGINT":
        sys.exit(130)  # the shell convention for Ctrl-C; SIGTERM/SIGUSR1 stops exit 0 so schedulers requeue
    requeue_with_submitit(stopped_by)  # hydra/launcher=slurm: submitit requeues the job; it resumes by itself


def main() -> None:
    precheck(PROG, "config", to_config)
    _app()


if __name__ == "__main__":
    main()

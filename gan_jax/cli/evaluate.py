"""`gan-jax-eval run_dir=DIR checkpoint=latest|best|STEP metrics=[...] n=N [member=I]`: score a checkpoint (of
any run: 2-D mixtures, images, tables; `member=I` of a population), write eval.json into the run directory."""

from __future__ import annotations

import json
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from gan_jax.cli.common import CONFIG_DIR, precheck, run_reporting_errors
from gan_jax.config import EvalRunConfig
from gan_jax.errors import ConfigError

PROG = "gan-jax-eval"
EVAL_FILE = "eval.json"


def to_eval_config(dcfg: object) -> EvalRunConfig:
    try:
        obj = OmegaConf.to_object(dcfg)  # type: ignore[arg-type]
    except Exception as err:
        raise ConfigError("run_dir is required: gan-jax-eval run_dir=DIR [checkpoint=best] [n=N]") from err
    if obj.n < 0:
        raise ConfigError(f"n={obj.n} must be >= 0 (0 = the run's eval.num_samples)")
    if obj.checkpoint not in ("latest", "best") and not str(obj.checkpoint).isdigit():
        raise ConfigError(f"checkpoint={obj.checkpoint!r} must be latest, best or a step number")
    return obj


def evaluate_run(cfg: EvalRunConfig) -> dict[str, Any]:
    """Samples the checkpoint with the run's fixed evaluation key and scores it; writes and returns eval.json."""
    import dataclasses

    from gan_jax.logging import dumps_json
    from gan_jax.train.runs import locate_checkpoint, restore_run

    run_dir, checkpoint = locate_checkpoint(cfg.run_dir, cfg.checkpoint)  # a run directory or a checkpoint's path
    run, source, family, state = restore_run(run_dir, checkpoint, cfg.member)
    n = cfg.n or run.eval.num_samples
    eval_cfg = dataclasses.replace(
        run.eval, metrics=list(cfg.metrics), num_samples=n, cache_dir=cfg.cache_dir, num_real=cfg.num_real
    )
    evaluator = family.evaluator(dataclasses.replace(run, eval=eval_cfg), source)
    samples = evaluator.samples(state)
    values = evaluator.metrics(samples)
    protocol = evaluator.default_protocol(samples)
    record = {
        "run_dir": str(run_dir.absolute()),
        "checkpoint": checkpoint,
        **({"member": cfg.member} if cfg.member is not None else {}),
        "step": int(state.step),
        "sampling_weights": "ema" if any(net.ema is not None for net in state.nets.values()) else "generator",
        "values": values,
        "protocol": protocol,
    }
    text = dumps_json(record, indent=2)
    (run_dir / EVAL_FILE).write_text(text + "\n", encoding="utf-8")
    print(text)
    return json.loads(text)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def _app(dcfg: DictConfig) -> None:
    run_reporting_errors(PROG, lambda: evaluate_run(to_eval_config(dcfg)))


def main() -> None:
    precheck(PROG, "eval", to_eval_config)
    _app()


if __name__ == "__main__":
    main()

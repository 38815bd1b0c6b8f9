"""The host loop: it only schedules. Dispatch k fused steps, then log, evaluate and checkpoint on cadence.

Chunk boundaries fall exactly on every log / eval / checkpoint step, so the schedule (and with it the logged
numbers) depends only on the step count, never on when a run was started or resumed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from omegaconf import OmegaConf

from gan_jax import plots
from gan_jax.build import GAN, build_gan
from gan_jax.config import Config, to_config
from gan_jax.data.images import to_uint8
from gan_jax.data.source import DataSource, build_source
from gan_jax.errors import ConfigError
from gan_jax.logging import Logger, read_metrics
from gan_jax.metrics.mode_collapse import mixture_diagnostics, mode_counts
from gan_jax.train.checkpoint import Checkpointer
from gan_jax.train.state import GANState, count_params, init_state
from gan_jax.train.step import make_sample_fn, make_train_fn, sample_generator

EVAL_KEY_SALT = 0x5EED  # eval samples come from a fixed stream: the same z at every evaluation of a run


def next_boundary(step: int, cfg: Config) -> int:
    """The next step at which the host must act (log, evaluate, checkpoint or stop)."""
    periods = [cfg.train.log_every, cfg.train.ckpt_every] + ([cfg.eval.every] if cfg.eval.every > 0 else [])
    candidates = [(step // p + 1) * p for p in periods] + [cfg.train.steps]
    return min(min(candidates), step + cfg.train.steps_per_call)


def config_dict(cfg: Config) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def save_config(cfg: Config, run_dir: Path) -> None:
    """The resolved config beside the outputs: what `gan-jax-sample` and a resume rebuild the run from."""
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / "config.yaml", resolve=True)


def load_config(run_dir: str | Path) -> Config:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path} not found: is {run_dir} a gan_jax run directory (made by gan-jax-train)?")
    merged = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
    return to_config(merged)


class Evaluator:
    """Samples the generator in evaluation mode and computes the diagnostics that fit the data kind."""

    def __init__(self, gan: GAN, source: DataSource, cfg: Config) -> None:
        self.source, self.cfg = source, cfg
        self.num_samples = cfg.eval.num_samples if source.kind == "toy" else cfg.eval.grid_samples
        self.sample_fn = make_sample_fn(gan, min(500, self.num_samples))
        self.key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), EVAL_KEY_SALT)

    def samples(self, state: GANState) -> np.ndarray:
        return np.asarray(sample_generator(self.sample_fn, state, self.key, self.num_samples))

    def metrics(self, samples: np.ndarray) -> dict[str, float]:
        if self.source.kind != "toy":
            return {}
        return mixture_diagnostics(samples, self.source.info["means"], self.source.info["sigma"])

    def plot(self, samples: np.ndarray, plots_dir: Path, title: str) -> Path:
        """plots/samples.png (scatter over the data, or an image grid) and, for mixtures, plots/modes.png."""
        out = plots_dir / "samples.png"
        if self.source.kind == "toy":
            info = self.source.info
            real = np.asarray(self.source.sample(self.source.arrays, self.key, len(samples))["x"])
            plots.plot_samples_2d(samples, real, out, means=info["means"], title=title)
            counts = mode_counts(samples, info["means"], info["sigma"])
            plots.plot_mode_histogram(counts, plots_dir / "modes.png", title=f"{title}: high-quality samples per mode")
        else:
            plots.save_image_grid(to_uint8(samples), out)
        return out

    def __call__(self, state: GANState, plots_dir: Path, title: str) -> tuple[dict[str, float], Path]:
        samples = self.samples(state)
        return self.metrics(samples), self.plot(samples, plots_dir, title)


def train(cfg: Config, run_dir: str | Path) -> dict[str, Any]:
    """Trains the GAN the config describes; writes everything into `run_dir`; returns the summary."""
    run_dir = Path(run_dir)
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    source = build_source(cfg.data)
    gan = build_gan(cfg, source)
    state = init_state(gan, cfg.seed)
    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.train.keep_checkpoints)
    meta: dict[str, Any] = {}
    latest = ckpt.latest_step()
    if latest is not None and not cfg.train.resume:
        raise ConfigError(
            f"{run_dir} already holds checkpoints up to step {latest}; pass train.resume=true to continue that run, "
            "or choose a new directory with hydra.run.dir=..."
        )
    if cfg.train.resume and latest is not None:
        state, meta = ckpt.restore(state)
    save_config(cfg, run_dir)
    start = int(state.step)

    logger = Logger(
        run_dir,
        config_dict(cfg),
        wandb_mode=cfg.logger.mode,
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        name=f"{cfg.name}-s{cfg.seed}",
        group=cfg.logger.group,
        tags=cfg.logger.tags,
        run_id=meta.get("wandb_run_id"),
        resume_step=start if meta else None,
        total_steps=cfg.train.steps,
        start_step=start,
        show_progress=cfg.logger.progress,
    )
    evaluator = Evaluator(gan, source, cfg)
    train_fns: dict[int, Any] = {}
    compile_s = 0.0
    step, last_metrics, eval_metrics = start, {}, {}
    window_start, window_steps, paused = time.perf_counter(), 0, 0.0
    evaluated_at = -1

    def checkpoint(at: int) -> None:
        ckpt.save(at, state, {"step": at, "wandb_run_id": logger.run_id, "config": config_dict(cfg)})

    def evaluate(at: int) -> None:
        nonlocal eval_metrics, evaluated_at
        eval_metrics, png = evaluator(state, run_dir / "plots", f"{cfg.name} step {at}")
        if eval_metrics:
            logger.log(at, eval_metrics)
        logger.log_image(at, "samples", png)
        evaluated_at = at

    try:
        while step < cfg.train.steps:
            n = next_boundary(step, cfg) - step
            if n not in train_fns:
                t0 = time.perf_counter()
                train_fns[n] = make_train_fn(gan, source.sample, n).lower(state, source.arrays).compile()
                compile_s += time.perf_counter() - t0
                paused += time.perf_counter() - t0  # compilation is not training time
            state, metrics = train_fns[n](state, source.arrays)
            step += n
            window_steps += n
            logger.advance(step)
            if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}  # waits for the step
                elapsed = time.perf_counter() - window_start - paused
                last_metrics["steps_per_s"] = window_steps / max(elapsed, 1e-9)
                logger.log(step, last_metrics)
                window_start, window_steps, paused = time.perf_counter(), 0, 0.0
            is_eval = (cfg.eval.every and step % cfg.eval.every == 0) or step == cfg.train.steps
            is_ckpt = step % cfg.train.ckpt_every == 0 or step == cfg.train.steps
            if is_eval or is_ckpt:
                jax.block_until_ready(state)
                t0 = time.perf_counter()
                if is_eval:
                    evaluate(step)
                if is_ckpt:
                    checkpoint(step)
                paused += time.perf_counter() - t0
        if evaluated_at != step:  # a resumed run that had nothing left to train
            evaluate(step)
        plots.plot_losses(read_metrics(run_dir / "metrics.jsonl"), run_dir / "plots" / "losses.png")
        summary = {
            "step": step,
            "name": cfg.name,
            "seed": cfg.seed,
            **last_metrics,
            **eval_metrics,
            "compile_s": compile_s,
            "g_params": count_params(state.g_params),
            "d_params": count_params(state.d_params),
            "device": str(jax.devices()[0].device_kind),
            "wandb_run_id": logger.run_id,
        }
        logger.finish(summary)
        return summary
    finally:
        ckpt.close()

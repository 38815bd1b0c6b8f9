"""The host loop: it only schedules. Dispatch k fused steps, then log, evaluate and checkpoint on cadence.

Chunk boundaries fall exactly on every log / eval / checkpoint step, so the schedule (and with it the logged
numbers) depends only on the step count, never on when a run was started or resumed.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from gan_jax import plots
from gan_jax.build import GAN, build_gan
from gan_jax.config import Config, to_config
from gan_jax.data.images import ImageData, to_uint8
from gan_jax.data.source import DataSource, build_source, saved_table_source
from gan_jax.data.tabular import TableTransformer
from gan_jax.errors import ConfigError, DivergenceError, warn
from gan_jax.logging import Logger, read_metrics
from gan_jax.metrics.evaluator import ImageEvaluator, default_image_metrics
from gan_jax.metrics.mode_collapse import mixture_diagnostics, mode_counts
from gan_jax.metrics.table_evaluator import TableEvaluator, table_metric_names
from gan_jax.train.checkpoint import Checkpointer, config_differences
from gan_jax.train.parallel import (
    Parallel,
    member_config,
    member_state,
    population_state,
    requeued,
    warn_member_stopped,
)
from gan_jax.train.preemption import StopRequests
from gan_jax.train.state import GANState, count_params
from gan_jax.train.step import describe_nonfinite, make_sample_fn, make_table_sample_fn, sample_generator

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


def image_metric_names(cfg: Config) -> list[str]:
    """`eval.metrics` with `auto` resolved for an image dataset."""
    names = list(cfg.eval.metrics)
    if names == ["auto"]:
        return default_image_metrics(cfg.data.name, conditional=cfg.model.conditioning != "none")
    return [n for n in names if n != "none"]


def reference_split(cfg: Config) -> str:
    """What the real statistics are computed on (stored with every score)."""
    if cfg.eval.reference_split:
        return cfg.eval.reference_split
    if cfg.data.name == "digits":
        return "all"  # scikit-learn's 1,797 digits have no split
    if cfg.data.name == "npz":
        return Path(cfg.data.path or "").name
    return cfg.data.split


def restore_run(
    run_dir: str | Path, checkpoint: str = "latest", member: int | None = None, *, need_data: bool = True
) -> tuple[Config, DataSource, GAN, GANState]:
    """A trained run's config, data, GAN and the state of one checkpoint (latest valid, best, or a step).
    A population run needs `member`: its state and config are then that member's (as if it were a single run).
    `need_data=False`: a table run is rebuilt from its saved transformer alone (sampling needs no CSV)."""
    cfg = load_config(run_dir)
    transformer = saved_transformer(run_dir)
    if transformer is not None and not need_data:
        source = saved_table_source(Path(cfg.data.path or "table").stem, transformer)
    else:
        source = build_source(cfg.data, transformer)
    gan = build_gan(cfg, source)
    ckpt = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        state = ckpt.restore(population_state(gan, cfg), checkpoint, config=config_dict(cfg), read_only=True).state
    finally:
        ckpt.close()
    size = cfg.train.population
    if size > 1:
        if member is None or not 0 <= member < size:
            raise ConfigError(
                f"{run_dir} trained a population of {size} GANs; pick one with member=I (0 to {size - 1})"
            )
        return member_config(cfg, member), source, gan, member_state(state, member)
    if member not in (None, 0):
        raise ConfigError(f"member={member} applies to population runs; {run_dir} trained one GAN (drop member=)")
    return cfg, source, gan, state


def reference_images(cfg: Config, source: DataSource) -> ImageData:
    """The real images metrics compare with: the training images, or `eval.reference_split` of the same dataset."""
    split = cfg.eval.reference_split
    if not split or split == cfg.data.split:
        return source.info["images"]
    return build_source(dataclasses.replace(cfg.data, split=split)).info["images"]


TRANSFORMER_FILE = "transformer.json"


def saved_transformer(run_dir: str | Path) -> TableTransformer | None:
    """A table run's fitted transformer (its model space), so a resumed or sampled run maps rows exactly as it
    was trained; None for other runs and before the first save."""
    path = Path(run_dir) / TRANSFORMER_FILE
    return TableTransformer.load(path) if path.is_file() else None


class Evaluator:
    """Samples the generator (the EMA weights when there are some) with a fixed key and scores the samples:
    mixture diagnostics for 2-D data, the configured image metrics (with their protocol) for images."""

    def __init__(self, gan: GAN, source: DataSource, cfg: Config) -> None:
        self.source, self.cfg = source, cfg
        self.images: ImageEvaluator | None = None
        self.table: TableEvaluator | None = None
        if source.kind == "table":
            info = source.info
            names = table_metric_names(list(cfg.eval.metrics), cfg.data.target, info["test_table"] is not None)
            self.table = TableEvaluator(
                info["transformer"], info["table"], info["test_table"], cfg.data.target, names, cfg.seed
            )
        elif source.kind == "images":
            names = image_metric_names(cfg)
            if names:
                self.images = ImageEvaluator(
                    cfg.data.name,
                    reference_split(cfg),
                    reference_images(cfg, source),
                    names,
                    cfg.eval.cache_dir,
                    cfg.data.root,
                    cfg.eval.num_real,
                )
        elif cfg.eval.metrics not in (["auto"], ["mixture"]):
            raise ConfigError(
                f"eval.metrics={cfg.eval.metrics} does not apply to 2-D data; use auto (mode diagnostics)"
            )
        scored = source.kind in ("toy", "table") or self.images is not None
        self.num_samples = cfg.eval.num_samples if scored else cfg.eval.grid_samples
        if source.kind == "table":
            table_fn = make_table_sample_fn(gan, min(500, self.num_samples))
            cond_arrays, index = source.arrays["cond"], jnp.asarray(-1)
            self.sample_fn = lambda state, key: table_fn(state, key, cond_arrays, index)
        else:
            self.sample_fn = make_sample_fn(gan, min(500, self.num_samples))
        self.key = jax.random.fold_in(jax.random.PRNGKey(cfg.seed), EVAL_KEY_SALT)
        self.protocol: dict[str, Any] = {}
        # A class-conditional G is sampled for every class in turn: sample i is drawn for class i mod K.
        self.num_classes = gan.num_classes if gan.class_conditional else None
        self.labels = None if self.num_classes is None else np.arange(self.num_samples) % self.num_classes

    def samples(self, state: GANState) -> np.ndarray:
        batch = min(500, self.num_samples)
        return np.asarray(sample_generator(self.sample_fn, state, self.key, self.num_samples, self.labels, batch))

    def metrics(self, samples: np.ndarray) -> dict[str, float]:
        if self.source.kind == "toy":
            return mixture_diagnostics(samples, self.source.info["means"], self.source.info["sigma"])
        if self.table is not None:
            values, self.protocol = self.table(samples)
            return values
        if self.images is None:
            return {}
        values, self.protocol = self.images(to_uint8(samples), self.labels)  # quantised like the real images
        return values

    def plot(self, samples: np.ndarray, plots_dir: Path, title: str) -> Path:
        """plots/samples.png (scatter over the data, or an image grid) and, for mixtures, plots/modes.png."""
        out = plots_dir / "samples.png"
        if self.source.kind == "toy":
            info = self.source.info
            real = np.asarray(self.source.sample(self.source.arrays, self.key, len(samples))["x"])
            plots.plot_samples_2d(samples, real, out, means=info["means"], title=title)
            counts = mode_counts(samples, info["means"], info["sigma"])
            plots.plot_mode_histogram(counts, plots_dir / "modes.png", title=f"{title}: high-quality samples per mode")
        elif self.source.kind == "table":
            transformer = self.source.info["transformer"]
            real, synth = self.source.info["table"], transformer.inverse_transform(samples)
            plots.plot_table_columns(real, synth, out, title=title)
            diff_png = plots_dir / "correlation_difference.png"
            plots.plot_correlation_difference(real, synth, diff_png, transformer.kinds, title=title)
        elif self.labels is not None:
            plots.save_class_grid(to_uint8(samples), self.labels, out, self.cfg.eval.grid_samples)
        else:
            plots.save_image_grid(to_uint8(samples[: self.cfg.eval.grid_samples]), out)
        return out

    def __call__(self, state: GANState, plots_dir: Path, title: str) -> tuple[dict[str, float], Path]:
        samples = self.samples(state)
        return self.metrics(samples), self.plot(samples, plots_dir, title)


# Which way is better for the metrics a run can keep its best checkpoint by.
BEST_DIRECTIONS = {
    "reverse_kl": "min",
    "hq_fraction": "max",
    "modes_covered": "max",
    "fid": "min",
    "kid": "min",
    "classifier_fid": "min",
    "classifier_kid": "min",
    "stacked_modes": "max",
    "quality": "max",
    "ml_f1": "max",
}
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


def best_metric_name(cfg: Config, source: DataSource) -> str | None:
    """The metric `checkpoints/best` is chosen by: `train.best_metric`, or per data kind when it is `auto`."""
    name = cfg.train.best_metric
    if name == "none":
        return None
    if name == "auto":
        if source.kind == "toy":
            return "reverse_kl"
        if source.kind == "table":
            names = table_metric_names(list(cfg.eval.metrics), cfg.data.target, bool(cfg.data.test_path))
            return "quality" if "quality" in names else ("ml_f1" if "ml_efficacy" in names else None)
        names = image_metric_names(cfg)
        return next((n for n in ("fid", "classifier_fid") if n in names), None)
    if name not in BEST_DIRECTIONS:
        raise ConfigError(
            f"train.best_metric={name!r} is unknown; choose auto, none or one of: {', '.join(BEST_DIRECTIONS)}"
        )
    return name


def is_better(name: str, value: float, best: dict[str, Any] | None) -> bool:
    if not np.isfinite(value):
        return False
    if best is None:
        return True
    return value < best["value"] if BEST_DIRECTIONS[name] == "min" else value > best["value"]


def warn_config_changes(saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """On resume, say which settings differ from the checkpoint's (same shapes, so the run can go on)."""
    if not saved:
        return
    changed = [d for d in config_differences(saved, now) if not d.startswith(RESUME_FREE_KEYS)]
    if saved.get("seed") != now.get("seed"):
        changed.append(f"seed: {saved.get('seed')!r} -> {now.get('seed')!r} (ignored: the checkpoint holds the key)")
    if changed:
        warn("resuming with settings that differ from the checkpoint's: " + "; ".join(changed))
    schedules = {now["optim"][k]["schedule"] for k in ("g", "d")}
    if "linear" in schedules and saved["train"]["steps"] != now["train"]["steps"]:
        warn("train.steps changed while a linear learning-rate decay is on: the decay now runs to the new step count")


def train(cfg: Config, run_dir: str | Path) -> dict[str, Any]:
    """Trains the GAN the config describes; writes everything into `run_dir`; returns the summary.

    A stop signal ends the run early after a checkpoint (the summary then has `stopped_by`); a non-finite value
    under `train.on_nonfinite=stop` raises DivergenceError and leaves the last good checkpoint as the newest."""
    run_dir = Path(run_dir)
    (run_dir / "plots").mkdir(parents=True, exist_ok=True)
    with StopRequests() as stop:
        return _train(cfg, run_dir, stop)


def _train(cfg: Config, run_dir: Path, stop: StopRequests) -> dict[str, Any]:
    plan = Parallel(cfg)  # devices, processes (joins jax.distributed before anything runs) and population members
    # A resumed table run keeps the model space it was trained in; a new run fits the transformer (seeded).
    source = build_source(cfg.data, saved_transformer(run_dir) if cfg.train.resume else None)
    if source.kind == "table" and plan.is_main:
        source.info["transformer"].save(run_dir / TRANSFORMER_FILE)
    gan = build_gan(cfg, source)
    best_name = best_metric_name(cfg, source) if plan.population == 1 else None  # checkpoints/best holds one GAN
    state = plan.init_state(gan)  # replicated over the devices; stacked over population members
    arrays = plan.place(source.arrays)
    config = config_dict(cfg)
    ckpt = Checkpointer(run_dir / "checkpoints", keep=cfg.train.keep_checkpoints)
    logger: Any = None
    try:
        meta: dict[str, Any] = {}
        latest = ckpt.latest_step()
        resume = cfg.train.resume
        if latest is not None and not resume and requeued():
            warn(f"this SLURM job was requeued: resuming from the checkpoints in {ckpt.directory}")
            resume = True
        if latest is not None and not resume:
            raise ConfigError(
                f"{run_dir} already holds checkpoints up to step {latest}; pass train.resume=true to continue that "
                "run, or choose a new directory with hydra.run.dir=..."
            )
        if resume and latest is not None:
            restored = ckpt.restore(state, config=config)
            state, meta = restored.state, restored.meta
            warn_config_changes(meta.get("config"), config)
        if plan.is_main:
            save_config(cfg, run_dir)
        start = int(np.max(jax.device_get(state.step)))  # a population: members that diverged lag behind
        best: dict[str, Any] | None = meta.get("best")

        logger = Logger(
            run_dir,
            config,
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
            is_main=plan.is_main,
        )
        logger = plan.member_logs(logger, run_dir, start if meta else None)  # population: per member too
        out_dir = plan.output_dir(run_dir)  # plots: the run directory on process 0 only
        evaluator = plan.member_evaluators(lambda member_cfg: Evaluator(gan, source, member_cfg), out_dir)
        train_fns: dict[int, Any] = {}
        compile_s = 0.0
        step, last_metrics, eval_metrics, speed = start, {}, {}, {}
        window_start, window_steps, paused = time.perf_counter(), 0, 0.0
        evaluated_at = -1

        def checkpoint_meta(at: int) -> dict[str, Any]:
            return {"step": at, "wandb_run_id": logger.run_id, "config": config, "best": best}

        def evaluate(at: int) -> None:
            nonlocal eval_metrics, evaluated_at, best
            eval_metrics, png = evaluator(state, out_dir / "plots", f"{cfg.name} step {at}")
            if eval_metrics:
                logger.log(at, eval_metrics)
            logger.log_image(at, "samples", png)
            evaluated_at = at
            if best_name and best_name in eval_metrics and is_better(best_name, eval_metrics[best_name], best):
                best = {"metric": best_name, "value": float(eval_metrics[best_name]), "step": at}
                ckpt.save_best(at, state, checkpoint_meta(at))

        stopped_members: set[int] = set()

        def check_finite() -> None:
            steps = np.atleast_1d(np.asarray(jax.device_get(state.nonfinite_step)))
            whats = np.atleast_1d(np.asarray(jax.device_get(state.nonfinite_what)))
            bad = [i for i, at in enumerate(steps) if at >= 0]
            if not bad:
                return
            if len(bad) < len(steps):  # a population: a diverged member stays frozen, the others train on
                for i in sorted(set(bad) - stopped_members):
                    warn_member_stopped(i, int(steps[i]), describe_nonfinite(int(whats[i])))
                    stopped_members.add(i)
                return
            bad_step, what = int(steps[bad[0]]), describe_nonfinite(int(whats[bad[0]]))
            logger.log(bad_step, {"nonfinite_stop": 1})
            ckpt.wait()
            good = ckpt.latest_step()
            kept = (
                f"the last good checkpoint is step {good} in {ckpt.directory}"
                if good is not None
                else ("no checkpoint had been written yet")
            )
            raise DivergenceError(
                f"non-finite {what} at step {bad_step}: the run stopped (train.on_nonfinite=stop) and {kept}. "
                "Lower the learning rate, use a gradient penalty (loss=wgan_gp) or weight clipping, or set "
                "train.on_nonfinite=skip to skip such steps."
            )

        while step < cfg.train.steps:
            n = next_boundary(step, cfg) - step
            if n not in train_fns:
                t0 = time.perf_counter()
                train_fns[n] = plan.train_fn(gan, source.sample, n, state, arrays)
                compile_s += time.perf_counter() - t0
                paused += time.perf_counter() - t0  # compilation is not training time
            state, metrics = train_fns[n](state, arrays)
            step += n
            window_steps += n
            logger.advance(step)
            is_log = step % cfg.train.log_every == 0 or step == cfg.train.steps
            is_eval = (cfg.eval.every and step % cfg.eval.every == 0) or step == cfg.train.steps
            is_ckpt = step % cfg.train.ckpt_every == 0 or step == cfg.train.steps
            stopping = plan.any_process(stop.requested is not None)  # every process stops at the same step
            if is_log or is_eval or is_ckpt or stopping:
                check_finite()  # before anything is logged or saved from a diverged state
            if is_log:
                last_metrics = plan.host_metrics(metrics)  # waits for the step; population: per-member lists
                if gan.on_nonfinite == "skip":
                    last_metrics["nonfinite_skipped_total"] = plan.host_value(state.nonfinite_skipped)
                elapsed = time.perf_counter() - window_start - paused
                speed = {"steps_per_s": window_steps / max(elapsed, 1e-9)}
                logger.log(step, last_metrics)
                logger.log_timing(step, speed)
                window_start, window_steps, paused = time.perf_counter(), 0, 0.0
            if is_eval or is_ckpt:
                jax.block_until_ready(state)
                t0 = time.perf_counter()
                if is_eval:
                    evaluate(step)
                if is_ckpt:
                    ckpt.save(step, state, checkpoint_meta(step))
                paused += time.perf_counter() - t0
            if stopping:
                signal_name = stop.requested or "a stop signal to another process"
                ckpt.save(step, state, checkpoint_meta(step))
                ckpt.wait()  # the checkpoint is whole and sealed before we report it
                warn(
                    f"{signal_name} received: stopped at step {step} with a checkpoint in {ckpt.directory}; "
                    "continue with train.resume=true"
                )
                logger.close(preempted=True)
                return {"step": step, "stopped_by": stop.requested or "peer", "wandb_run_id": logger.run_id}
        if evaluated_at != step:  # a resumed run that had nothing left to train
            evaluate(step)
        if plan.is_main and plan.population == 1:  # members' loss plots: members/<i>/plots
            plots.plot_losses(read_metrics(run_dir / "metrics.jsonl"), run_dir / "plots" / "losses.png")
        summary = {
            "step": step,
            "name": cfg.name,
            "seed": cfg.seed,
            **last_metrics,
            **speed,
            **eval_metrics,
            "best": best,
            "eval_protocol": evaluator.protocol,
            "compile_s": compile_s,
            "g_params": count_params(plan.member(state, 0).g_params),
            "d_params": count_params(plan.member(state, 0).d_params),
            "device": str(jax.devices()[0].device_kind),
            **plan.describe(),
            "wandb_run_id": logger.run_id,
        }
        logger.finish(summary)
        return summary
    except BaseException:
        if logger is not None:
            logger.close(exit_code=1)  # the W&B run ends as failed; metrics.jsonl keeps every line written
        raise
    finally:
        ckpt.close()

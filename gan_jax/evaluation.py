"""Evaluation during training and in `gan-jax-eval`: sample a family's generator with a fixed key and score the
samples with the metrics for the data's kind (mixture diagnostics for 2-D data, the configured image metrics,
the table evaluator for tables), write the sample plots, and say which metric picks the best checkpoint.

The metrics themselves (gan_jax/metrics) take arrays; this module owns the sampling and the protocol.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import plots
from gan_jax.config import Config
from gan_jax.data.images import ImageData, to_uint8
from gan_jax.data.source import DataSource, build_source
from gan_jax.errors import ConfigError
from gan_jax.metrics.evaluator import ImageEvaluator, default_image_metrics
from gan_jax.metrics.mode_collapse import mixture_diagnostics, mode_counts
from gan_jax.train.step import sample_generator

EVAL_KEY_SALT = 0x5EED  # eval samples come from a fixed stream: the same z at every evaluation of a run
SAMPLE_BATCH = 500

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
    "label_acc": "max",  # translation: label preservation of the worse direction
    "cycle_l1": "min",  # translation: mean cycle-reconstruction error of both directions
}


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


def reference_images(cfg: Config, source: DataSource) -> ImageData:
    """The real images metrics compare with: the training images, or `eval.reference_split` of the same dataset."""
    split = cfg.eval.reference_split
    if not split or split == cfg.data.split:
        return source.info["images"]
    return build_source(dataclasses.replace(cfg.data, split=split)).info["images"]


def eval_key(cfg: Config) -> jax.Array:
    return jax.random.fold_in(jax.random.PRNGKey(cfg.seed), EVAL_KEY_SALT)


class Evaluator:
    """The gan family's evaluator for 2-D mixtures and images (see the module docstring)."""

    def __init__(self, family: Any, source: DataSource, cfg: Config) -> None:
        self.source, self.cfg = source, cfg
        self.images: ImageEvaluator | None = None
        if source.kind == "images":
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
        scored = source.kind == "toy" or self.images is not None
        self.num_samples = cfg.eval.num_samples if scored else cfg.eval.grid_samples
        self.sample_fn = family.sampler(min(SAMPLE_BATCH, self.num_samples))
        self.key = eval_key(cfg)
        self.protocol: dict[str, Any] = {}
        # A class-conditional G is sampled for every class in turn: sample i is drawn for class i mod K.
        self.num_classes = family.num_classes if family.class_conditional else None
        self.labels = None if self.num_classes is None else np.arange(self.num_samples) % self.num_classes
        # The critic's outputs, for the loggers' histograms (families without a critic scorer have none).
        scorer, pack = getattr(family, "critic_scorer", None), getattr(family, "pack", 1)
        self.critic_fn = None if scorer is None else scorer()
        self.critic_batch = min(SAMPLE_BATCH, self.num_samples) // pack * pack if scorer else 0  # whole packs
        self._d_inputs: tuple[Any, np.ndarray] | None = None

    def best_metric(self) -> str | None:
        """What `train.best_metric=auto` keeps the best checkpoint by."""
        if self.source.kind == "toy":
            return "reverse_kl"
        names = image_metric_names(self.cfg)
        return next((n for n in ("fid", "classifier_fid") if n in names), None)

    def samples(self, state: Any) -> np.ndarray:
        batch = min(SAMPLE_BATCH, self.num_samples)
        return np.asarray(sample_generator(self.sample_fn, state, self.key, self.num_samples, self.labels, batch))

    def metrics(self, samples: np.ndarray) -> dict[str, float]:
        if self.source.kind == "toy":
            return mixture_diagnostics(samples, self.source.info["means"], self.source.info["sigma"])
        if self.images is None:
            return {}
        values, self.protocol = self.images(to_uint8(samples), self.labels)  # quantised like the real images
        return values

    def default_protocol(self, samples: np.ndarray) -> dict[str, Any]:
        """The protocol of a score, also when no image metric ran (2-D data: the mixture's)."""
        return self.protocol or {"mixture": {"n_fake": len(samples), "sigma": self.source.info.get("sigma")}}

    def plot(self, samples: np.ndarray, plots_dir: Path, title: str) -> Path:
        """plots/samples.png (scatter over the data, or an image grid) and, for mixtures, plots/modes.png."""
        out = plots_dir / "samples.png"
        if self.source.kind == "toy":
            info = self.source.info
            real = np.asarray(self.source.sample(self.source.arrays, self.key, len(samples))["x"])
            plots.plot_samples_2d(samples, real, out, means=info["means"], title=title)
            counts = mode_counts(samples, info["means"], info["sigma"])
            plots.plot_mode_histogram(counts, plots_dir / "modes.png", title=f"{title}: high-quality samples per mode")
        elif self.labels is not None:
            plots.save_class_grid(to_uint8(samples), self.labels, out, self.cfg.eval.grid_samples, caption=title)
        else:
            plots.save_image_grid(to_uint8(samples[: self.cfg.eval.grid_samples]), out, caption=title)
        return out

    def __call__(self, state: Any, plots_dir: Path, title: str) -> tuple[dict[str, float], Path]:
        samples = self.samples(state)
        # A copy: a view would keep every sample alive until the next evaluation.
        self._d_inputs = (state, samples[: self.critic_batch].copy()) if self.critic_batch else None
        return self.metrics(samples), self.plot(samples, plots_dir, title)

    @property
    def last_d_outputs(self) -> dict[str, np.ndarray] | None:
        """The critic's raw outputs on one batch of real samples and on the last evaluation's fakes (the first
        ones), for TensorBoard / W&B histograms: how D's outputs spread, which metrics.jsonl's means do not say.
        Named d_outputs/real and /fake: metrics.jsonl's d_real and d_fake are their training-batch means.
        Computed when read, so evaluations nobody logs (gan-jax-eval, population members) cost nothing; read it
        before the next train step, which donates the state's buffers."""
        if self._d_inputs is None or self.critic_fn is None:
            return None
        (state, fake), self._d_inputs = self._d_inputs, None
        n = len(fake)
        real = self.source.sample(self.source.arrays, self.key, n)
        y_real = real.get("y") if self.labels is not None else None
        y_fake = None if self.labels is None else jnp.asarray(self.labels[:n], jnp.int32)
        return {
            "d_outputs/real": np.asarray(self.critic_fn(state, real["x"], y_real), np.float32).ravel(),
            "d_outputs/fake": np.asarray(self.critic_fn(state, jnp.asarray(fake), y_fake), np.float32).ravel(),
        }


class TableRunEvaluator:
    """The ctgan family's evaluator: rows drawn with CTGAN's condition sampling, scored by the table metrics
    (quality, ML efficacy, DCR), with column and association plots."""

    def __init__(self, family: Any, source: DataSource, cfg: Config) -> None:
        from gan_jax.metrics.table_evaluator import TableEvaluator, table_metric_names

        self.source, self.cfg = source, cfg
        info = source.info
        names = table_metric_names(list(cfg.eval.metrics), cfg.data.target, info["test_table"] is not None)
        self.names = names
        self.table = TableEvaluator(
            info["transformer"], info["table"], info["test_table"], cfg.data.target, names, cfg.seed
        )
        self.num_samples = cfg.eval.num_samples
        table_fn = family.sampler(min(SAMPLE_BATCH, self.num_samples))
        cond_arrays, index = source.arrays["cond"], jnp.asarray(-1)
        self.sample_fn = lambda state, key: table_fn(state, key, cond_arrays, index)
        self.key = eval_key(cfg)
        self.protocol: dict[str, Any] = {}
        self.labels = None

    def best_metric(self) -> str | None:
        names = self.names if self.cfg.data.test_path else [n for n in self.names if n != "ml_efficacy"]
        return "quality" if "quality" in names else ("ml_f1" if "ml_efficacy" in names else None)

    def samples(self, state: Any) -> np.ndarray:
        return np.asarray(sample_generator(self.sample_fn, state, self.key, self.num_samples))

    def metrics(self, samples: np.ndarray) -> dict[str, float]:
        values, self.protocol = self.table(samples)
        return values

    def default_protocol(self, samples: np.ndarray) -> dict[str, Any]:
        return self.protocol

    def plot(self, samples: np.ndarray, plots_dir: Path, title: str) -> Path:
        out = plots_dir / "samples.png"
        transformer = self.source.info["transformer"]
        real, synth = self.source.info["table"], transformer.inverse_transform(samples)
        plots.plot_table_columns(real, synth, out, title=title)
        diff_png = plots_dir / "correlation_difference.png"
        plots.plot_correlation_difference(real, synth, diff_png, transformer.kinds, title=title)
        return out

    def __call__(self, state: Any, plots_dir: Path, title: str) -> tuple[dict[str, float], Path]:
        samples = self.samples(state)
        return self.metrics(samples), self.plot(samples, plots_dir, title)


def best_metric_name(cfg: Config, evaluator: Any) -> str | None:
    """The metric `checkpoints/best` is chosen by: `train.best_metric`, or the evaluator's when it is `auto`."""
    name = cfg.train.best_metric
    if name == "none":
        return None
    if name == "auto":
        return evaluator.best_metric()
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

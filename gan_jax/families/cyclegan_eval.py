"""What the cyclegan family reports and writes: its evaluator (label preservation, cycle L1, classifier FID/KID
with the source-only and ceiling baselines, from gan_jax/metrics/translation.py) and `gan-jax-sample`'s
translations with a grid whose rows are input | translation | reconstruction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from gan_jax import plots
from gan_jax.config import Config
from gan_jax.data.images import ImageData, to_model_space, to_uint8
from gan_jax.errors import ConfigError

TRANSLATE_BATCH = 100
GRID_COLUMNS = 8
METRIC_CHOICES = ("auto", "translation", "cycle_l1")
DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}


def translate_all(family: Any, state: Any, direction: str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(translations, reconstructions) of uint8 or [-1, 1] images, in fixed-size batches (one compilation; the
    last batch is padded and trimmed)."""
    fn = family.translator(direction)
    x = images if images.dtype != np.uint8 else to_model_space(images)
    outs, recs = [], []
    for start in range(0, len(x), TRANSLATE_BATCH):
        chunk = x[start : start + TRANSLATE_BATCH]
        pad = TRANSLATE_BATCH - len(chunk) if len(x) > TRANSLATE_BATCH else 0
        batch = np.concatenate([chunk, np.repeat(chunk[-1:], pad, 0)]) if pad else chunk
        out, rec = fn(state, jnp.asarray(batch, jnp.float32))
        outs.append(np.asarray(out)[: len(chunk)])
        recs.append(np.asarray(rec)[: len(chunk)])
    return np.concatenate(outs), np.concatenate(recs)


def translation_grid(inputs: np.ndarray, outputs: np.ndarray, recs: np.ndarray, out_png: Path, caption: str) -> None:
    """Rows of `GRID_COLUMNS`: inputs, their translations, their reconstructions (repeated per block)."""
    k = min(GRID_COLUMNS, len(inputs))
    blocks = []
    for start in range(0, min(len(inputs), 4 * k), k):
        sl = slice(start, start + k)
        if len(inputs[sl]) < k:
            break
        blocks += [to_uint8(_float(inputs[sl])), to_uint8(outputs[sl]), to_uint8(recs[sl])]
    plots.save_image_grid(np.concatenate(blocks), out_png, nrow=k, caption=caption)


def _first(data: ImageData, n: int) -> ImageData:
    return data if len(data.x) <= n else ImageData(data.x[:n], None if data.y is None else data.y[:n], data.name)


def _float(x: np.ndarray) -> np.ndarray:
    return to_model_space(x) if x.dtype == np.uint8 else x


class TranslationEvaluator:
    """The cyclegan family's evaluator: both directions on each domain's test split (at most eval.num_samples
    images each). `eval.metrics=auto` scores label preservation etc. when both domains have labels, else only the
    cycle L1; `cycle_l1` never trains a classifier."""

    def __init__(self, family: Any, source: Any, cfg: Config) -> None:
        self.family, self.cfg = family, cfg
        domains = source.info["domains"]
        self.a, self.b = domains["a"], domains["b"]
        unknown = [m for m in cfg.eval.metrics if m not in METRIC_CHOICES]
        if unknown:
            raise ConfigError(f"eval.metrics: {unknown} do not apply to translation runs; choose from {METRIC_CHOICES}")
        labelled = self.a.test.y is not None and self.b.test.y is not None
        wants = "translation" in cfg.eval.metrics or ("auto" in cfg.eval.metrics and labelled)
        n = cfg.eval.num_samples  # the first n test images of each domain are scored, baselines included
        a_test, b_test = (_first(domain.test, n) for domain in (self.a, self.b))
        self.tests = {"a": a_test.x, "b": b_test.x}
        self.scorer = None
        if wants:
            from gan_jax.metrics.translation import TranslationMetrics

            self.scorer = TranslationMetrics(
                (self.a.train, a_test),
                (self.b.train, b_test),
                seed=0,
                classifier_steps=cfg.eval.classifier_steps,
                cache_dir=cfg.eval.cache_dir,
            )
        self.protocol: dict[str, Any] = {}

    def best_metric(self) -> str | None:
        return "label_acc" if self.scorer is not None else "cycle_l1"

    def samples(self, state: Any) -> dict[str, np.ndarray]:
        out = {}
        for direction, (src, _) in DIRECTIONS.items():
            out[direction], out[f"rec_{src}"] = translate_all(self.family, state, direction, self.tests[src])
        return out

    def metrics(self, samples: dict[str, np.ndarray]) -> dict[str, float]:
        from gan_jax.metrics.translation import cycle_l1

        values = {f"{d}_cycle_l1": cycle_l1(self.tests[s], samples[f"rec_{s}"]) for d, (s, _) in DIRECTIONS.items()}
        if self.scorer is not None:
            values |= self.scorer.score(samples["a2b"], samples["b2a"])
            values["label_acc"] = min(values["a2b_label_acc"], values["b2a_label_acc"])
            self.protocol = {"translation": self.scorer.protocol()}
        values["cycle_l1"] = 0.5 * (values["a2b_cycle_l1"] + values["b2a_cycle_l1"])
        return values

    def default_protocol(self, samples: Any) -> dict[str, Any]:
        return self.protocol or {"translation": {"n_a_test": len(self.tests["a"]), "n_b_test": len(self.tests["b"])}}

    def plot(self, samples: dict[str, np.ndarray], plots_dir: Path, title: str) -> Path:
        """plots/a2b.png and plots/b2a.png; returns the first (what the loggers show)."""
        paths = []
        for direction, (src, _) in DIRECTIONS.items():
            path = plots_dir / f"{direction}.png"
            inputs = self.tests[src]
            translation_grid(inputs, samples[direction], samples[f"rec_{src}"], path, f"{title}: {direction}")
            paths.append(path)
        return paths[0]

    def __call__(self, state: Any, plots_dir: Path, title: str) -> tuple[dict[str, float], Path]:
        samples = self.samples(state)
        return self.metrics(samples), self.plot(samples, plots_dir, title)


# --- gan-jax-sample -------------------------------------------------------------------------------------------------


def sample_inputs(sample_cfg: Any, source: Any) -> np.ndarray:
    """The images `input=` names, in the run's resolution and channels: the source domain's test or train
    split, a .npz file (x) or an image folder."""
    if sample_cfg.direction not in DIRECTIONS:
        raise ConfigError(f"direction={sample_cfg.direction!r} must be a2b or b2a")
    src = DIRECTIONS[sample_cfg.direction][0]
    domain = source.info["domains"][src]
    choice = str(sample_cfg.input)
    if choice in ("test", "train"):
        return getattr(domain, choice).x[: sample_cfg.n]
    from gan_jax.data import images
    from gan_jax.data.unpaired import convert_channels

    path = Path(choice).expanduser()
    if path.suffix == ".npz" and path.is_file():
        data = images.load_npz(path)
    elif path.is_dir():
        data = images.load_image_folder(path, source.example_shape[0])
    else:
        raise ConfigError(f"input={choice}: not test, train, an existing .npz file or a folder of images")
    size, channels = source.example_shape[0], source.example_shape[-1]
    if data.x.shape[1:3] != (size, size):
        data = images.resize(data, size)
    return convert_channels(data, channels).x[: sample_cfg.n]


def write_translations(family: Any, sample_cfg: Any, run: Config, source: Any, state: Any) -> Path:
    """`out` (.npz: inputs, translations, reconstructions as uint8) and a grid PNG beside it."""
    inputs = sample_inputs(sample_cfg, source)
    outputs, recs = translate_all(family, state, sample_cfg.direction, inputs)
    out = Path(sample_cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    caption = f"{run.name} step {int(state.step)} {sample_cfg.direction}: input | translation | reconstruction"
    translation_grid(inputs, outputs, recs, png, caption)
    np.savez(out, inputs=inputs, samples=to_uint8(outputs), reconstructions=to_uint8(recs), step=int(state.step))
    print(f"wrote {out} ({len(inputs)} {sample_cfg.direction} translations, step {int(state.step)}) and {png}")
    return out

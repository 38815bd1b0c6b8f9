"""Image evaluation: generated uint8 images in, metric values and their protocol out.

Metric names (`eval.metrics`):

- `classifier_fid`, `classifier_kid`: FID / KID on the penultimate features of the small digit (or Fashion-MNIST)
  classifier (`gan_jax.metrics.classifier`): fast on a CPU, comparable only with other gan_jax classifier numbers.
- `classes`: predicted-class histogram of the samples: `classes_covered`, `class_reverse_kl` (KL(generated ‖ data)),
  `class_forward_kl` (inf when a class is missing).
- `class_accuracy` (class-conditional models): the samples drawn for class k are classified as k this often:
  `class_accuracy` over all samples and `class_accuracy_min`, the worst class (labels balanced over classes).
- `stacked_modes`: Stacked MNIST, each channel classified as a digit: `stacked_modes` of 1000 and `stacked_kl`
  (KL(generated ‖ uniform)), the VEEGAN / PacGAN definitions.
- `duplicates`, `memorization`: near-duplicate rate among samples and nearest-real-neighbour statistics, in
  classifier feature space.
- `fid`, `kid`, `prdc`: on FID-Inception pool3 features (needs the converted weights; see
  `scripts/convert_inception.py`); the numbers papers report. 299 px Inception is slow on a CPU.
- `is`: the Inception Score (`inception_score`, `inception_score_std`, 10 splits, no shuffling) on the unbiased
  1008-way logits of the IS Inception (`gan_jax.metrics.inception_is`; its weights file is the user's to supply).

Every value is stored with its protocol: extractor and weights checksum, preprocessing/resize, n_real, n_fake,
dataset and split (the reference statistics are cached under a hash of exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gan_jax.data.images import ImageData
from gan_jax.errors import ConfigError
from gan_jax.metrics import image_modes, reference_stats
from gan_jax.metrics.catalog import CLASSIFIER_METRICS, INCEPTION_METRICS, INCEPTION_SCORE_METRICS, metric_names
from gan_jax.metrics.fid import feature_stats, frechet_distance
from gan_jax.metrics.inception_score import inception_score
from gan_jax.metrics.kid import kid as kid_fn
from gan_jax.metrics.prdc import prdc as prdc_fn
from gan_jax.registry import METRICS

IMAGE_METRICS = CLASSIFIER_METRICS + INCEPTION_METRICS + INCEPTION_SCORE_METRICS  # registered (metrics/catalog.py)
IS_SPLITS = 10  # the improved-gan / torch-fidelity default
CLASSIFIER_DATASETS = ("digits", "mnist", "fashion_mnist", "stacked_mnist")
DUPLICATE_THRESHOLD = 0.05  # classifier-feature distance, relative to the real data's median nearest-neighbour gap


def default_image_metrics(dataset: str, conditional: bool = False) -> list[str]:
    """What `eval.metrics=auto` computes for an image set: the classifier metrics where a classifier exists
    (with the per-class accuracy of a class-conditional model)."""
    if dataset == "stacked_mnist":
        return ["classifier_fid", "stacked_modes"]
    if dataset in ("digits", "mnist", "fashion_mnist"):
        return ["classifier_fid", "classifier_kid", "classes"] + (["class_accuracy"] if conditional else [])
    return []


def plugin_image_metrics() -> tuple[str, ...]:
    """Image metrics registered by plug-ins with a scorer `fn(fake, real) -> {name: value}` (uint8 NHWC)."""
    return tuple(n for n in metric_names("images") if n not in IMAGE_METRICS and callable(METRICS.get(n)))


def check_metrics(metrics: list[str], dataset: str, cache_dir: str | None = None) -> None:
    """Refuse unknown metric names, classifier metrics on data no gan_jax classifier understands, and the Inception
    Score without its weights file (before any training time is spent)."""
    for name in metrics:
        if name == "is":
            from gan_jax.metrics import inception_is

            if not inception_is.is_weights_available(cache_dir):
                raise ConfigError(f"eval.metrics: 'is': {inception_is.missing_weights_message(cache_dir)}")
        if name not in IMAGE_METRICS and name not in plugin_image_metrics():
            names = ", ".join((*IMAGE_METRICS, *plugin_image_metrics()))
            raise ConfigError(f"eval.metrics: unknown image metric {name!r}; choose from {names}")
        if name in CLASSIFIER_METRICS and dataset not in CLASSIFIER_DATASETS:
            raise ConfigError(
                f"eval.metrics: {name} uses the digit classifier (or its Fashion-MNIST twin), which exists for "
                f"{', '.join(CLASSIFIER_DATASETS)}, not data={dataset}; use the Inception metrics (fid, kid, prdc)"
            )
    if "classes" in metrics and dataset == "stacked_mnist":
        raise ConfigError("eval.metrics: use stacked_modes for data=stacked_mnist (classes scores one digit per image)")
    if "stacked_modes" in metrics and dataset != "stacked_mnist":
        raise ConfigError("eval.metrics: stacked_modes needs data=stacked_mnist (three digits as three channels)")


@dataclass
class ImageEvaluator:
    """Holds the real data's reference features per extractor (computed once, cached on disk) and scores samples.

    `dataset` names the classifier to use (digits / mnist / fashion_mnist; stacked_mnist uses the MNIST one per
    channel), `split` and `real` describe the reference set."""

    dataset: str
    split: str
    real: ImageData
    metrics: list[str]
    cache_dir: str | None = None
    data_root: str | None = None
    num_real: int = 0  # reference images; 0 = all. A subset is a fixed random choice (seed 0), named in the split
    _classifier: Any = field(default=None, init=False, repr=False)
    _inception: Any = field(default=None, init=False, repr=False)
    _is_inception: Any = field(default=None, init=False, repr=False)
    _refs: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        check_metrics(self.metrics, self.dataset, self.cache_dir)
        if 0 < self.num_real < len(self.real.x):
            idx = np.sort(np.random.default_rng(0).permutation(len(self.real.x))[: self.num_real])
            y = None if self.real.y is None else self.real.y[idx]
            self.real = ImageData(x=self.real.x[idx], y=y, name=self.real.name)
            self.split = f"{self.split}[random {self.num_real}, seed 0]"

    # --- extractors ---------------------------------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        return int(self.real.x.shape[1])

    def classifier(self) -> Any:
        if self._classifier is None:
            from gan_jax.metrics.classifier import load_or_train_classifier

            base = "mnist" if self.dataset == "stacked_mnist" else self.dataset
            self._classifier = load_or_train_classifier(
                base, self.resolution, seed=0, cache_dir=self.cache_dir, data_root=self.data_root
            )
        return self._classifier

    def inception(self) -> Any:
        if self._inception is None:
            from gan_jax.metrics.features import load_inception

            self._inception = load_inception(self.cache_dir)
        return self._inception

    def is_inception(self) -> Any:
        if self._is_inception is None:
            from gan_jax.metrics.inception_is import load_is_inception

            self._is_inception = load_is_inception(self.cache_dir)
        return self._is_inception

    def _gray(self, images: np.ndarray) -> np.ndarray:
        """Classifier input: Stacked MNIST images are scored per channel elsewhere; here their mean channel."""
        if images.shape[-1] == 1:
            return images
        return np.rint(images.astype(np.float32).mean(axis=-1, keepdims=True)).astype(np.uint8)

    def classifier_features(self, images: np.ndarray) -> np.ndarray:
        if self.dataset == "stacked_mnist":  # per-channel features side by side: the 1000-mode structure survives
            return np.concatenate([self.classifier().features(images[..., c : c + 1]) for c in range(3)], axis=1)
        return self.classifier().features(self._gray(images))

    def inception_features(self, images: np.ndarray) -> np.ndarray:
        return self.inception().extract(images)[0]

    def classifier_protocol(self) -> dict[str, Any]:
        clf = self.classifier()
        return {
            "feature_extractor": f"gan_jax_digit_classifier/{clf.dataset}-{clf.resolution}px-seed{clf.seed}",
            "weights_sha256": clf.weights_sha256,
            "classifier_heldout_accuracy": clf.accuracy,
            "preprocessing": f"uint8 {self.resolution}x{self.resolution}, no resize"
            + (", per channel" if self.dataset == "stacked_mnist" else ""),
        }

    def reference(self, family: str) -> reference_stats.ReferenceStats:
        """Real-data features of `family` ('classifier' or 'inception'), cached on disk by their full spec."""
        if family not in self._refs:
            if family == "classifier":
                protocol, extract = self.classifier_protocol(), self.classifier_features
            else:
                protocol, extract = self.inception().protocol, self.inception_features
            spec = reference_stats.make_spec(
                dataset=f"{self.dataset}@{self.resolution}px",
                split=self.split,
                count=len(self.real.x),
                extractor=protocol["feature_extractor"],
                weights_sha256=protocol["weights_sha256"],
                preprocessing={k: v for k, v in protocol.items() if k not in ("feature_extractor", "weights_sha256")},
            )
            self._refs[family] = reference_stats.load_or_compute(
                spec, lambda: extract(self.real.x), self.cache_dir, keep_features=True
            )
        return self._refs[family]

    # --- scoring ------------------------------------------------------------------------------------------------

    def __call__(self, fake: np.ndarray, labels: np.ndarray | None = None) -> tuple[dict[str, float], dict[str, Any]]:
        """Values of the configured metrics on uint8 samples `fake` (N, H, W, C), and the protocol of each family.
        `labels`: the class each sample was drawn for (class-conditional generators; needed by class_accuracy)."""
        if fake.dtype != np.uint8:
            raise ConfigError(f"evaluation takes uint8 images (quantised like the real ones), got {fake.dtype}")
        values: dict[str, float] = {}
        protocol: dict[str, Any] = {}
        wanted = set(self.metrics)
        common = {"dataset": self.dataset, "split": self.split, "n_real": len(self.real.x), "n_fake": len(fake)}
        if "class_accuracy" in wanted and labels is None:
            raise ConfigError("eval.metrics: class_accuracy scores class-conditional models (model.conditioning)")
        if wanted & set(CLASSIFIER_METRICS):
            values |= self._classifier_metrics(fake, wanted, labels)
            protocol["classifier"] = {**common, **self.classifier_protocol()}
        if wanted & set(INCEPTION_METRICS):
            values |= self._inception_metrics(fake, wanted)
            protocol["inception"] = {**common, **self.inception().protocol}
        if "is" in wanted:
            mean, std = inception_score(self.is_inception().extract(fake)[1], splits=IS_SPLITS)
            values |= {"inception_score": mean, "inception_score_std": std}
            logits = "pool3 @ W (no bias), softmax over all 1008; consecutive splits, no shuffle"
            protocol["inception_score"] = {
                **{k: v for k, v in common.items() if k != "n_real"},  # IS looks at the samples only
                **self.is_inception().protocol,
                "splits": IS_SPLITS,
                "logits": logits,
            }
        for name in sorted(wanted & set(plugin_image_metrics())):  # a plug-in's scorer: (fake, real) uint8 -> values
            values |= {k: float(v) for k, v in METRICS.get(name)(fake, self.real.x).items()}
            protocol[name] = common
        return values, protocol

    def _classifier_metrics(self, fake: np.ndarray, wanted: set[str], labels: np.ndarray | None) -> dict[str, float]:
        values: dict[str, float] = {}
        needs_features = wanted & {"classifier_fid", "classifier_kid", "duplicates", "memorization"}
        feats = self.classifier_features(fake) if needs_features else None
        if needs_features:
            ref = self.reference("classifier")
            if "classifier_fid" in wanted:
                values["classifier_fid"] = frechet_distance(ref.mu, ref.sigma, *feature_stats(feats))
            if "classifier_kid" in wanted:
                values["classifier_kid"] = kid_fn(ref.features, feats)[0]
            if "duplicates" in wanted:
                _, real_gaps = image_modes.nearest_neighbours(ref.features[:2000])
                scale = float(np.median(real_gaps))
                values["duplicate_rate"] = image_modes.near_duplicate_rate(feats, DUPLICATE_THRESHOLD * scale)
                values["feature_diversity"] = image_modes.feature_diversity(feats)
            if "memorization" in wanted:
                nn = image_modes.nearest_real_distance(feats, ref.features)
                values["nn_real_ratio"] = nn["ratio"]
                values["copy_fraction"] = nn["copy_fraction"]
        predicted = self.classifier().predict(self._gray(fake)) if wanted & {"classes", "class_accuracy"} else None
        if "class_accuracy" in wanted:
            values |= class_accuracy(predicted, np.asarray(labels))
        if "classes" in wanted:
            data_hist = np.bincount(self.real.y, minlength=10) if self.real.y is not None else None
            diag = image_modes.class_histogram_diagnostics(predicted, 10, data_hist)
            values |= {
                "classes_covered": diag["modes_covered"],
                "class_reverse_kl": diag["reverse_kl"],
                "class_forward_kl": diag["forward_kl"],
            }
        if "stacked_modes" in wanted:
            channels = image_modes.stacked_channel_labels(self.classifier().predict, fake)
            diag = image_modes.stacked_mnist_diagnostics(channels)
            values |= {"stacked_modes": diag["modes_covered"], "stacked_kl": diag["kl"]}
        return values

    def _inception_metrics(self, fake: np.ndarray, wanted: set[str]) -> dict[str, float]:
        feats = self.inception_features(fake)
        ref = self.reference("inception")
        values: dict[str, float] = {}
        if "fid" in wanted:
            values["fid"] = frechet_distance(ref.mu, ref.sigma, *feature_stats(feats))
        if "kid" in wanted:
            mean, std = kid_fn(ref.features, feats)
            values |= {"kid": mean, "kid_std": std}
        if "prdc" in wanted:
            values |= prdc_fn(ref.features, feats)
        return {k: float(v) if not isinstance(v, int) else v for k, v in values.items() if v is not None}


def class_accuracy(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """How often samples drawn for class k are classified as k: overall, and for the worst class."""
    if predicted.shape != labels.shape:
        raise ValueError(f"class_accuracy: {predicted.shape[0]} predictions for {labels.shape[0]} labels")
    hits = predicted == labels
    per_class = [float(np.mean(hits[labels == k])) for k in np.unique(labels)]
    values = {"class_accuracy": float(np.mean(hits)), "class_accuracy_min": min(per_class)}
    return values | {f"class_accuracy_{int(k)}": a for k, a in zip(np.unique(labels), per_class, strict=True)}

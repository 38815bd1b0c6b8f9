"""How well an unpaired image-to-image translation (CycleGAN) works, per direction a2b (A -> B) and b2a (B -> A).

A translation should keep what the image shows, look like the target domain, and come back when translated back.
The first two are scored with a classifier trained on the TARGET domain's labelled train split, as CycleGAN's
"FCN score" does (J.-Y. Zhu, T. Park, P. Isola, A. A. Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017, §5.1.1: an off-the-shelf target-domain network applied to the
translations, its output compared with the source's labels):

- `<dir>_label_acc`: that classifier's accuracy on the translations of the source test split, against the source
  labels (label preservation);
- `<dir>_source_only_acc`: the same on the untranslated source images (what doing nothing scores), and
  `<target>_ceiling_acc`: the classifier on the target's own test split (what a perfect translation can reach);
- `<dir>_cfid`, `<dir>_ckid`: FID and KID between the classifier's 128-d features of the translations and of the
  target test split ("classifier FID": Inception is the wrong network for small digits), with the untranslated
  source images as the `<dir>_source_only_cfid` / `_ckid` baselines;
- `<dir>_cycle_l1`: mean |x - G_ba(G_ab(x))| in the model space [-1, 1], the quantity the cycle loss penalises.

Scores are comparable only under the same classifier weights: `TranslationMetrics.protocol()` lists their sha256,
the recipe and the split sizes, which a table citing the numbers needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from gan_jax.cache import default_cache_dir
from gan_jax.data.images import ImageData, to_model_space
from gan_jax.errors import ConfigError, DataError, warn
from gan_jax.metrics.classifier import (
    ARCH_VERSION,
    FEATURE_DIM,
    NUM_CLASSES,
    DigitClassifier,
    TrainConfig,
    accuracy,
    classifier_features,
    classify,
    train_classifier,
)
from gan_jax.metrics.fid import fid
from gan_jax.metrics.kid import kid

Params = Any
RECIPE_VERSION = 1  # bump when the domain-classifier recipe changes (split, class count, key): cached weights retrain
DEFAULT_STEPS = 1500
DIRECTIONS = {"a2b": ("a", "b"), "b2a": ("b", "a")}  # direction -> (source domain, target domain)
SPLITS = ("train", "test")
METRICS_OFF = "eval.metrics=[cycle_l1]"
ARCH = (
    "DigitClassifier: 3x3 convs 32-64-64 (stride 2 while the map is larger than 4 px), ReLU, dense 128 (the "
    "features), dense num_classes; Adam 1e-3 with cosine decay, batch 128, random shifts up to resolution // 14 px"
)


@dataclass(frozen=True, eq=False)
class DomainClassifier:
    """A classifier trained on one domain's train split; `test_accuracy` is on the test split it was given."""

    params: Params
    domain: str
    test_accuracy: float
    weights_sha256: str
    train_seconds: float
    num_classes: int = NUM_CLASSES
    path: Path | None = None  # the cache file; None when it could not be written
    from_cache: bool = False

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) int32 of uint8 or [-1, 1] NHWC images."""
        return classify(self.params, images)[0]

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate (N, 128) features: what the classifier FID/KID compare."""
        return classifier_features(self.params, images)


def require_labels(data: ImageData, which: str) -> None:
    """A one-line ConfigError when `data` has no labels: label preservation cannot be measured without them."""
    if data.y is None:
        raise ConfigError(
            f"label preservation needs labelled domains, but {which} ({data.name!r}) has no labels; use a labelled "
            f"dataset or turn the translation metrics off with {METRICS_OFF}."
        )


def class_count(labels: np.ndarray) -> int:
    """10, or max label + 1 when a domain's labels go past 9."""
    labels = np.asarray(labels)
    if labels.size and int(labels.min()) < 0:
        raise DataError(f"class labels must be >= 0, got {int(labels.min())}; relabel the domain 0..K-1.")
    return max(NUM_CLASSES, int(labels.max()) + 1 if labels.size else 0)


def cache_key(train: ImageData, seed: int, steps: int, num_classes: int) -> str:
    """sha256 of everything the weights depend on: the training images and labels, their shape, seed and recipe."""
    recipe = {"shape": list(train.x.shape), "seed": seed, "num_classes": num_classes, **_recipe(steps)}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    digest.update(np.ascontiguousarray(train.x).tobytes())
    digest.update(np.ascontiguousarray(train.y, np.int32).tobytes())
    return digest.hexdigest()


def _recipe(steps: int) -> dict[str, Any]:
    """The training recipe besides data and seed (TrainConfig without its holdout: the test split is held out)."""
    config = asdict(TrainConfig(steps=steps))
    del config["holdout_fraction"]
    return config | {"recipe_version": RECIPE_VERSION}


def classifier_cache_path(name: str, resolution: int, key: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """`<cache_dir>/classifiers/domain-<name>-<res>px-<key[:12]>.msgpack` (the name made file-safe)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "domain"
    return root / "classifiers" / f"domain-{slug}-{resolution}px-{key[:12]}.msgpack"


def domain_classifier(
    train: ImageData,
    test: ImageData,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    cache_dir: str | os.PathLike | None = None,
) -> DomainClassifier:
    """The classifier of one domain: loaded from the cache when its key matches, else trained on `train` and cached.

    Accuracy is always measured on `test` afresh (the key covers the training data only). A corrupt or unreadable
    cache entry is retrained and overwritten.
    """
    require_labels(train, "the train split")
    require_labels(test, "the test split")
    if steps < 1:
        raise ConfigError(f"classifier steps must be positive, got {steps}.")
    _check_same_shape([("train", train), ("test", test)])
    resolution, channels, num_classes = train.x.shape[1], train.x.shape[3], class_count(train.y)
    key = cache_key(train, seed, steps, num_classes)
    path = classifier_cache_path(train.name, resolution, key, cache_dir)
    cached = _load_cached(path, key, _template(resolution, channels, num_classes))
    if cached is not None:
        params, sha, seconds = cached
    else:
        params, sha, seconds, written = _train_and_cache(train, test, seed, steps, num_classes, key, path)
        path = path if written else None
    params = jax.tree.map(jnp.asarray, params)
    acc = accuracy(params, test.x, test.y)
    return DomainClassifier(params, train.name, acc, sha, seconds, num_classes, path, cached is not None)


def _template(resolution: int, channels: int, num_classes: int) -> Params:
    shape = jax.ShapeDtypeStruct((1, resolution, resolution, channels), jnp.float32)
    return jax.eval_shape(lambda x: DigitClassifier(num_classes).init(jax.random.key(0), x)["params"], shape)


def _load_cached(path: Path, key: str, template: Params) -> tuple[Params, str, float] | None:
    """(params, sha256, train seconds) of a cache entry whose key, checksum and shapes match, else None."""
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        blob = path.read_bytes()
        sha = hashlib.sha256(blob).hexdigest()
        if meta["cache_key"] != key or sha != meta["weights_sha256"]:
            return None
        params = serialization.from_bytes(template, blob)
        same = jax.tree.map(lambda p, t: np.shape(p) == t.shape, params, template)
        if not all(jax.tree.leaves(same)):
            return None
        return params, sha, float(meta["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # missing, unreadable or corrupt: retrain and overwrite


def _train_and_cache(
    train: ImageData, test: ImageData, seed: int, steps: int, num_classes: int, key: str, path: Path
) -> tuple[Params, str, float, bool]:
    """(params, sha256, seconds, whether cached): train, then write weights and metadata atomically (a temp file
    renamed into place, weights first). An unwritable cache warns instead of failing the evaluation."""
    config = TrainConfig(steps=steps)
    start = time.perf_counter()
    params = train_classifier(
        train.x, train.y, seed, steps, config.batch_size, config.learning_rate, num_classes, train.x.shape[3]
    )
    seconds = time.perf_counter() - start
    blob = serialization.to_bytes(params)
    sha = hashlib.sha256(blob).hexdigest()
    meta = {
        "domain": train.name, "resolution": train.x.shape[1], "channels": train.x.shape[3], "seed": seed,
        "num_classes": num_classes, "num_train": len(train.x), "num_test": len(test.x),
        "test_accuracy": accuracy(params, test.x, test.y), "weights_sha256": sha, "train_seconds": seconds,
        "cache_key": key, **_recipe(steps),
    }  # fmt: skip
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, data in ((path, blob), (path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode())):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
    except OSError as exc:
        warn(f"cannot cache the {train.name!r} classifier in {path.parent} ({exc}); it is retrained next time.")
        return params, sha, seconds, False
    return params, sha, seconds, True


def cycle_l1(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean |x - rec| in the model space [-1, 1] (float64), as the CycleGAN cycle loss measures it."""
    return float(np.mean(np.abs(_model_space(images).astype(np.float64) - _model_space(reconstructions))))


def check_images(images: np.ndarray, expected_shape: tuple[int, ...], what: str) -> np.ndarray:
    """`images` as an array of `expected_shape`, uint8 or finite floats in [-1, 1]; else a one-line DataError."""
    x = np.asarray(images)
    if x.shape != tuple(expected_shape):
        raise DataError(
            f"{what} must have shape {tuple(expected_shape)} (one image per test image, same order), got {x.shape}."
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{what} must be uint8 0..255 or float in [-1, 1], got {x.dtype}.")
    if not np.isfinite(x).all():
        raise DataError(f"{what} holds NaN or Inf: the translator's outputs are not finite (diverged model?).")
    if np.abs(x).max() > 1.0 + 1e-3:
        raise DataError(
            f"{what} has floats outside [-1, 1] (max |x| {np.abs(x).max():.3g}); pass uint8 0..255 or convert "
            "with to_model_space."
        )
    return x


def _model_space(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return to_model_space(x) if x.dtype == np.uint8 else x.astype(np.float32)


def _check_same_shape(named: list[tuple[str, ImageData]]) -> None:
    """All splits at one square resolution and channel count: one classifier per domain scores them all."""
    shapes = {name: data.x.shape[1:] for name, data in named}
    if len(set(shapes.values())) > 1 or any(h != w for h, w, _ in shapes.values()):
        listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
        raise DataError(
            f"translation metrics need square images of one size and channel count, got {listed}; bring the "
            "domains to one data.resolution and data.channels."
        )


class TranslationMetrics:
    """The translation scores of both directions, with their baselines, for one pair of labelled domains.

    The two target classifiers are trained (or loaded from the cache) on first use, and the baselines and the
    test-split features are computed once per object, so scoring every evaluation of a run costs two forward
    passes and the FID/KID arithmetic.
    """

    def __init__(
        self,
        a: tuple[ImageData, ImageData],
        b: tuple[ImageData, ImageData],
        seed: int = 0,
        classifier_steps: int = DEFAULT_STEPS,
        cache_dir: str | os.PathLike | None = None,
        kid_subsets: int = 10,
        kid_subset_size: int = 1000,
    ) -> None:
        self.domains = {"a": tuple(a), "b": tuple(b)}
        for letter, pair in self.domains.items():
            if len(pair) != 2 or not all(isinstance(d, ImageData) for d in pair):
                raise ConfigError(f"domain {letter} must be a (train, test) pair of ImageData.")
            for split, data in zip(SPLITS, pair, strict=True):
                require_labels(data, f"the {split} split of domain {letter}")
        _check_same_shape([(f"{k}_{s}", d) for k, p in self.domains.items() for s, d in zip(SPLITS, p, strict=True)])
        if classifier_steps < 1 or kid_subsets < 1 or kid_subset_size < 2:
            raise ConfigError(
                f"classifier_steps >= 1, kid_subsets >= 1 and kid_subset_size >= 2 are needed, got "
                f"{classifier_steps}, {kid_subsets}, {kid_subset_size}."
            )
        self.seed, self.classifier_steps, self.cache_dir = seed, classifier_steps, cache_dir
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self._classifiers: dict[str, DomainClassifier] = {}
        self._reference: dict[str, np.ndarray] = {}
        self._baselines: dict[str, float] | None = None

    def classifier(self, domain: str) -> DomainClassifier:
        """The classifier of domain 'a' or 'b' (the target of b2a or a2b), trained or loaded on first use."""
        if domain not in self._classifiers:
            train, test = self.domains[domain]
            self._classifiers[domain] = domain_classifier(train, test, self.seed, self.classifier_steps, self.cache_dir)
        return self._classifiers[domain]

    def _reference_features(self, domain: str) -> np.ndarray:
        if domain not in self._reference:
            self._reference[domain] = self.classifier(domain).features(self.domains[domain][1].x)
        return self._reference[domain]

    def _kid_size(self, direction: str) -> int:
        src, tgt = DIRECTIONS[direction]
        return min(self.kid_subset_size, len(self.domains[src][1].x), len(self.domains[tgt][1].x))

    def _scores(self, direction: str, images: np.ndarray) -> tuple[float, float, float]:
        """(label accuracy against the source test labels, cFID, cKID) of images aligned with the source test split."""
        src, tgt = DIRECTIONS[direction]
        clf, labels = self.classifier(tgt), self.domains[src][1].y
        acc = float(np.mean(clf.predict(images) == labels))
        feats, reference = clf.features(images), self._reference_features(tgt)
        ckid = kid(reference, feats, self.kid_subsets, self._kid_size(direction), self.seed)[0]
        return acc, fid(reference, feats), float(ckid)

    def baselines(self) -> dict[str, float]:
        """Source-only accuracy/cFID/cKID of both directions and both ceilings; computed once."""
        if self._baselines is None:
            out: dict[str, float] = {}
            for direction, (src, tgt) in DIRECTIONS.items():
                acc, cfid, ckid = self._scores(direction, self.domains[src][1].x)
                out[f"{direction}_source_only_acc"] = acc
                out[f"{direction}_source_only_cfid"] = cfid
                out[f"{direction}_source_only_ckid"] = ckid
                out[f"{tgt}_ceiling_acc"] = float(self.classifier(tgt).test_accuracy)
            self._baselines = out
        return dict(self._baselines)

    def score(
        self, a2b: np.ndarray, b2a: np.ndarray, rec_a: np.ndarray | None = None, rec_b: np.ndarray | None = None
    ) -> dict[str, float]:
        """Label accuracy, cFID, cKID (and cycle L1 where reconstructions are given) of both directions, plus the
        baselines, in one flat dict. `a2b` translates a_test (same order), `rec_a` is G_ba(G_ab(a_test))."""
        a_test, b_test = self.domains["a"][1].x, self.domains["b"][1].x
        inputs = {"a2b": check_images(a2b, a_test.shape, "a2b"), "b2a": check_images(b2a, b_test.shape, "b2a")}
        recs = {"a2b": rec_a, "b2a": rec_b}
        for direction, rec in recs.items():
            src = DIRECTIONS[direction][0]
            if rec is not None:
                recs[direction] = check_images(rec, self.domains[src][1].x.shape, f"rec_{src}")
        out: dict[str, float] = {}
        for direction, images in inputs.items():
            acc, cfid, ckid = self._scores(direction, images)
            out |= {f"{direction}_label_acc": acc, f"{direction}_cfid": cfid, f"{direction}_ckid": ckid}
            if recs[direction] is not None:
                source = self.domains[DIRECTIONS[direction][0]][1].x
                out[f"{direction}_cycle_l1"] = cycle_l1(source, recs[direction])
        return out | self.baselines()

    def _classifier_protocol(self, letter: str) -> dict[str, Any]:
        clf = self.classifier(letter)
        return {
            "domain": clf.domain, "weights_sha256": clf.weights_sha256, "test_accuracy": clf.test_accuracy,
            "num_classes": clf.num_classes, "n_train": len(self.domains[letter][0].x),
        }  # fmt: skip

    def protocol(self) -> dict[str, Any]:
        """What a table needs to cite these scores: classifier recipe, each classifier's weights and own test
        accuracy, the split sizes, resolution, channels and the KID subsets."""
        config = TrainConfig(steps=self.classifier_steps)
        train_a, test_a = self.domains["a"]
        return {
            "classifier": {
                "arch": ARCH, "arch_version": ARCH_VERSION, "recipe_version": RECIPE_VERSION,
                "steps": config.steps, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
                "seed": self.seed, "feature_dim": FEATURE_DIM, "trained_on": "the target domain's train split",
            },
            "classifiers": {letter: self._classifier_protocol(letter) for letter in ("a", "b")},
            "n_a_test": len(test_a.x), "n_b_test": len(self.domains["b"][1].x),
            "resolution": int(train_a.x.shape[1]), "channels": int(train_a.x.shape[3]),
            "kid": {"subsets": self.kid_subsets, "subset_size": {d: self._kid_size(d) for d in DIRECTIONS},
                    "seed": self.seed},
        }  # fmt: skip

#!/usr/bin/env python
"""Precomputes the real-data feature statistics that FID (and, with --keep-features, KID / PRDC) compare against.

    python scripts/fid_stats.py --dataset digits --resolution 8              # classifier features, all 1797 digits
    python scripts/fid_stats.py --dataset mnist --count 10000 --data-root ../shared/data
    python scripts/fid_stats.py --dataset mnist --extractor inception        # needs scripts/convert_inception.py

The statistics are cached as `<cache-dir>/fid_stats/<key>.npz`, key = sha256 of the spec (dataset, split, count,
extractor name + weights sha256, preprocessing), so evaluation finds them without recomputing; the script prints
the key, the path and the spec. Images are the first --count of the split (all of it by default), in file order.
The classifier extractor is the cached digit classifier for (dataset, resolution, --classifier-seed); it is
trained first if missing (see scripts/train_classifier.py).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gan_jax.errors import ConfigError, GanJaxError
from gan_jax.metrics.classifier import DATASETS, load_dataset, load_or_train_classifier
from gan_jax.metrics.reference_stats import load_or_compute, make_spec


def inception_extractor(cache_dir: str | None):
    """(name, weights sha256, preprocessing, feature function) of the FID Inception, or a ConfigError saying why not."""
    try:
        from gan_jax.metrics import features
    except ImportError as e:
        raise ConfigError(
            f"the Inception extractor is not available ({e}); use --extractor classifier, or install the FID "
            "Inception (gan_jax.metrics.features) and convert its weights with scripts/convert_inception.py."
        ) from e
    extractor = features.load_inception(cache_dir)
    protocol = extractor.protocol

    def extract(images: np.ndarray) -> np.ndarray:
        if images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)  # grey digits as RGB, as Inception expects
        return extractor.extract(images)[0]

    preprocessing = {k: v for k, v in protocol.items() if k not in ("feature_extractor", "weights_sha256")}
    preprocessing["grey_to_rgb"] = "repeat"
    return protocol["feature_extractor"], protocol["weights_sha256"], preprocessing, extract


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--split", default=None, help="digits: all; mnist: test (the split ../shared/data holds)")
    parser.add_argument("--resolution", type=int, default=None, help="image size (default: 8 digits, 28 mnist)")
    parser.add_argument("--count", type=int, default=None, help="number of real images (default: the whole split)")
    parser.add_argument("--extractor", choices=("classifier", "inception"), default="classifier")
    parser.add_argument("--classifier-seed", type=int, default=0)
    parser.add_argument("--keep-features", action="store_true", help="also store the features (for KID / PRDC)")
    parser.add_argument("--cache-dir", default=None, help="default: $GAN_JAX_CACHE or ~/.cache/gan_jax")
    parser.add_argument("--data-root", default=None, help="folder holding mnist/ (default: $GAN_JAX_DATA)")
    args = parser.parse_args(argv)
    split = args.split or ("all" if args.dataset == "digits" else "test")
    resolution = args.resolution or (8 if args.dataset == "digits" else 28)
    try:
        if (args.dataset, split) not in (("digits", "all"), ("mnist", "test")):
            raise ConfigError(
                f"split {split!r} is not available for {args.dataset}: use 'all' for digits, 'test' for mnist."
            )
        data = load_dataset(args.dataset, resolution, args.data_root)
        count = args.count or len(data.x)
        if not 2 <= count <= len(data.x):
            raise ConfigError(f"--count must be in 2..{len(data.x)} for {args.dataset} {split}, got {count}.")
        images = data.x[:count]
        if args.extractor == "classifier":
            clf = load_or_train_classifier(
                args.dataset, resolution, args.classifier_seed, args.cache_dir, data_root=args.data_root
            )
            name, sha, extract = f"digit_classifier_{args.dataset}", clf.weights_sha256, clf.features
            preprocessing = {"resolution": resolution, "resize": "bilinear_antialias", "input_range": [-1, 1]}
        else:
            name, sha, preprocessing, extract = inception_extractor(args.cache_dir)
            preprocessing = {"resolution": resolution, "resize": "bilinear_antialias", **preprocessing}
        spec = make_spec(args.dataset, split, count, name, sha, preprocessing)
        stats = load_or_compute(spec, lambda: extract(images), args.cache_dir, keep_features=args.keep_features)
    except GanJaxError as e:
        print(f"fid_stats: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"key": stats.key, "path": str(stats.path), "dim": int(stats.mu.shape[0]), "spec": spec}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

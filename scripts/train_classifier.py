#!/usr/bin/env python
"""Trains the digit classifier behind classifier FID and the class-histogram / Stacked-MNIST diagnostics, and caches it.

    python scripts/train_classifier.py                                   # digits at 8 px, seed 0 (~10 s)
    python scripts/train_classifier.py --dataset mnist --resolution 28   # MNIST test set (8k train / 2k held out)
    python scripts/train_classifier.py --dataset digits --resolution 32 --seed 1 --steps 500 --cache-dir DIR

Weights go to `<cache-dir>/classifiers/` (default $GAN_JAX_CACHE or ~/.cache/gan_jax) with a JSON record of the
held-out accuracy and the weights' sha256; a second run with the same arguments loads them instead of training.
MNIST is read from --data-root (default $GAN_JAX_DATA or ~/.cache/gan_jax/data), e.g. ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import sys

from gan_jax.errors import GanJaxError
from gan_jax.metrics.classifier import DATASETS, DEFAULT_STEPS, load_or_train_classifier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="digits")
    parser.add_argument("--resolution", type=int, default=None, help="image size (default: 8 for digits, 28 for mnist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default: {DEFAULT_STEPS})")
    parser.add_argument("--cache-dir", default=None, help="default: $GAN_JAX_CACHE or ~/.cache/gan_jax")
    parser.add_argument("--data-root", default=None, help="folder holding mnist/ (default: $GAN_JAX_DATA)")
    args = parser.parse_args(argv)
    resolution = args.resolution or (8 if args.dataset == "digits" else 28)
    try:
        clf = load_or_train_classifier(args.dataset, resolution, args.seed, args.cache_dir, args.steps, args.data_root)
    except GanJaxError as e:
        print(f"train_classifier: error: {e}", file=sys.stderr)
        return 2
    record = {
        "dataset": clf.dataset,
        "resolution": clf.resolution,
        "seed": clf.seed,
        "heldout_accuracy": round(clf.accuracy, 4),
        "train_seconds": round(clf.train_seconds, 1),
        "weights_sha256": clf.weights_sha256,
        "path": str(clf.path),
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())

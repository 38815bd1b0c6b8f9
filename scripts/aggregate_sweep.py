#!/usr/bin/env python
"""Mean ± standard error over seeds, per configuration, for a Hydra multirun directory.

    python scripts/aggregate_sweep.py multirun/toy_ring/2025-06-01_12-00-00
    python scripts/aggregate_sweep.py DIR --metrics modes_covered hq_fraction reverse_kl --out results/table

Reads the `summary.json` of every job under DIR (a population run, `train.population=N`, contributes each member's
`members/<i>/summary.json` instead) and groups runs by configuration: the job's Hydra overrides
(`.hydra/overrides.yaml`) without the seed, with a population member's own hyperparameters in place of the
population's (so `population.lr_g=[1e-4,2e-4]` and a sweep `optim.g.lr=1e-4,2e-4` give the same rows). Writes the
table as markdown and CSV (DIR/aggregate.md, DIR/aggregate.csv, or --out PREFIX.md / PREFIX.csv) and prints the
markdown. Jobs without a summary (failed or still running) are listed on stderr and left out.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

# Summary keys that describe the run rather than measure it.
BOOKKEEPING = {
    "step",
    "seed",
    "member",
    "population",
    "compile_s",
    "g_params",
    "d_params",
    "devices",
    "processes",
    "num_modes",
    "steps_per_s",
}
FIRST = ("modes_covered", "hq_fraction", "reverse_kl", "fid", "kid", "classifier_fid", "classifier_kid")
# Overrides that choose seeds or describe a population, not a configuration.
DROPPED = ("seed=", "population.seeds=", "train.population=")


def _load(path: Path) -> dict:
    """summary.json as written by gan_jax.logging (non-finite values are the strings 'NaN', 'Infinity')."""
    record = json.loads(path.read_text(encoding="utf-8"))
    markers = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    return {k: markers.get(v, v) if isinstance(v, str) else v for k, v in record.items()}


def _overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in yaml.safe_load(path.read_text(encoding="utf-8")) or []]


def collect(root: Path) -> tuple[list[tuple[str, dict]], list[str], list[Path]]:
    """(configuration label, summary) for every finished run under `root`, the overrides every run shares, and
    the job dirs without a summary. A label names only the overrides that differ between runs."""
    runs: list[tuple[dict[str, str], dict]] = []
    missing: list[Path] = []
    job_dirs = sorted(
        {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
        | {p.parent for p in root.rglob("summary.json") if p.parent.parent.name != "members"}
    )
    for job_dir in job_dirs:
        overrides = [o for o in _overrides(job_dir) if not o.startswith(DROPPED)]
        summary_path = job_dir / "summary.json"
        if not summary_path.is_file():
            missing.append(job_dir)
            continue
        summary = _load(summary_path)
        if "members" in summary:  # a population: one run per member
            for member_path in sorted((job_dir / "members").glob("*/summary.json"), key=lambda p: int(p.parent.name)):
                member = _load(member_path)
                own = member.get("hparams") or {}
                keep = [o for o in overrides if not o.startswith("population.")]
                runs.append((_parse(keep) | {k: f"{float(v):g}" for k, v in own.items()}, member))
        else:
            runs.append((_parse(overrides), summary))
    keys = sorted({k for settings, _ in runs for k in settings})
    varying = [k for k in keys if len({settings.get(k) for settings, _ in runs}) > 1]
    shared = [f"{k}={runs[0][0][k]}" for k in keys if k not in varying]
    labelled = [(" ".join(f"{k}={d[k]}" for k in varying if k in d) or "(all runs)", summary) for d, summary in runs]
    return labelled, shared, missing


def _parse(overrides: Sequence[str]) -> dict[str, str]:
    """`key=value` overrides as a dict, numbers in one spelling (2e-4 and 0.0002 are the same configuration)."""

    def norm(value: str) -> str:
        try:
            return f"{float(value):g}"
        except ValueError:
            return value

    return {key: norm(value) for key, _, value in (o.partition("=") for o in overrides)}


def metric_names(runs: Sequence[tuple[str, dict]], wanted: Sequence[str] | None) -> list[str]:
    if wanted:
        return list(wanted)
    numeric = {
        k
        for _, s in runs
        for k, v in s.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in BOOKKEEPING
    }
    return [k for k in FIRST if k in numeric] + sorted(numeric - set(FIRST))


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n)); the error is NaN for a single run."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def aggregate(runs: Sequence[tuple[str, dict]], metrics: Sequence[str]) -> list[dict]:
    """One row per configuration (first-seen order): n and (mean, se) per metric over its runs."""
    groups: dict[str, list[dict]] = {}
    for label, summary in runs:
        groups.setdefault(label, []).append(summary)
    rows = []
    for label, summaries in groups.items():
        row: dict = {"configuration": label, "n": len(summaries)}
        for name in metrics:
            values = [float(s[name]) for s in summaries if isinstance(s.get(name), int | float)]
            row[name] = mean_se(values)
        rows.append(row)
    return rows


def _fmt(mean: float, se: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.4g}" if math.isnan(se) else f"{mean:.4g} ± {se:.2g}"


def to_markdown(rows: Sequence[dict], metrics: Sequence[str], shared: Sequence[str] = ()) -> str:
    lines = [f"Every run: {' '.join(shared)}", ""] if shared else []
    lines += ["| configuration | n | " + " | ".join(metrics) + " |", "| --- | --- |" + " --- |" * len(metrics)]
    for row in rows:
        cells = [_fmt(*row[m]) for m in metrics]
        lines.append(f"| {row['configuration']} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[dict], metrics: Sequence[str], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["configuration", "n"] + [f"{m}_{part}" for m in metrics for part in ("mean", "se")])
        for row in rows:
            writer.writerow([row["configuration"], row["n"]] + [f"{x:.6g}" for m in metrics for x in row[m]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="a multirun directory (or any directory of runs)")
    parser.add_argument("--metrics", nargs="+", help="summary keys to aggregate (default: every measured value)")
    parser.add_argument("--out", type=Path, help="output prefix (default: DIR/aggregate)")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"aggregate_sweep: error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    runs, shared, missing = collect(args.dir)
    for job_dir in missing:
        print(f"aggregate_sweep: no summary.json in {job_dir} (failed or unfinished); left out", file=sys.stderr)
    if not runs:
        print(f"aggregate_sweep: error: no summary.json under {args.dir}", file=sys.stderr)
        return 2
    metrics = metric_names(runs, args.metrics)
    rows = aggregate(runs, metrics)
    prefix = args.out or args.dir / "aggregate"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(rows, metrics, shared)
    prefix.with_suffix(".md").write_text(markdown, encoding="utf-8")
    write_csv(rows, metrics, prefix.with_suffix(".csv"))
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

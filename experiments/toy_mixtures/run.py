"""Trains every row x seed of the toy_mixtures benchmark and writes results.md / results.csv beside this file.

    python experiments/toy_mixtures/run.py                    # all rows, ring and grid, seeds 0-4 (skips finished runs)
    python experiments/toy_mixtures/run.py --datasets grid    # one dataset
    python experiments/toy_mixtures/run.py --aggregate-only   # rebuild the tables from the runs on disk

Each (dataset, row) is one `gan-jax-train -m ... seed=0,1,2,3,4` sweep (Hydra's basic launcher runs the seeds one
after another in one process); `--jobs 2` runs two sweeps at once. Runs land in outputs/toy_mixtures/<dataset>/<row>/
seed<k>/, and the tables are built from their summary.json files only (final step, 2,500 samples): mean ± standard
error over seeds (sample standard deviation / sqrt(n)).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = ROOT / "outputs" / "toy_mixtures"
DATASETS = ("grid", "ring")  # grid first: it is the target
METRICS = ("modes_covered", "hq_fraction", "reverse_kl")


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    overrides: tuple[str, ...]


# Every row starts from configs/experiment/toy_mixtures_<dataset>.yaml (3x256 MLPs, z 2, batch 256, 6,000 steps).
ROWS = (
    Row("gan", "GAN (non-saturating)", ()),
    Row(
        "wgan_gp",
        "WGAN-GP (n_critic 5, 2,000 G steps)",
        ("loss=wgan_gp", "optim=wgan_gp", "train.n_critic=5", "train.steps=2000", "train.ckpt_every=2000"),
    ),
    Row("pacgan2", "PacGAN-2 (GAN + model.pack=2)", ("model.pack=2",)),
    Row("pacgan4", "PacGAN-4 (GAN + model.pack=4)", ("model.pack=4",)),
    Row(
        "best",
        "GAN, Adam 1e-3 decayed linearly to 0, G EMA 0.999",
        (
            "optim.g.lr=1e-3",
            "optim.d.lr=1e-3",
            "optim.g.schedule=linear",
            "optim.d.schedule=linear",
            "train.ema_decay=0.999",
        ),
    ),
)


def run_dir(dataset: str, row: Row, seed: int) -> Path:
    return RUNS / dataset / row.key / f"seed{seed}"


def train_row(dataset: str, row: Row, seeds: list[int], force: bool) -> float:
    """One Hydra sweep over the seeds still missing a summary.json; returns its wall time in seconds."""
    todo = [s for s in seeds if force or not (run_dir(dataset, row, s) / "summary.json").is_file()]
    if not todo:
        return 0.0
    for s in todo:  # a half-written run would refuse to start (it holds checkpoints but no train.resume)
        shutil.rmtree(run_dir(dataset, row, s), ignore_errors=True)
    exe = Path(sys.executable).with_name("gan-jax-train")
    cmd = [
        str(exe if exe.exists() else "gan-jax-train"),
        "-m",
        f"experiment=toy_mixtures_{dataset}",
        *row.overrides,
        f"seed={','.join(map(str, todo))}",
        "logger=none",
        "logger.progress=false",
        f"hydra.sweep.dir={RUNS / dataset / row.key}",
        "hydra.sweep.subdir=seed${seed}",
    ]
    env = dict(os.environ)
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(RUNS / "jax_cache"))  # seeds of a row share one compilation
    log = RUNS / dataset / f"{row.key}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    print(f"{dataset}/{row.key}: seeds {todo} in {wall / 60:.1f} min (exit {done.returncode}, log {log})", flush=True)
    timing = RUNS / dataset / "wall_times.json"
    times = json.loads(timing.read_text()) if timing.is_file() else {}
    times[row.key] = {"seeds": todo, "wall_s": round(wall, 1)}
    timing.write_text(json.dumps(times, indent=1))
    return wall


def mean_se(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def collect(datasets: list[str], seeds: list[int]) -> tuple[list[dict], list[dict]]:
    """Per-seed records and per-(dataset, row) aggregates from the summary.json files on disk."""
    per_seed, rows = [], []
    for dataset in datasets:
        for row in ROWS:
            found = []
            for s in seeds:
                path = run_dir(dataset, row, s) / "summary.json"
                if path.is_file():
                    summary = json.loads(path.read_text())
                    found.append({"dataset": dataset, "row": row.key, "seed": s, **{m: summary[m] for m in METRICS}})
            per_seed += found
            agg: dict = {"dataset": dataset, "row": row.key, "label": row.label, "n_seeds": len(found)}
            for m in METRICS:
                mean, se = mean_se([r[m] for r in found]) if found else (float("nan"), float("nan"))
                agg[f"{m}_mean"], agg[f"{m}_se"] = mean, se
            rows.append(agg)
    return per_seed, rows


def _pm(mean: float, se: float, digits: int, scale: float = 1.0) -> str:
    if math.isnan(mean):
        return "not run"
    se_text = "n/a" if math.isnan(se) else f"{se * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {se_text}"


def write_tables(per_seed: list[dict], rows: list[dict]) -> None:
    with (HERE / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    lines = [
        "# toy_mixtures results (written by run.py; do not edit by hand)",
        "",
        "Mean ± standard error over seeds, each run scored once at its last step on 2,500 samples.",
        "",
    ]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        k = 25 if dataset == "grid" else 8
        lines += [
            f"## 2D-{dataset} ({k} modes)",
            "",
            "| row | seeds | modes (max " + str(k) + ") | high-quality samples (%) | reverse KL |",
            "| --- | --- | --- | --- | --- |",
        ]
        for r in (r for r in rows if r["dataset"] == dataset):
            lines.append(
                f"| {r['label']} | {r['n_seeds']} | {_pm(r['modes_covered_mean'], r['modes_covered_se'], 1)} | "
                f"{_pm(r['hq_fraction_mean'], r['hq_fraction_se'], 1, 100.0)} | "
                f"{_pm(r['reverse_kl_mean'], r['reverse_kl_se'], 3)} |"
            )
        lines.append("")
    lines += [
        "## Per seed",
        "",
        "| dataset | row | seed | modes | hq (%) | reverse KL |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['dataset']} | {r['row']} | {r['seed']} | {r['modes_covered']} | {100 * r['hq_fraction']:.1f} | "
        f"{r['reverse_kl']:.3f} |"
        for r in per_seed
    ]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--rows", nargs="+", choices=[r.key for r in ROWS], default=[r.key for r in ROWS])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--jobs", type=int, default=1, help="sweeps run at once (default 1)")
    parser.add_argument("--force", action="store_true", help="retrain runs that already have a summary.json")
    parser.add_argument("--aggregate-only", action="store_true", help="only rebuild results.md / results.csv")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))
    if not args.aggregate_only:
        todo = [(d, r) for d in args.datasets for r in ROWS if r.key in args.rows]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(lambda job: train_row(job[0], job[1], seeds, args.force), todo))
    per_seed, rows = collect(list(DATASETS), seeds)
    write_tables(per_seed, rows)
    print((HERE / "results.md").read_text())


if __name__ == "__main__":
    main()

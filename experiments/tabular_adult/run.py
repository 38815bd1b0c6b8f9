"""gan_jax's CTGAN against the `ctgan` package (PyTorch) on UCI Adult: same epochs, batch size and recipe.

    python experiments/tabular_adult/run.py --epochs 50 --seeds 0 1 2      # trains both, writes results.md/.csv
    python experiments/tabular_adult/run.py --aggregate-only               # rebuild the tables from results.csv

Ours: `gan-jax-train experiment=tabular_adult seed=S train.steps=65*EPOCHS` (65 steps = one epoch of 32,561 rows
at batch 500), evaluated once at the end on 32,561 sampled rows. Reference: `ctgan.CTGAN(epochs=EPOCHS,
batch_size=500, pac=10)` with its defaults (the same networks, optimizers and losses), fitted on the same
DataFrame with the same discrete columns, 32,561 rows sampled. Both sets of rows are scored by the same functions
(`gan_jax.metrics.tabular`): SDMetrics QualityReport, ML efficacy F1 on the real test file (CTGAN protocol) and
exact copies of training rows.

Time per epoch excludes set-up: ours is 65 / the mean steps/s of `timing.jsonl` (compilation and evaluation not
counted); ctgan's is (fit time with EPOCHS epochs - fit time with 1 epoch) / (EPOCHS - 1), which removes its
data-transformer fit. Both on the same CPU, one after another, each using every core.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNS = ROOT / "outputs" / "tabular_adult"
STEPS_PER_EPOCH = 65  # 32,561 rows // 500, as ctgan counts an epoch
N_SYNTH = 32561
FIELDS = ("system", "seed", "epochs", "quality", "column_shapes", "pair_trends", "ml_f1", "exact_copy_share",
          "dcr_median", "s_per_epoch", "wall_s")  # fmt: skip


def data_root() -> Path:
    root = os.environ.get("GAN_JAX_DATA") or str(ROOT.parent / "shared" / "data")
    return Path(root)


def run_ours(seed: int, epochs: int) -> dict:
    run_dir = RUNS / "ours" / f"e{epochs}" / f"seed{seed}"
    if (run_dir / "summary.json").is_file():
        summary = json.loads((run_dir / "summary.json").read_text())
        wall = json.loads((run_dir / "wall.json").read_text())["wall_s"]
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        steps = STEPS_PER_EPOCH * epochs
        cmd = [
            sys.executable, "-m", "gan_jax.cli.train", "experiment=tabular_adult", f"seed={seed}",
            f"train.steps={steps}", f"train.ckpt_every={steps}", "eval.every=0", f"eval.num_samples={N_SYNTH}",
            "logger.progress=false", f"hydra.run.dir={run_dir}",
        ]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env={**os.environ, "GAN_JAX_DATA": str(data_root())})
        wall = time.perf_counter() - t0
        (run_dir / "wall.json").write_text(json.dumps({"wall_s": wall}))
        summary = json.loads((run_dir / "summary.json").read_text())
    speeds = [json.loads(line)["steps_per_s"] for line in (run_dir / "timing.jsonl").read_text().splitlines()]
    return {
        "system": "gan_jax", "seed": seed, "epochs": epochs, "quality": summary["quality"],
        "column_shapes": summary["quality_column_shapes"], "pair_trends": summary["quality_pair_trends"],
        "ml_f1": summary["ml_f1"], "exact_copy_share": summary["exact_copy_share"],
        "dcr_median": summary["dcr_median"], "s_per_epoch": STEPS_PER_EPOCH / (sum(speeds) / len(speeds)),
        "wall_s": wall,
    }  # fmt: skip


def run_ctgan(seed: int, epochs: int) -> dict:
    import numpy as np
    import torch
    from ctgan import CTGAN

    from gan_jax.data.table_io import read_table
    from gan_jax.data.table_transformer import TableTransformer
    from gan_jax.metrics.tabular import distance_to_closest_record, ml_efficacy, quality_report

    adult = data_root() / "adult"
    train, test = read_table(adult / "adult_train.csv"), read_table(adult / "adult_test.csv")
    kinds = TableTransformer().fit(train).kinds  # the same column kinds both systems are scored with
    discrete = [c for c, k in kinds.items() if k in ("categorical", "boolean")]
    torch.set_num_threads(os.cpu_count() or 1)

    def fit(n_epochs: int) -> tuple[CTGAN, float]:
        torch.manual_seed(seed)
        np.random.seed(seed)
        model = CTGAN(epochs=n_epochs, batch_size=500, pac=10, enable_gpu=False)
        model.set_random_state(seed)
        t0 = time.perf_counter()
        model.fit(train, discrete)
        return model, time.perf_counter() - t0

    _, one_epoch = fit(1)
    model, wall = fit(epochs)
    synth = model.sample(N_SYNTH)
    quality = quality_report(train, synth, kinds)
    ml = ml_efficacy(train, test, synth, "income", seed, metadata=kinds, identity=False)
    dcr = distance_to_closest_record(train, synth, metadata=kinds, seed=seed)
    return {
        "system": "ctgan", "seed": seed, "epochs": epochs, "quality": quality["overall"],
        "column_shapes": quality["column_shapes"], "pair_trends": quality["column_pair_trends"],
        "ml_f1": ml["synthetic"]["mean"], "exact_copy_share": dcr["exact_copy_share"],
        "dcr_median": dcr["dcr_median"], "s_per_epoch": (wall - one_epoch) / max(epochs - 1, 1), "wall_s": wall,
    }  # fmt: skip


def mean_se(values: list[float]) -> str:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:.3f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return f"{mean:.3f} ± {sd / math.sqrt(n):.3f}"


def aggregate(rows: list[dict]) -> str:
    header = ("system", "epochs", "seeds", "quality", "column shapes", "pair trends", "ML F1", "exact copies",
              "DCR median", "s / epoch")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["system"], int(row["epochs"])), []).append(row)
    for (system, epochs), group in sorted(groups.items()):
        cells = [mean_se([float(r[k]) for r in group]) for k in FIELDS[3:10]]
        lines.append(f"| {system} | {epochs} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--systems", nargs="+", default=["gan_jax", "ctgan"], choices=["gan_jax", "ctgan"])
    parser.add_argument("--aggregate-only", action="store_true")
    args = parser.parse_args()
    results = HERE / "results.csv"
    rows = list(csv.DictReader(results.open())) if results.is_file() else []
    if not args.aggregate_only:
        for seed in args.seeds:
            for system in args.systems:
                if any(
                    r["system"] == system and int(r["seed"]) == seed and int(r["epochs"]) == args.epochs for r in rows
                ):
                    continue
                row = run_ours(seed, args.epochs) if system == "gan_jax" else run_ctgan(seed, args.epochs)
                print(json.dumps(row), flush=True)
                rows.append(row)
                with results.open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=FIELDS)
                    writer.writeheader()
                    writer.writerows(rows)
    table = aggregate(rows)
    (HERE / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()

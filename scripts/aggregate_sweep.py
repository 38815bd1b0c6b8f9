#!/usr/bin/env python
"""Mean ± standard error over seeds, per configuration, for a Hydra multirun directory.

    python scripts/aggregate_sweep.py multirun/toy_ring/2025-06-01_12-00-00
    python scripts/aggregate_sweep.py DIR --metrics modes_covered hq_fraction reverse_kl --out results/table

Reads the `summary.json` of every job under DIR (a population run, `train.population=N`, contributes each member's
`members/<i>/summary.json` instead) and groups runs by configuration: the job's Hydra overrides
(`.hydra/overrides.yaml`) without the seed, with a population member's own hyperparameters in place of the
population's (so `population.lr_g=[1e-4,2e-4]` and a sweep `optim.g.lr=1e-4,2e-4` give the same rows). Writes the
table as markdown, CSV and JSON (DIR/aggregate.md, .csv, .json, or --out PREFIX) and prints the markdown.

Jobs without a summary are left out of the table and listed (stderr, a second markdown table, `jobs` in the JSON)
with their overrides, last logged step and newest sealed checkpoint: *failed* (the job's `failed.json`, written by
gan-jax-train: error type and message), *unfinished* (no summary and no failed.json: killed, stopped by a signal or
still running; a `.gan_jax.lock`, fresh or stale, and the time of the last write tell which) and *not started*
(in the sweep's `multirun.yaml` but without a directory: the sweep was killed or aborted first). Exit code: 0 when
the table has at least one run, 2 when no job finished, 1 with --strict when any job did not finish.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
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
FAILED = "failed.json"  # written by gan-jax-train for a sweep job that failed (gan_jax/cli/train.py)
LOCK = ".gan_jax.lock"  # a run directory in use (when present; never required)
# A live run touches its lock every 30 s and removes it when it ends (gan_jax/train/run_lock.py); a lock left
# untouched for longer was left by a killed run.
LOCK_STALE_S = 120.0
MANIFEST = "gan_jax_manifest.json"  # a sealed checkpoint (gan_jax/train/checkpoint.py)
STATUSES = ("finished", "failed", "unfinished", "not started")
ACTIVITY = ("metrics.jsonl", "timing.jsonl", "train.log", "checkpoints")


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


def job_dirs(root: Path) -> list[Path]:
    """Every run directory under `root`: Hydra's `.hydra/`, or a summary, failure record or config of its own
    (not a population member's, a checkpoint's or Hydra's copy)."""
    found = {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
    for name in ("summary.json", FAILED, "config.yaml"):
        for path in root.rglob(name):
            parts = path.relative_to(root).parts[:-1]
            if not {".hydra", "members", "checkpoints"} & set(parts):
                found.add(path.parent)
    return sorted(found, key=_job_key(root))


def _job_key(root: Path) -> Callable[[Path], tuple]:
    """Sort job dirs as Hydra numbers them (2 before 10)."""

    def key(path: Path) -> tuple:
        parts = path.relative_to(root).parts
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)

    return key


def collect(root: Path) -> tuple[list[tuple[str, dict]], list[str], list[dict]]:
    """(configuration label, summary) for every finished run under `root`, the overrides every run shares, and
    a record per job (finished, failed, unfinished or not started: see `job_record`). A label names only the
    overrides that differ between runs."""
    runs: list[tuple[dict[str, str], dict]] = []
    jobs = []
    for job_dir in job_dirs(root):
        record = job_record(root, job_dir)
        jobs.append(record)
        if record["status"] != "finished":
            continue
        overrides = [o for o in record["overrides"] if not o.startswith(DROPPED)]
        summary = _load(job_dir / "summary.json")
        if "members" in summary:  # a population: one run per member
            for member_path in sorted((job_dir / "members").glob("*/summary.json"), key=lambda p: int(p.parent.name)):
                member = _load(member_path)
                own = member.get("hparams") or {}
                keep = [o for o in overrides if not o.startswith("population.")]
                runs.append((_parse(keep) | {k: f"{float(v):g}" for k, v in own.items()}, member))
        else:
            runs.append((_parse(overrides), summary))
    seen = {j["job"] for j in jobs}
    jobs += [
        _record(name, "not started", overrides) for name, overrides in planned_jobs(root).items() if name not in seen
    ]
    jobs.sort(key=lambda j: _job_key(root)(root / j["job"]))
    keys = sorted({k for settings, _ in runs for k in settings})
    varying = [k for k in keys if len({settings.get(k) for settings, _ in runs}) > 1]
    shared = [f"{k}={runs[0][0][k]}" for k in keys if k not in varying]
    labelled = [(" ".join(f"{k}={d[k]}" for k in varying if k in d) or "(all runs)", summary) for d, summary in runs]
    return labelled, shared, jobs


def _record(name: str, status: str, overrides: list[str], **fields) -> dict:
    base = {"job": name, "status": status, "overrides": overrides, "step": None, "checkpoint": None, "detail": ""}
    return base | fields


def job_record(root: Path, job_dir: Path) -> dict:
    """What became of one job: finished (summary.json), failed (failed.json: gan-jax-train caught the error),
    or unfinished (neither: killed, stopped by a signal, or still running), with its overrides, last logged step
    (metrics.jsonl) and newest sealed checkpoint."""
    name = str(job_dir.relative_to(root)) if job_dir != root else "."
    overrides = _overrides(job_dir)
    step, ckpt = last_step(job_dir), newest_checkpoint(job_dir)
    summary, failed = job_dir / "summary.json", job_dir / FAILED
    # Both files: a rerun into the same directory; the newer one says how the last attempt ended.
    if summary.is_file() and not (failed.is_file() and failed.stat().st_mtime > summary.stat().st_mtime):
        return _record(name, "finished", overrides, step=step, checkpoint=ckpt)
    if failed.is_file():
        try:
            failure = json.loads(failed.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            failure = {"error": "?", "message": f"{FAILED} is unreadable"}
        detail = f"{failure.get('error', '?')}: {failure.get('message', '')}"
        return _record(name, "failed", overrides, step=step, checkpoint=ckpt, detail=detail, error=failure.get("error"))
    age = _last_write_age(job_dir)
    ago = f"; last write {_duration(age)} ago" if age is not None else ""
    lock = lock_state(job_dir / LOCK)
    if lock:
        detail = lock + ago
    elif not (job_dir / "config.yaml").is_file():
        detail = f"no config.yaml: stopped before training began (killed, or failed without a {FAILED}){ago}"
    else:
        detail = f"no summary.json or {FAILED}: killed, stopped by a signal, or still running{ago}"
    return _record(name, "unfinished", overrides, step=step, checkpoint=ckpt, detail=detail, last_write_s=age)


def lock_state(path: Path) -> str | None:
    """Running or killed, from a run's lock file (None without one). Its JSON names pid and host: on this host the
    pid decides; elsewhere its age does (a live run touches it every 30 s). Only read: taking the lock's flock,
    even for a moment, could turn a run that is starting away."""
    age = _age(path)
    if age is None:
        return None
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        pid, host = int(holder["pid"]), str(holder["host"])
    except (OSError, ValueError, KeyError, TypeError):
        pid, host = 0, ""
    if host == socket.gethostname() and pid > 0:
        if _pid_alive(pid):
            return f"still running: its {LOCK} names process {pid} on this host, which is alive"
        return f"killed: its {LOCK} names process {pid} on this host, which is gone"
    if age <= LOCK_STALE_S:
        return f"still running: its {LOCK} was refreshed {_duration(age)} ago"
    return f"killed: its {LOCK} was left behind, not refreshed for {_duration(age)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def last_step(job_dir: Path) -> int | None:
    """The `step` of the last whole line of metrics.jsonl (a killed run may leave half a line)."""
    path = job_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 65536))
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            return record["step"]
    return None


def newest_checkpoint(job_dir: Path) -> int | None:
    """The newest sealed save (checkpoints/<step>/ with its manifest; a save in progress has none)."""
    directory = job_dir / "checkpoints"
    steps = [int(p.name) for p in directory.glob("*") if p.name.isdigit() and (p / MANIFEST).is_file()]
    return max(steps, default=None)


def _last_write_age(job_dir: Path) -> float | None:
    ages = [a for a in (_age(job_dir / n) for n in ACTIVITY) if a is not None]
    return min(ages, default=None)


def _age(path: Path) -> float | None:
    """Seconds since `path` was last modified (None when it does not exist)."""
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except OSError:
        return None


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def planned_jobs(root: Path) -> dict[str, list[str]]:
    """The jobs a basic-sweeper multirun (`multirun.yaml`) was to run, by directory name: a sweep that was killed
    or aborted (joblib stops every job when one worker dies) has jobs that never made a directory. Empty when
    it cannot tell (another sweeper, a custom hydra.sweep.subdir, a sweep that needs the config to expand)."""
    path = root / "multirun.yaml"
    try:
        hydra_cfg = yaml.safe_load(path.read_text(encoding="utf-8"))["hydra"]
        if not str(hydra_cfg["sweeper"]["_target_"]).endswith("BasicSweeper"):
            return {}
        if str(hydra_cfg["sweep"]["subdir"]).replace(" ", "") != "${hydra.job.num}":
            return {}
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = [f"{k}={v}" for k, v in (hydra_cfg["sweeper"].get("params") or {}).items()]
        parsed = OverridesParser.create().parse_overrides(params + list(hydra_cfg["overrides"]["task"]))
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:  # no multirun.yaml, or one this script cannot expand: list only the jobs on disk
        return {}
    return {str(i): overrides for i, overrides in enumerate(job for batch in batches for job in batch)}


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


def jobs_markdown(jobs: Sequence[dict]) -> str:
    """The jobs left out of the table (failed, unfinished, not started), with the overrides that set them apart."""
    left_out = [j for j in jobs if j["status"] != "finished"]
    if not left_out:
        return ""
    everywhere = set.intersection(*(set(j["overrides"]) for j in jobs))
    counts = ", ".join(f"{sum(j['status'] == s for j in jobs)} {s}" for s in STATUSES)
    lines = [f"Jobs: {counts}; left out of the table:", ""]
    lines += ["| job | status | overrides | last step | checkpoint | why |", "| --- | --- | --- | --- | --- | --- |"]
    for j in left_out:
        own = " ".join(o for o in j["overrides"] if o not in everywhere) or "–"
        cells = [j["job"], j["status"], own, _cell(j["step"]), _cell(j["checkpoint"]), j["detail"] or "–"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: int | None) -> str:
    return "–" if value is None else str(value)


def write_json(
    rows: Sequence[dict], metrics: Sequence[str], shared: Sequence[str], jobs: Sequence[dict], path: Path
) -> None:
    """The table and every job as JSON (NaN as null): what scripts read instead of the markdown."""

    def num(x: float) -> float | None:
        return None if math.isnan(x) or math.isinf(x) else x

    configurations = [
        {"configuration": r["configuration"], "n": r["n"]}
        | {m: {"mean": num(r[m][0]), "se": num(r[m][1])} for m in metrics}
        for r in rows
    ]
    counts = {s: sum(j["status"] == s for j in jobs) for s in STATUSES}
    record = {"shared": list(shared), "configurations": configurations, "counts": counts, "jobs": list(jobs)}
    path.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def _report_jobs(jobs: Sequence[dict]) -> None:
    for j in jobs:
        if j["status"] == "failed":
            print(f"aggregate_sweep: job {j['job']} failed ({j['detail']}); left out", file=sys.stderr)
        elif j["status"] == "unfinished":
            print(
                f"aggregate_sweep: no summary.json in job {j['job']}: unfinished ({j['detail']}); left out",
                file=sys.stderr,
            )
        elif j["status"] == "not started":
            print(f"aggregate_sweep: job {j['job']} of the sweep never started; left out", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path, help="a multirun directory (or any directory of runs)")
    parser.add_argument("--metrics", nargs="+", help="summary keys to aggregate (default: every measured value)")
    parser.add_argument("--out", type=Path, help="output prefix (default: DIR/aggregate)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any job did not finish")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"aggregate_sweep: error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    runs, shared, jobs = collect(args.dir)
    _report_jobs(jobs)
    if not jobs:
        print(f"aggregate_sweep: error: no runs under {args.dir}", file=sys.stderr)
        return 2
    metrics = metric_names(runs, args.metrics)
    rows = aggregate(runs, metrics)
    prefix = args.out or args.dir / "aggregate"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    parts = ([to_markdown(rows, metrics, shared)] if runs else []) + [jobs_markdown(jobs)]
    markdown = "\n".join(p for p in parts if p)
    prefix.with_suffix(".md").write_text(markdown, encoding="utf-8")
    write_csv(rows, metrics, prefix.with_suffix(".csv"))
    write_json(rows, metrics, shared, jobs, prefix.with_suffix(".json"))
    print(markdown, end="")
    if not runs:
        print(f"aggregate_sweep: error: no summary.json under {args.dir} (no job finished)", file=sys.stderr)
        return 2
    return 1 if args.strict and any(j["status"] != "finished" for j in jobs) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak test of exact resume: one run interrupted by SIGTERMs and SIGKILLs at random steps (fixed seed), resumed
after each, must end with the straight run's metrics.jsonl and samples, bit for bit.

    python scripts/soak.py --steps 5000 --terms 10 --kills 5 --out /tmp/soak [override ...]

Prints a JSON report (each interruption: signal, the step it hit, the step resumed from) and exits 1 on any
difference. `tests/test_soak.py` runs it at the issue's size with a tiny toy model.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
STEP_LINE = re.compile(r"step (\d+)/(\d+)")


def _command(run_dir: Path, steps: int, overrides: list[str], resume: bool) -> list[str]:
    args = [str(BIN / "gan-jax-train"), *overrides, f"train.steps={steps}", f"hydra.run.dir={run_dir}"]
    return args + (["train.resume=true"] if resume else [])


def _run_until(cmd: list[str], target: int | None, sig: int, timeout: float) -> tuple[int, int]:
    """Run `cmd`; once its status line reaches `target`, send `sig`. (exit code, last step it printed)."""
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "disabled")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline, last, sent = time.monotonic() + timeout, 0, False
    assert proc.stdout is not None
    for line in proc.stdout:
        match = STEP_LINE.search(line)
        if match:
            last = int(match.group(1))
        if target is not None and not sent and last >= target:
            proc.send_signal(sig)
            sent = True
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{' '.join(cmd)} ran past {timeout} s")
    return proc.wait(), last


def interruption_plan(steps: int, terms: int, kills: int, seed: int) -> list[tuple[int, str]]:
    """Sorted (step, signal name) pairs: distinct random steps in (0, steps), signals shuffled."""
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, steps), terms + kills))
    names = ["SIGTERM"] * terms + ["SIGKILL"] * kills
    rng.shuffle(names)
    return list(zip(points, names, strict=True))


def soak(out: Path, steps: int, terms: int, kills: int, seed: int, overrides: list[str], timeout: float) -> dict:
    """Runs the interrupted run and the straight run in `out`; returns the report (`identical` says it all)."""
    interrupted, straight = out / "interrupted", out / "straight"
    events, resume = [], False
    for target, name in interruption_plan(steps, terms, kills, seed):
        code, reached = _run_until(
            _command(interrupted, steps, overrides, resume), target, getattr(signal, name), timeout
        )
        expected = 0 if name == "SIGTERM" else -signal.SIGKILL
        events.append({"signal": name, "target": target, "reached": reached, "exit": code, "expected_exit": expected})
        resume = True
    code, _ = _run_until(_command(interrupted, steps, overrides, resume), None, 0, timeout)
    events.append({"signal": None, "exit": code, "expected_exit": 0})
    code, _ = _run_until(_command(straight, steps, overrides, False), None, 0, timeout)
    assert code == 0, f"the straight run failed ({code})"
    ours, theirs = (d / "metrics.jsonl" for d in (interrupted, straight))
    identical = ours.read_text() == theirs.read_text() and _samples_equal(interrupted, straight)
    exits_ok = all(e["exit"] == e["expected_exit"] for e in events)
    return {"steps": steps, "events": events, "identical": identical, "exits_as_expected": exits_ok}


def _samples_equal(a: Path, b: Path) -> bool:
    import numpy as np

    import gan_jax

    return bool(np.array_equal(gan_jax.load(a).sample(256, seed=1), gan_jax.load(b).sample(256, seed=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--terms", type=int, default=10)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per launch")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("overrides", nargs="*", help="gan-jax-train overrides (default: the toy ring)")
    args = parser.parse_args()
    report = soak(args.out, args.steps, args.terms, args.kills, args.seed, args.overrides, args.timeout)
    print(json.dumps(report, indent=1))
    sys.exit(0 if report["identical"] and report["exits_as_expected"] else 1)


if __name__ == "__main__":
    main()

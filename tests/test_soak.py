"""The soak of [reliability]: 5,000 steps interrupted by 10 SIGTERMs and 5 SIGKILLs at random steps (seed 0),
resumed after each, end bit-identical to the straight run (metrics.jsonl and samples): scripts/soak.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from soak import interruption_plan, soak

TINY = (
    "experiment=toy_ring",
    "model.g_widths=[16,16]",
    "model.d_widths=[16,16]",
    "train.batch_size=64",
    "train.steps_per_call=50",
    "train.log_every=50",
    "train.ckpt_every=250",
    "eval.every=1000",
    "eval.num_samples=500",
    "logger=none",
    "logger.progress=false",
)


def test_interruption_plan_is_fixed_by_the_seed():
    plan = interruption_plan(5000, 10, 5, seed=0)
    assert plan == interruption_plan(5000, 10, 5, seed=0) and plan != interruption_plan(5000, 10, 5, seed=1)
    assert [s for s, _ in plan] == sorted({s for s, _ in plan}) and all(0 < s < 5000 for s, _ in plan)
    assert sorted(name for _, name in plan) == ["SIGKILL"] * 5 + ["SIGTERM"] * 10


def test_soak_5000_steps_10_sigterms_5_sigkills_is_bit_identical(tmp_path):
    report = soak(tmp_path, 5000, 10, 5, seed=0, overrides=list(TINY), timeout=300)
    assert report["exits_as_expected"], report["events"]
    assert report["identical"], report["events"]
    assert len(report["events"]) == 16

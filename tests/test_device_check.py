"""scripts/device_check.sh: the accelerator check's dry run on the CPU writes one JSON file with every benchmark
case, every entry a status (ok / lowered / same_as / skipped / error) and finite positive numbers where measured;
a failing or overrunning measurement is recorded as a string, never a crash. Plus its pure pieces: the peak
table, MFU and speedups, and a worker killed at its time share."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATUSES = {"ok", "lowered", "same_as", "skipped", "error"}
NUMBERS = ("ms_per_step", "steps_per_s", "flops_per_step", "compile_s", "images_per_s", "member_steps_per_s")


def _load(name: str):
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("device_check") / "x.json"
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "device_check.sh"), "--dry-run", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), time.perf_counter() - t0


def _entries(rec: dict):
    """(path, entry) of every measurement in the record."""
    yield "device.jax", rec["device"]["jax"]
    yield "device.torch", rec["device"]["torch"]
    yield "population.one", rec["population"]["one"]
    yield "population.many", rec["population"]["many"]
    yield "inception", rec["inception"]
    for case, entry in rec["cases"].items():
        for dtype, row in entry["jax"].items():
            yield f"cases.{case}.jax.{dtype}", row
        if "status" in entry["torch"]:
            yield f"cases.{case}.torch", entry["torch"]
        else:
            for variant, row in entry["torch"].items():
                yield f"cases.{case}.torch.{variant}", row


def test_dry_run_writes_every_case(dry_run):
    rec, wall = dry_run
    benchmark = _load("benchmark")
    assert rec["dry_run"] is True and rec["finished"] is not None
    assert rec["elapsed_s"] <= rec["budget_s"] + 10, "the budget bounds the run"
    assert wall < 120
    assert set(rec["cases"]) == set(benchmark.CASES), "every case of benchmark.CASES, picked up when it runs"
    for case, entry in rec["cases"].items():
        assert entry["overrides"] == list(benchmark.CASES[case])
        assert set(entry["jax"]) == {"float32", "bfloat16"}
        if case in benchmark.TORCH_CASES:
            assert set(entry["torch"]) == {"eager_float32", "eager_bfloat16", "compile_float32", "compile_bfloat16"}
        else:
            assert entry["torch"]["status"] == "skipped"
    assert {"population", "inception", "device", "targets", "errors", "settings"} <= set(rec)
    assert rec["targets"]["meaningful"] is False


def test_dry_run_entries_have_a_status_and_finite_numbers(dry_run):
    rec, _ = dry_run
    for path, entry in _entries(rec):
        assert entry["status"] in STATUSES, (path, entry)
        if entry["status"] in ("skipped", "error"):
            assert isinstance(entry[entry["status"]], str) and entry[entry["status"]], (path, entry)
        if entry["status"] == "same_as":
            assert isinstance(entry["same_as"], str)
        if entry["status"] in ("ok", "lowered"):
            for key in NUMBERS:
                if key in entry:
                    assert isinstance(entry[key], int | float), (path, key, entry[key])
                    assert math.isfinite(entry[key]) and entry[key] > 0, (path, key, entry[key])
    # errors are strings; in the dry run only a measurement cut off by the budget (a busy CPU) may be one
    assert all(isinstance(e, str) for e in rec["errors"])
    assert all("timeout" in e for e in rec["errors"]), rec["errors"]


def test_dry_run_measures_the_first_items(dry_run):
    """What runs first in the budget: device info, the MLP step (compiled and timed), its dtype rules."""
    rec, _ = dry_run
    info = rec["device"]["jax"]
    assert info["status"] == "ok" and info["backend"] == "cpu" and info["jax"]
    assert rec["device"]["torch"]["status"] == "ok"
    toy = rec["cases"]["toy_mlp"]["jax"]
    assert toy["float32"]["status"] == "ok", toy
    assert toy["float32"]["ms_per_step"] > 0 and toy["float32"]["flops_per_step"] > 0
    assert toy["float32"]["batch_size"] == 4
    assert toy["bfloat16"]["status"] == "skipped" and "compute_dtype" in toy["bfloat16"]["skipped"]
    sn = rec["cases"]["sngan32_bf16"]["jax"]
    assert sn["bfloat16"] == {"status": "same_as", "same_as": "sngan32.bfloat16"}
    assert sn["float32"]["status"] == "skipped"
    eager = rec["cases"]["toy_mlp"]["torch"]["eager_float32"]
    if eager["status"] == "ok":
        assert eager["ms_per_step"] > 0 and eager["batch_size"] == 4
        assert isinstance(rec["cases"]["toy_mlp"]["speedup"]["eager_float32"], float)


def test_peaks_mfu_and_speedups():
    dc = _load("device_check")
    assert dc.peak_for("NVIDIA H100 80GB HBM3")["name"] == "H100 SXM5"
    assert dc.peak_for("NVIDIA H100 PCIe")["name"] == "H100 PCIe"
    assert dc.peak_for("NVIDIA H200")["bfloat16"] == 989.5
    assert dc.peak_for("cpu") is None
    ok = {"status": "ok", "batch_size": 256}
    rec = {
        "dry_run": False,
        "device": {"jax": {"status": "ok", "device_kind": "NVIDIA H100 80GB HBM3"}},
        "cases": {
            "c": {
                "jax": {
                    "bfloat16": {**ok, "flops_per_step": 989.4e9, "ms_per_step": 2.0},  # 494.7 TFLOP/s: MFU 0.5
                    "float32": {**ok, "flops_per_step": 494.7e9, "ms_per_step": 4.0},  # 123.7 of 494.7 (TF32)
                },
                "torch": {
                    "eager_bfloat16": {**ok, "ms_per_step": 5.0},
                    "compile_float32": {**ok, "ms_per_step": 3.0},
                    "eager_float32": {"status": "error", "error": "boom"},
                },
            }
        },
        "population": {"one": {"status": "ok", "ms_per_step": 2.0}, "many": {**ok, "ms_per_step": 5.0, "members": 16}},
    }
    dc.derive(rec)
    jax_rows, speed = rec["cases"]["c"]["jax"], rec["cases"]["c"]["speedup"]
    assert jax_rows["bfloat16"]["mfu"] == pytest.approx(0.5)
    assert jax_rows["float32"]["mfu"] == pytest.approx(0.25)
    assert speed == {"eager_bfloat16": pytest.approx(2.5), "compile_float32": pytest.approx(0.75)}
    checks = rec["targets"]["checks"]
    assert checks["mfu_bfloat16"]["c"]["ok"] is True
    assert checks["eager"]["c/bfloat16"]["ok"] is True and checks["compile"]["c/float32"]["ok"] is False
    assert rec["population"]["time_vs_one"] == pytest.approx(2.5) and checks["population"]["ok"] is True


def test_failing_item_is_recorded_and_the_next_runs(capsys):
    dc = _load("device_check")

    def handler(item):
        if item["id"] == "bad":
            raise RuntimeError("out of memory")
        return {"value": 1.0}

    spec = {"deadline": time.time() + 60, "items": [{"id": "bad"}, {"id": "good"}]}
    dc.run_items(spec, handler)
    lines = [json.loads(x[len(dc.PREFIX) :]) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["result"]["status"] == "error" and lines[0]["result"]["error"] == "RuntimeError: out of memory"
    assert lines[1]["result"]["status"] == "ok" and lines[1]["result"]["value"] == 1.0


def test_worker_killed_at_its_share_keeps_the_json(tmp_path):
    """A worker that overruns its share is killed: the running item is a timeout error, the rest skipped."""
    dc = _load("device_check")
    args = argparse.Namespace(out=str(tmp_path / "x.json"), budget=10.0, dry_run=True, grace=0.0)
    run = dc.Run(args)
    run.worker_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    slow = {"kind": "population", "members": 1, "steps_per_call": 1, "seconds": 60.0, "overrides": []}
    items = [{"id": run.slot("a", run.record, "a"), **slow}, {"id": run.slot("b", run.record, "b"), **slow}]
    t0 = time.perf_counter()
    run.run_group("jax", items, timeout=1.0)  # still importing JAX, or in item a's 60 timed seconds
    assert time.perf_counter() - t0 < 10
    rec = json.loads((tmp_path / "x.json").read_text())
    assert rec["a"]["status"] == "error" and rec["a"]["error"].startswith("timeout")
    assert rec["b"]["status"] == "skipped"
    assert rec["errors"] and rec["errors"][0].startswith("a: timeout")

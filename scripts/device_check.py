#!/usr/bin/env python
"""The accelerator check: every benchmark that needs a GPU, in one run under a time budget, into ONE JSON file.

    bash scripts/device_check.sh                        # on the GPU machine: installs what is missing, runs this
    python scripts/device_check.py --dry-run --out x.json   # on a CPU: tiny sizes, every code path, <= 40 s
    python scripts/device_check.py --dry-run --full         # on a CPU: compiles and times every item (minutes)

For each case of scripts/benchmark.py's CASES (read when it runs, so new cases join by themselves): the JAX step in
float32 and bfloat16 (`model.compute_dtype`, or `model.num_bf16_res` for StyleGAN2; a model with neither records
why bfloat16 is skipped) at batch max(the case's, --batch 256), with XLA's FLOPs per step, compile time, time per
step and MFU; for the cases in benchmark.TORCH_CASES the PyTorch reference (scripts/torch_reference.py) at the
same batch, eager and `torch.compile`, float32 (TF32 allowed, as XLA does by default) and bfloat16 autocast, with
JAX's speedup over each. Then a population of 16 toy GANs against 1, and Inception images/s (on random weights of
the right shapes when the converted weights are absent: the speed does not depend on their values).

Each group of measurements runs in its own process (`--worker`): phase 1 (up to 75% of --budget, default 420 s)
the device, the population, each case's JAX rows and PyTorch eager, Inception; phase 2 torch.compile; phase 3
(--case-batch) the cases again at their own batch sizes. A group may use its phase's time left less --reserve s
for each later group of the phase, and is killed when it overruns: its finished rows are kept, the running one
becomes a timeout error, the rest are skipped. The JSON is rewritten after every row, so a run killed from outside
keeps what it measured ("finished" stays null). Every entry has a "status": ok, lowered (dry run: built, traced
and costed, not compiled), same_as, skipped or error, with the reason as a string.

The quick dry run (--dry-run) runs three workers at once on the CPU: toy_mlp compiled and timed, every other case
lowered in one dtype, the population (2 against 1), Inception at batch 1, PyTorch eager and torch.compile (backend
"eager": tracing only) on toy_mlp and eager float32 on the others; what the 40 s budget leaves out is skipped.

MFU = XLA cost-analysis FLOPs per step (the unoptimised program, as benchmark.py) x steps/s / dense peak of the
dtype: bfloat16 against the bf16 tensor-core peak, float32 against the TF32 tensor-core peak (JAX computes
float32 dots and convolutions in TF32 on these GPUs by default); PEAK_TFLOPS below lists the numbers used. The
PyTorch rows' MFU uses the JAX program's FLOPs at the same batch (the same networks).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PREFIX = "DEVCHECK "  # worker result lines on stdout start with this
DTYPES = ("float32", "bfloat16")
TORCH_VARIANTS = ("eager_float32", "eager_bfloat16", "compile_bfloat16", "compile_float32")

# Dense (no 2:4 sparsity) peak TFLOP/s by device kind, matched in order on jax's device_kind. Sources: NVIDIA's
# "H100 Tensor Core GPU Architecture" whitepaper (SXM5 / PCIe at boost clock) and the H100 and H200 product
# datasheets, whose tensor-core numbers are quoted with sparsity (halved here); A100: its datasheet.
PEAK_TFLOPS = (
    ("H200 NVL", {"bfloat16": 835.5, "tf32": 417.5, "float32": 60.0, "name": "H200 NVL"}),
    ("H200", {"bfloat16": 989.5, "tf32": 494.5, "float32": 67.0, "name": "H200 SXM"}),
    ("H100 NVL", {"bfloat16": 835.5, "tf32": 417.5, "float32": 60.0, "name": "H100 NVL"}),
    ("H100 PCIe", {"bfloat16": 756.5, "tf32": 378.0, "float32": 51.2, "name": "H100 PCIe"}),
    ("H100", {"bfloat16": 989.4, "tf32": 494.7, "float32": 66.9, "name": "H100 SXM5"}),
    ("A100", {"bfloat16": 312.0, "tf32": 156.0, "float32": 19.5, "name": "A100"}),
)
PEAK_SOURCE = (
    "NVIDIA H100 Tensor Core GPU Architecture whitepaper and H100/H200 datasheets (dense = half the quoted "
    "sparse tensor-core numbers); A100 datasheet"
)
TARGETS = {
    "speedup_vs_torch_eager_min": 2.0,
    "speedup_vs_torch_compile_min": 1.0,
    "mfu_bfloat16_min": 0.40,
    "mfu_min_batch": 256,
    "population_16_vs_1_max": 3.0,
}
# Dry run: the case's model shrunk by whichever of these fields its config has (a new model with other width
# fields runs at its own size; add them here), one critic update, `DRY_BATCH` examples.
TINY_MODEL = {
    "g_widths": "[16]",
    "d_widths": "[16]",
    "width_scale": "0.0625",
    "g_channels": "8",
    "d_channels": "8",
    "ngf": "4",
    "ndf": "4",
    "n_blocks": "1",
    "n_layers": "1",
    "pool_size": "2",
    "channel_base": "256",
    "channel_max": "16",
    "mapping_layers": "1",
    "z_dim": "16",
    "w_dim": "16",
}
DRY_BATCH = 4
BF16_RES = 4  # bfloat16 resolutions of a model with `num_bf16_res` when its case computes in float32


def now() -> float:
    return time.time()


def iso(t: float | None = None) -> str:
    return datetime.datetime.fromtimestamp(now() if t is None else t, datetime.UTC).isoformat(timespec="seconds")


def err(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------------------------------
# Workers: one process per group of items, one result line per item.


def emit(item_id: str, result: dict) -> None:
    print(PREFIX + json.dumps({"id": item_id, "result": result}, default=str), flush=True)


def load_module(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_items(spec: dict, handler) -> None:
    """Runs each item unless the worker's deadline has passed; one failure never stops the others."""
    for item in spec["items"]:
        if now() > spec["deadline"]:
            emit(item["id"], {"status": "skipped", "skipped": "budget: the group's time was spent before it"})
            continue
        t0 = time.perf_counter()
        try:
            result = handler(item)
        except Exception as e:  # recorded, and the next item runs
            result = {"status": "error", "error": err(e), "traceback": traceback.format_exc(limit=-6)}
        result.setdefault("status", "ok")
        result["wall_s"] = round(time.perf_counter() - t0, 3)
        emit(item["id"], result)


def jax_worker(spec: dict) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    benchmark = load_module("benchmark", HERE / "benchmark.py")
    import jax

    def case_overrides(item: dict) -> tuple[list[str], object]:
        """The item's overrides (batch, dtype, tiny model) and the config they compose to."""
        case = item["case"]
        cfg = benchmark.case_config(case)
        overrides: list[str] = []
        if item.get("tiny"):
            overrides += [f"model.{k}={v}" for k, v in TINY_MODEL.items() if hasattr(cfg.model, k)]
            overrides.append("train.n_critic=1")
        if "batch" in item:
            overrides.append(f"train.batch_size={item['batch']}")
        elif cfg.train.batch_size < item.get("min_batch", 0):
            overrides.append(f"train.batch_size={item['min_batch']}")
        dtype, m = item["dtype"], cfg.model
        if hasattr(m, "compute_dtype"):  # dcgan, resnet: the convolutions' dtype
            if m.compute_dtype != dtype:
                overrides.append(f"model.compute_dtype={dtype}")
        elif hasattr(m, "num_bf16_res"):  # stylegan2: bfloat16 in the top resolutions (the reference's fp16)
            if dtype == "float32" and m.num_bf16_res:
                overrides.append("model.num_bf16_res=0")
            elif dtype == "bfloat16" and not m.num_bf16_res:
                overrides.append(f"model.num_bf16_res={BF16_RES}")
        elif dtype != "float32":
            raise Unsupported(f"model={m.name} has no compute_dtype option: the family's step runs in float32 only")
        return overrides, cfg

    lowered: set[str] = set()  # quick dry run: the cases already lowered in one dtype

    def handle(item: dict) -> dict:
        kind = item["kind"]
        if kind == "info":
            return jax_info(item)
        if kind == "case":
            try:
                overrides, _ = case_overrides(item)
            except Unsupported as e:
                return {"status": "skipped", "skipped": str(e)}
            if item["mode"] == "lower":
                if item["case"] in lowered:
                    return {"status": "skipped", "skipped": "dry run: one dtype per case is lowered"}
                cfg = benchmark.case_config(item["case"], overrides)
                gan, source, state = benchmark.build(item["case"], cfg=cfg)
                lowered.add(item["case"])
                return {
                    "status": "lowered",
                    "skipped": "dry run: traced and costed, not compiled (XLA:CPU takes 10-20 s per conv step)",
                    "batch_size": cfg.train.batch_size,
                    "compute_dtype": getattr(cfg.model, "compute_dtype", "float32"),
                    "overrides": overrides,
                    "flops_per_step": benchmark.step_flops(gan, state, source.arrays),
                }
            return benchmark.time_case(item["case"], item["steps_per_call"], item["seconds"], overrides=overrides)
        if kind == "population":
            return benchmark.time_population(
                item["members"], item["steps_per_call"], item["seconds"], item["overrides"]
            )
        if kind == "inception":
            row = benchmark.time_inception(item["batch"], item["seconds"], random_weights=True)
            return {"status": "skipped", **row} if "skipped" in row else row
        raise ValueError(f"unknown item kind {kind!r}")

    def jax_info(item: dict) -> dict:
        import jax.numpy as jnp

        dev = jax.devices()[0]
        info = {
            "jax": jax.__version__,
            "jaxlib": _version("jaxlib"),
            "flax": _version("flax"),
            "optax": _version("optax"),
            "orbax-checkpoint": _version("orbax-checkpoint"),
            "hydra-core": _version("hydra-core"),
            "python": platform.python_version(),
            "backend": jax.default_backend(),
            "device_kind": dev.device_kind,
            "device_count": jax.device_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }
        with contextlib.suppress(Exception):
            info["default_matmul_precision"] = str(jax.config.jax_default_matmul_precision)
        with contextlib.suppress(Exception):
            stats = dev.memory_stats() or {}
            info["memory_bytes_limit"] = stats.get("bytes_limit")
        # The achievable matmul rate: an n x n x n product in bfloat16 and in float32 (TF32 by default on GPU).
        n = item["matmul_n"]
        probe = {}
        for dtype in DTYPES:
            try:
                a = jnp.ones((n, n), dtype) * 0.01
                f = jax.jit(lambda x: x @ x)
                jax.block_until_ready(f(a))
                reps, t0 = 0, time.perf_counter()
                while reps < 3 or time.perf_counter() - t0 < item["seconds"]:
                    jax.block_until_ready(f(a))
                    reps += 1
                probe[dtype] = round(2 * n**3 * reps / (time.perf_counter() - t0) / 1e12, 3)
            except Exception as e:
                probe[dtype] = err(e)
        info["matmul_probe"] = {"n": n, "tflops": probe}
        return info

    run_items(spec, handle)


class Unsupported(Exception):
    """A (case, dtype) the case's model cannot run."""


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_worker(spec: dict) -> None:
    try:
        ref = load_module("torch_reference", HERE / "torch_reference.py")
    except ImportError as e:  # no PyTorch here: every PyTorch row says so
        for item in spec["items"]:
            emit(item["id"], {"status": "skipped", "skipped": f"PyTorch is not importable: {err(e)}"})
        return
    import torch

    threads = spec.get("threads", 0)
    if threads:
        torch.set_num_threads(threads)
    if spec.get("tf32"):
        torch.set_float32_matmul_precision("high")  # float32 matmuls in TF32, as XLA's default precision
    torch.manual_seed(0)

    def handle(item: dict) -> dict:
        if item["kind"] == "info":
            cuda = torch.cuda.is_available()
            return {
                "torch": torch.__version__,
                "cuda": torch.version.cuda,
                "cuda_available": cuda,
                "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                "c_compiler": shutil.which("cc") or shutil.which("gcc"),
            }
        case, mode, dtype = item["case"], item["mode"], item["dtype"]
        batch = item.get("batch") or max(ref.DEFAULT_BATCH[case], item.get("min_batch", 0))
        return ref.time_case(case, item["steps"], item["warmup"], item["device"], batch, dtype, mode, item["backend"])

    run_items(spec, handle)


# ------------------------------------------------------------------------------------------------------------
# The orchestrator: plans the groups, runs each worker under its time share, writes the JSON.


class Run:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Path(args.out)
        self.t0 = now()
        self.deadline = self.t0 + args.budget
        self.record: dict = {
            "schema": 1,
            "tool": "scripts/device_check.py",
            "argv": sys.argv[1:],
            "dry_run": args.dry_run,
            "started": iso(self.t0),
            "finished": None,
            "budget_s": args.budget,
            "elapsed_s": 0.0,
            "settings": {},
            "device": {"jax": {"status": "pending"}, "torch": {"status": "pending"}},
            "cases": {},
            "population": {"one": {"status": "pending"}, "many": {"status": "pending"}},
            "inception": {"status": "pending"},
            "targets": {},
            "errors": [],
        }
        self.slots: dict[str, tuple[dict, str]] = {}  # item id -> (parent dict, key)
        self.lock = threading.RLock()  # the dry run's two workers report from two threads

    def slot(self, item_id: str, parent: dict, key: str) -> str:
        parent[key] = {"status": "pending"}
        self.slots[item_id] = (parent, key)
        return item_id

    def put(self, item_id: str, result: dict) -> None:
        with self.lock:
            parent, key = self.slots[item_id]
            parent[key] = result
            if result.get("status") == "error":
                self.record["errors"].append(f"{item_id}: {result.get('error')}")
            self.write()

    def write(self) -> None:
        with self.lock:
            self._write()

    def _write(self) -> None:
        self.record["elapsed_s"] = round(now() - self.t0, 2)
        with contextlib.suppress(Exception):  # derived values must never cost the measurements
            derive(self.record)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(sanitize(self.record), indent=1, default=str, allow_nan=False) + "\n")
        os.replace(tmp, self.out)

    def run_group(self, worker: str, items: list[dict], timeout: float, extra: dict | None = None) -> None:
        """One worker process for `items`, killed after `timeout` s; each result line lands as it arrives."""
        pending = [it["id"] for it in items]
        if not items:
            return
        if timeout < 0.5:
            for i in pending:
                self.put(i, {"status": "skipped", "skipped": "budget: no time left for this group"})
            return
        spec = {"items": items, "deadline": now() + timeout, **(extra or {})}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--spec", json.dumps(spec)]
        env = dict(self.worker_env)
        with tempfile.TemporaryFile("w+") as stderr:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT, start_new_session=True
            )
            lines: queue.Queue = queue.Queue()
            threading.Thread(
                target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)], daemon=True
            ).start()
            end, killed = now() + timeout + self.args.grace, False
            while True:
                try:
                    line = lines.get(timeout=max(0.05, end - now()))
                except queue.Empty:
                    killed = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    break
                if line is None:
                    break
                if line.startswith(PREFIX):
                    try:
                        msg = json.loads(line[len(PREFIX) :])
                    except ValueError as e:
                        with self.lock:
                            self.record["errors"].append(f"{worker} worker: unreadable line ({e}): {line[:200]}")
                        continue
                    if msg["id"] in pending:
                        pending.remove(msg["id"])
                        self.put(msg["id"], sanitize(msg["result"]))
            rc = proc.wait()
            stderr.seek(0)
            tail = stderr.read()[-1500:]
        # The worker runs its items in order: the first unfinished one was running, the others never started.
        for n, i in enumerate(pending):
            if killed and n > 0:
                self.put(i, {"status": "skipped", "skipped": f"budget: the {worker} worker's {timeout:.0f} s ran out"})
            elif killed:
                why = f"timeout: the {worker} worker was killed {timeout:.0f} s (its share of the budget) after start"
                self.put(i, {"status": "error", "error": f"{why}, in this item; stderr: ...{tail[-300:]}"})
            else:
                self.put(i, {"status": "error", "error": f"the {worker} worker exited ({rc}) in this item: ...{tail}"})

    def left(self) -> float:
        return self.deadline - now()


def sanitize(value):
    """JSON without NaN/inf (recorded as strings)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize(v) for v in value]
    return value


def peak_for(kind: str | None) -> dict | None:
    for key, peak in PEAK_TFLOPS:
        if kind and key.lower() in kind.lower():
            return dict(peak)
    return None


def derive(rec: dict) -> None:
    """MFU, speedups and the targets from what has been measured so far."""
    jax_info = rec["device"].get("jax", {})
    peak = rec["device"].get("peak_tflops")
    if peak is None and jax_info.get("status") == "ok":
        peak = peak_for(jax_info.get("device_kind"))
        rec["device"]["peak_tflops"] = {**peak, "source": PEAK_SOURCE} if peak else None
        if not peak:
            rec["device"]["peak_note"] = f"no peak known for {jax_info.get('device_kind')!r}: no MFU"

    def mfu(flops: float, ms: float, dtype: str) -> float | None:
        if not peak or not flops or not ms:
            return None
        return flops / (ms / 1e3) / (peak["bfloat16" if dtype == "bfloat16" else "tf32"] * 1e12)

    checks: dict = {"eager": {}, "compile": {}, "mfu_bfloat16": {}}
    for case, entry in rec["cases"].items():
        for dtype, row in entry.get("jax", {}).items():
            if row.get("status") == "ok":
                row["mfu"] = mfu(row["flops_per_step"], row["ms_per_step"], dtype)
                row["mfu_peak"] = None if not peak else ("bfloat16" if dtype == "bfloat16" else "tf32")
                if dtype == "bfloat16" and row["mfu"] is not None and row["batch_size"] >= TARGETS["mfu_min_batch"]:
                    checks["mfu_bfloat16"][case] = {
                        "mfu": row["mfu"],
                        "batch_size": row["batch_size"],
                        "ok": row["mfu"] >= TARGETS["mfu_bfloat16_min"],
                    }
        speed = entry.setdefault("speedup", {})
        for variant, trow in entry.get("torch", {}).items():
            if not isinstance(trow, dict) or trow.get("status") != "ok":
                continue
            mode, dtype = variant.split("_", 1)
            jrow = entry.get("jax", {}).get(dtype, {})
            if jrow.get("status") != "ok":
                continue
            if jrow.get("batch_size") != trow.get("batch_size"):
                speed[variant] = f"batch sizes differ: jax {jrow.get('batch_size')}, torch {trow.get('batch_size')}"
                continue
            s = trow["ms_per_step"] / jrow["ms_per_step"]
            speed[variant] = s
            trow["mfu"] = mfu(jrow["flops_per_step"], trow["ms_per_step"], dtype)
            target = TARGETS["speedup_vs_torch_eager_min" if mode == "eager" else "speedup_vs_torch_compile_min"]
            checks[mode][f"{case}/{dtype}"] = {"speedup": s, "ok": s >= target}
    pop = rec["population"]
    one, many = pop.get("one", {}), pop.get("many", {})
    if one.get("status") == "ok" and many.get("status") == "ok":
        pop["time_vs_one"] = many["ms_per_step"] / one["ms_per_step"]
        pop["members"] = many["members"]
        ok = pop["time_vs_one"] <= TARGETS["population_16_vs_1_max"]
        checks["population"] = {"time_vs_one": pop["time_vs_one"], "members": many["members"], "ok": ok}
    rec["targets"] = {
        **TARGETS,
        "meaningful": not rec["dry_run"],
        "note": "dry run: tiny models on a CPU; the numbers only show the code ran" if rec["dry_run"] else "",
        "checks": checks,
    }


DTYPE_KEYS = ("model.compute_dtype=", "model.num_bf16_res=")


def case_dtype(case_overrides: list[str]) -> str | None:
    """The compute dtype a case's own overrides fix, if any."""
    for o in case_overrides:
        if o.startswith("model.compute_dtype="):
            return o.split("=", 1)[1]
        if o.startswith("model.num_bf16_res="):
            return "float32" if o.split("=", 1)[1] == "0" else "bfloat16"
    return None


def plan_and_run(args: argparse.Namespace) -> dict:
    # The orchestrator imports benchmark (and so JAX) only to read CASES; it never touches a device, and
    # preallocating is off here in case something does.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    worker_env = {k: v for k, v in os.environ.items() if k != "XLA_PYTHON_CLIENT_PREALLOCATE"}
    worker_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    worker_env.setdefault("PYTHONUNBUFFERED", "1")
    worker_env.setdefault("WANDB_MODE", "disabled")
    if args.dry_run:
        worker_env["JAX_PLATFORMS"] = "cpu"
        worker_env.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT))
    benchmark = load_module("benchmark", HERE / "benchmark.py")
    cases = [c for c in benchmark.CASES if not args.cases or c in args.cases]
    torch_cases = [c for c in cases if c in benchmark.TORCH_CASES]

    run = Run(args)
    run.worker_env = worker_env
    rec = run.record
    dry, full = args.dry_run, args.dry_run and args.full
    rec["settings"] = {
        "min_batch": None if dry else args.batch,
        "dry_batch": DRY_BATCH if dry else None,
        "steps_per_call": args.steps_per_call,
        "seconds_per_timing": args.seconds,
        "torch_steps": args.torch_steps,
        "torch_warmup": args.torch_warmup,
        "torch_compile_backend": args.compile_backend,
        "torch_float32_tf32": not dry,
        "members": args.members,
        "inception_batch": args.inception_batch,
        "cases": cases,
        "torch_cases": torch_cases,
        "case_batch": bool(args.case_batch),
    }
    with contextlib.suppress(Exception):
        smi = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        rec["device"]["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()

    # --- items -------------------------------------------------------------------------------------------
    dev = rec["device"]
    info = [{"id": run.slot("device.jax", dev, "jax"), "kind": "info", "matmul_n": 256 if dry else 8192}]
    info[0]["seconds"] = 0.0 if dry else 1.0
    pop_common = {"kind": "population", "steps_per_call": 1 if dry else 100, "seconds": args.seconds}
    pop_over = ["train.batch_size=8", "model.g_widths=[16]", "model.d_widths=[16]"] if dry else []
    pop_items = [
        {"id": run.slot("population.one", rec["population"], "one"), "members": 1, **pop_common},
        {"id": run.slot("population.many", rec["population"], "many"), "members": args.members, **pop_common},
    ]
    for it in pop_items:
        it["overrides"] = pop_over
    incep = [
        {
            "id": run.slot("inception", rec, "inception"),
            "kind": "inception",
            "batch": 1 if dry else args.inception_batch,
            "seconds": args.seconds,
        }
    ]

    measured: dict[tuple, str] = {}  # (overrides, dtype, batch) of one program -> the entry that measures it
    jax_groups: dict[str, list[dict]] = {}
    torch_eager: dict[str, list[dict]] = {}
    torch_compile: dict[str, list[dict]] = {}
    device = "cpu" if dry else "auto"

    def case_items(key: str, case: str, batch: dict, first: bool) -> None:
        """The items of one entry rec["cases"][key]: the case at `batch` ({"batch": n}, {"min_batch": n}, or {}:
        the case's own), JAX in both dtypes and, for the PyTorch cases, the four reference variants."""
        entry = rec["cases"][key] = {"case": case, "overrides": list(benchmark.CASES[case]), "jax": {}}
        own = case_dtype(benchmark.CASES[case])
        base = tuple(o for o in benchmark.CASES[case] if not o.startswith(DTYPE_KEYS))
        group, jrec = jax_groups.setdefault(key, []), entry["jax"]
        for dtype in ("bfloat16", "float32"):  # bfloat16 first: the MFU row
            if own is not None and dtype != own:
                jrec[dtype] = {"status": "skipped", "skipped": f"the case's overrides fix its dtype to {own}"}
                continue
            program = (base, dtype, json.dumps(batch))
            if program in measured:
                jrec[dtype] = {"status": "same_as", "same_as": f"{measured[program]}.{dtype}"}
                continue
            measured[program] = key
            # The quick dry run compiles and times the first case only (toy_mlp: a second on XLA:CPU); the others
            # are built, traced and costed in one dtype each (bfloat16 where the model has it), not compiled.
            mode = "lower" if dry and not full and not first else "time"
            item = {"id": run.slot(f"cases.{key}.jax.{dtype}", jrec, dtype), "kind": "case", "case": case, **batch}
            item.update(dtype=dtype, mode=mode, steps_per_call=1 if dry else args.steps_per_call, seconds=args.seconds)
            group.append({**item, **({"tiny": True} if dry else {})})
        if case not in torch_cases:
            entry["torch"] = {"status": "skipped", "skipped": "no PyTorch reference for this case"}
            return
        trec = entry["torch"] = {}
        for variant in TORCH_VARIANTS:
            mode, dtype = variant.split("_", 1)
            if dry and not full and case != torch_cases[0] and variant != "eager_float32":
                trec[variant] = {"status": "skipped", "skipped": "dry run: the first case runs every variant"}
                continue
            item = {"id": run.slot(f"cases.{key}.torch.{variant}", trec, variant), "kind": "case", "case": case}
            item.update(mode=mode, dtype=dtype, device=device, backend=args.compile_backend, **batch)
            item.update(steps=args.torch_steps, warmup=args.torch_warmup)
            (torch_eager if mode == "eager" else torch_compile).setdefault(key, []).append(item)

    for n, case in enumerate(cases):
        case_items(case, case, {"batch": DRY_BATCH} if dry else {"min_batch": args.batch}, n == 0)
    extra_keys = [f"{case}@case_batch" for case in cases] if args.case_batch and not dry else []
    for key in extra_keys:
        case_items(key, key.split("@")[0], {}, False)
    run.write()
    torch_info = [{"id": run.slot("device.torch", dev, "torch"), "kind": "info"}]
    torch_extra = {"tf32": not dry, "threads": 2 if dry else 0}

    # --- groups, in priority order ------------------------------------------------------------------------
    # (worker, items, extra, phase): phase 1 ends at --phase1 of the budget, phase 2 gets the rest and what
    # phase 1 left. Each group may use its phase's time left less --reserve s for each later group of the phase.
    jax_items = [i for g in jax_groups.values() for i in g]
    groups: list[tuple[str, list[dict], dict, int]] = []
    if dry:
        # Three processes at once, two JAX and one PyTorch (imports and XLA:CPU compiles are the dry run's cost,
        # and its timings mean nothing): on a busy CPU they get through more of the budget than one at a time.
        # A case's items stay in one process (its worker lowers one dtype per case).
        timed = [i for i in jax_items if i["mode"] == "time"]
        lowered = [[i for i in jax_groups[c] if i["mode"] != "time"] for c in cases]
        torch_items = torch_info + [i for c in cases for i in torch_eager.get(c, []) + torch_compile.get(c, [])]
        workers = [
            ("jax", info + timed + [i for g in lowered[0::2] for i in g], {}),
            ("jax", incep + pop_items + [i for g in lowered[1::2] for i in g], {}),
            ("torch", torch_items, torch_extra),
        ]
        threads = [
            threading.Thread(target=run.run_group, args=(w, items, run.left() - 1, extra))
            for w, items, extra in workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:  # one process per case and framework: a slow or hung compile costs only its own group
        # phase 1: device, population, each case's JAX rows and PyTorch eager, Inception; phase 2: torch.compile;
        # phase 3 (--case-batch): the cases again at their own batch sizes
        groups.append(("jax", info + pop_items, {}, 1))
        first_torch = True
        for case in cases:
            groups.append(("jax", jax_groups.get(case, []), {}, 1))
            if case in torch_eager:
                groups.append(("torch", (torch_info if first_torch else []) + torch_eager[case], torch_extra, 1))
                first_torch = False
        groups.append(("jax", incep, {}, 1))
        if first_torch:
            groups.append(("torch", torch_info, torch_extra, 1))
        for case in cases:
            groups.append(("torch", torch_compile.get(case, []), torch_extra, 2))
        for key in extra_keys:
            groups.append(("jax", jax_groups.get(key, []), {}, 3))
            t_items = torch_eager.get(key, []) + torch_compile.get(key, [])
            groups.append(("torch", t_items, torch_extra, 3))
    groups = [g for g in groups if g[1]]
    phase1_end = run.t0 + args.phase1 * args.budget
    for i, (worker, items, extra, phase) in enumerate(groups):
        later = sum(1 for g in groups[i + 1 :] if g[3] == phase)
        end = min(run.deadline, phase1_end) if phase == 1 else run.deadline
        run.run_group(worker, items, end - now() - args.reserve * later, extra)
    for key in [k for k in rec["cases"] if "@" in k]:  # the extra entries that measured nothing: dropped
        if all(r.get("status") != "ok" for r in rec["cases"][key]["jax"].values()):
            del rec["cases"][key]

    rec["finished"] = iso()
    run.write()
    return rec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks the code, not the speed")
    ap.add_argument("--full", action="store_true", help="with --dry-run: compile and time every item (minutes)")
    default_out = Path(os.environ["OUT"]) / "device_check.json" if os.environ.get("OUT") else Path("device_check.json")
    ap.add_argument("--out", default=str(default_out), help="the JSON file ($OUT/device_check.json if $OUT is set)")
    ap.add_argument("--budget", type=float, default=None, help="seconds for everything (default 420; dry run 40)")
    ap.add_argument("--cases", nargs="+", default=None, help="only these benchmark cases (default: all of CASES)")
    ap.add_argument("--batch", type=int, default=256, help="minimum batch size on the GPU (the MFU rows)")
    ap.add_argument("--steps-per-call", type=int, default=10, help="JAX steps fused per dispatch on the GPU")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per JAX measurement (2; dry run 0)")
    ap.add_argument("--torch-steps", type=int, default=None, help="timed PyTorch steps (30; dry run 1)")
    ap.add_argument("--torch-warmup", type=int, default=None, help="untimed PyTorch steps first (5; dry run 1)")
    ap.add_argument("--compile-backend", default=None, help="torch.compile backend (inductor; quick dry run: eager)")
    ap.add_argument("--members", type=int, default=None, help="population size (16; dry run 2)")
    ap.add_argument("--inception-batch", type=int, default=200, help="inception batch size on the GPU")
    ap.add_argument(
        "--case-batch", action="store_true", help="GPU: last, each case again at its own batch size (case@case_batch)"
    )
    ap.add_argument("--reserve", type=float, default=None, help="seconds kept for each later group (20; dry run 2)")
    ap.add_argument("--grace", type=float, default=None, help="seconds past a group's share before it is killed")
    ap.add_argument("--phase1", type=float, default=None, help="share of the budget for phase 1 (0.75; dry 0.7)")
    ap.add_argument("--worker", choices=["jax", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        (jax_worker if args.worker == "jax" else torch_worker)(json.loads(args.spec))
        return 0
    dry = args.dry_run
    if args.full and not dry:
        ap.error("--full goes with --dry-run")
    defaults = {
        "budget": (900.0 if args.full else 40.0) if dry else 420.0,
        "seconds": 0.0 if dry else 2.0,
        "torch_steps": 1 if dry else 30,
        "torch_warmup": 1 if dry else 5,
        "compile_backend": "eager" if dry else "inductor",
        "members": 2 if dry else 16,
        "reserve": 2.0 if dry else 20.0,
        "phase1": 0.7 if dry else 0.75,
        "grace": 1.0 if dry else 5.0,
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    rec = plan_and_run(args)
    print(f"device_check: wrote {args.out} in {rec['elapsed_s']:.1f} s, {len(rec['errors'])} errors", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

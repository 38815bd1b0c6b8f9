"""Parity of scripts/torch_stylegan2.py with a checkout of NVlabs/stylegan2-ada-pytorch (not vendored; CI skips this).

    git --git-dir=<mirror of NVlabs/stylegan2-ada-pytorch> archive HEAD | tar -x -C /tmp/sg2ref_c
    python scripts/check_stylegan2_reference.py --reference /tmp/sg2ref_c

For each spec it builds the reference's and our Generator / Discriminator after the same torch.manual_seed, checks
that the state_dicts have the same keys (in order), shapes and initial values, loads the reference's weights into
ours with strict=True (after perturbing the zero-initialised biases, noise strengths and w_avg so that those paths
count), then compares G images (eval / fused and train / non-fused modconv, const, random and no noise, truncation),
D logits, the gradients and losses of Gmain, Greg, Dmain, Dreg, Gboth and Dboth under the same seeds, and (at the
small specs) two whole training iterations run by our loop around the reference's modules and loss. It prints a
table of parameter counts and max abs differences and exits non-zero past the tolerance.
The reference imports unchanged on CPU (its CUDA plugins are only tried on CUDA tensors); the shims here only pin
that down and capture its training_stats.report values, without editing the checkout.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import types
import warnings
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch_stylegan2 as ours


def _small(**overrides: Any) -> dict[str, Any]:
    """The cifar config at 64 channels and z = w = 64, with the reference's default loss (mixing 0.9, pl 2)."""
    tiny = {"z_dim": 64, "w_dim": 64, "channel_base": 1024, "channel_max": 64, "mbstd_group": 2}
    loss = {"style_mixing": 0.9, "pl_weight": 2.0, "gamma": 1.0, "ema_kimg": 1.0}
    return {**ours.CIFAR_SPEC, **tiny, **loss, **overrides}


SPECS: dict[str, dict[str, Any]] = {
    "cifar": dict(ours.CIFAR_SPEC),
    "cond10 clamp0.5": _small(c_dim=10, conv_clamp=0.5, d_architecture="resnet"),
    "G skip / D resnet": _small(d_architecture="resnet"),
    "G skip / D skip": _small(d_architecture="skip"),
    "G orig / D orig": _small(g_architecture="orig"),
    "G resnet / D resnet": _small(g_architecture="resnet", d_architecture="resnet"),
    "16x16x1": _small(resolution=16, channels=1, d_architecture="resnet"),
    "64x64 map8 c3": _small(resolution=64, mapping_layers=8, channel_base=2048, channel_max=32, c_dim=3),
    "fp16 res2": _small(num_fp16_res=2, d_architecture="resnet"),
}
TOL = {"fp32": 1e-4, "fp16": 2e-2}  # relative to the reference's largest magnitude


def load_reference(path: str) -> tuple[types.ModuleType, types.ModuleType, dict[str, torch.Tensor]]:
    """Import training.networks / training.loss from the checkout; capture its training_stats.report calls."""
    sys.path.insert(0, str(Path(path).resolve()))
    warnings.filterwarnings("ignore")
    from torch_utils import training_stats
    from torch_utils.ops import bias_act, conv2d_gradfix, upfirdn2d

    bias_act._init = lambda: False  # never try to build the CUDA plugins: the `_ref` paths are the reference
    upfirdn2d._init = lambda: False
    conv2d_gradfix.enabled = False
    captured: dict[str, torch.Tensor] = {}

    def report(name: str, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            captured[name] = value.detach()
        return value

    training_stats.report = report
    from training import loss, networks

    return networks, loss, captured


def maxdiff(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    if a is None or b is None:
        return 0.0 if a is None and b is None else math.inf
    return 0.0 if a.numel() == 0 else (a.double() - b.double()).abs().max().item()


def maxabs(a: torch.Tensor | None) -> float:
    return 0.0 if a is None or a.numel() == 0 else a.double().abs().max().item()


def build(ref_nets: types.ModuleType, spec: dict[str, Any], seed: int) -> dict[str, Any]:
    """Both pairs of networks after the same seed; keys, shapes and same-seed initial values compared."""
    nets: dict[str, Any] = {}
    for name, mod in (("ref", ref_nets), ("ours", ours)):
        torch.manual_seed(seed)
        nets[name + "_G"] = mod.Generator(**ours.generator_kwargs(spec))
        nets[name + "_D"] = mod.Discriminator(**ours.discriminator_kwargs(spec))
    init = 0.0
    for net in ("G", "D"):
        ref_sd, our_sd = nets["ref_" + net].state_dict(), nets["ours_" + net].state_dict()
        assert list(ref_sd) == list(our_sd), f"{net} state_dict keys differ: {set(ref_sd) ^ set(our_sd)}"
        for key, value in ref_sd.items():
            assert value.shape == our_sd[key].shape, f"{net}.{key}: {value.shape} vs {our_sd[key].shape}"
            init = max(init, maxdiff(value, our_sd[key]))
        nets["ours_" + net].load_state_dict(ref_sd, strict=True)
        nets["ref_" + net].load_state_dict(our_sd, strict=True)
    nets["init"] = init
    return nets


@torch.no_grad()
def perturb(nets: dict[str, Any], seed: int) -> None:
    """Non-zero biases, noise strengths and w_avg in the reference, copied into ours, so those paths count."""
    gen = torch.Generator().manual_seed(seed + 1)
    for net in ("G", "D"):
        for name, t in nets["ref_" + net].state_dict().items():
            if name.endswith(("bias", "noise_strength", "w_avg")) and t.dtype == torch.float32:
                t.add_(0.1 * torch.randn(t.shape, generator=gen))
        nets["ours_" + net].load_state_dict(nets["ref_" + net].state_dict(), strict=True)


def inputs(spec: dict[str, Any], batch: int, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed + 2)
    c = torch.zeros([batch, spec["c_dim"]])
    if spec["c_dim"] > 0:
        c[torch.arange(batch), torch.randint(0, spec["c_dim"], (batch,), generator=gen)] = 1
    res, ch = spec["resolution"], spec["channels"]
    return {
        "z": torch.randn([batch, spec["z_dim"]], generator=gen), "c": c,
        "real": torch.rand([batch, ch, res, res], generator=gen) * 2 - 1,
    }  # fmt: skip


def _both(nets: dict[str, Any], fn: Any, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(G, D) for the reference's and our networks, each after torch.manual_seed(seed); (diff, ref scale)."""
    outs = []
    for name in ("ref", "ours"):
        torch.manual_seed(seed)
        outs.append(fn(nets[name + "_G"], nets[name + "_D"]))
    return maxdiff(*outs), maxabs(outs[0])


def forward_diffs(nets: dict[str, Any], x: dict[str, torch.Tensor], seed: int) -> dict[str, tuple[float, float]]:
    z, c = x["z"], x["c"]
    with torch.no_grad():
        for name in ("ref", "ours"):
            nets[name + "_G"].eval()
            nets[name + "_D"].train()
        out = {
            "G eval const": _both(nets, lambda g, d: g(z, c, noise_mode="const"), seed),
            "G eval random": _both(nets, lambda g, d: g(z, c, noise_mode="random"), seed),
            "G trunc": _both(
                nets, lambda g, d: g(z, c, truncation_psi=0.7, truncation_cutoff=4, noise_mode="none"), seed
            ),
            "G trunc all": _both(nets, lambda g, d: g(z, c, truncation_psi=0.5, noise_mode="const"), seed),
            "D real": _both(nets, lambda g, d: d(x["real"], c), seed),
        }
        image = nets["ref_G"](z, c, noise_mode="const")
        out["D fake"] = _both(nets, lambda g, d: d(image, c), seed)
        for name in ("ref", "ours"):
            nets[name + "_G"].train()
        out["G train const"] = _both(nets, lambda g, d: g(z, c, noise_mode="const"), seed)
        out["w_avg"] = _both(nets, lambda g, d: g.mapping.w_avg.clone(), seed)
    return out


def loss_diffs(
    nets: dict[str, Any], ref_loss: types.ModuleType, captured: dict[str, torch.Tensor], spec: dict[str, Any], x: dict
) -> dict[str, tuple[float, float]]:
    """Each phase's gradients (and its reported losses) from the reference's StyleGAN2Loss and ours."""
    losses: dict[str, Any] = {}
    for name, cls in (("ref", ref_loss.StyleGAN2Loss), ("ours", ours.StyleGAN2Loss)):
        g, d = nets[name + "_G"].train().requires_grad_(False), nets[name + "_D"].train().requires_grad_(False)
        losses[name] = cls(
            device=torch.device("cpu"), G_mapping=g.mapping, G_synthesis=g.synthesis, D=d, **ours.loss_kwargs(spec)
        )
    gains = {
        "Gmain": 1,
        "Greg": spec["g_reg_interval"],
        "Gboth": 1,
        "Dmain": 1,
        "Dreg": spec["d_reg_interval"],
        "Dboth": 1,
    }
    out: dict[str, tuple[float, float]] = {}
    for i, (phase, gain) in enumerate(gains.items()):
        grads, stats = {}, {}
        for name in ("ref", "ours"):
            module = nets[name + "_" + phase[0]]
            module.requires_grad_(True)
            for p in module.parameters():
                p.grad = None
            captured.clear()
            torch.manual_seed(100 + i)
            losses[name].accumulate_gradients(phase, x["real"], x["c"], x["z"], x["c"], sync=True, gain=gain)
            module.requires_grad_(False)
            grads[name] = [p.grad for p in module.parameters()]
            stats[name] = dict(captured) if name == "ref" else dict(losses[name].stats)
        diff = max((maxdiff(a, b) for a, b in zip(grads["ref"], grads["ours"], strict=True)), default=0.0)
        out[phase + " grad"] = (diff, max((maxabs(a) for a in grads["ref"]), default=0.0))
        keys = [k for k in stats["ref"] if "/signs/" not in k]
        assert set(keys) == set(stats["ours"]), f"{phase}: stats {sorted(keys)} vs {sorted(stats['ours'])}"
        sdiff = max((maxdiff(stats["ref"][k], stats["ours"][k]) for k in keys), default=0.0)
        out[phase + " loss"] = (sdiff, max((maxabs(stats["ref"][k]) for k in keys), default=0.0))
    out["pl_mean"] = (maxdiff(losses["ref"].pl_mean, losses["ours"].pl_mean), maxabs(losses["ref"].pl_mean))
    return out


def iteration_diff(
    nets: dict[str, Any], ref_loss: types.ModuleType, spec: dict[str, Any], batch: int, seed: int
) -> tuple[float, float]:
    """Two iterations of our loop (batch_idx 0 runs all four phases) around each side's modules and loss."""
    states = {}
    for name, cls in (("ref", ref_loss.StyleGAN2Loss), ("ours", ours.StyleGAN2Loss)):
        torch.manual_seed(seed + 3)
        g, d = copy.deepcopy(nets[name + "_G"]), copy.deepcopy(nets[name + "_D"])
        states[name] = ours.training_from_modules(g, d, spec, batch, loss_cls=cls, num_images=16)
        for batch_idx in range(2):
            ours.train_iteration(states[name], batch_idx)
    diff = scale = 0.0
    for net in ("G", "D", "G_ema"):
        ref_sd, our_sd = getattr(states["ref"], net).state_dict(), getattr(states["ours"], net).state_dict()
        diff = max(diff, *(maxdiff(v, our_sd[k]) for k, v in ref_sd.items()))
        scale = max(scale, *(maxabs(v) for v in ref_sd.values()))
    return diff, scale


def check_spec(name: str, spec: dict[str, Any], ref: tuple, batch: int, seed: int) -> dict[str, Any]:
    ref_nets, ref_loss, captured = ref
    nets = build(ref_nets, spec, seed)
    row: dict[str, Any] = {"spec": name, **ours.param_counts(nets["ours_G"], nets["ours_D"]), "init": nets["init"]}
    perturb(nets, seed)
    x = inputs(spec, batch, seed)
    diffs = forward_diffs(nets, x, seed)
    diffs.update(loss_diffs(nets, ref_loss, captured, spec, x))
    if name != "cifar":
        diffs["2 iterations"] = iteration_diff(nets, ref_loss, spec, batch, seed)
    row["diffs"] = diffs
    tol = TOL["fp16" if spec["num_fp16_res"] > 0 else "fp32"]
    row["worst_rel"] = max(d / max(s, 1.0) for d, s in diffs.values())
    row["ok"] = nets["init"] == 0.0 and row["worst_rel"] <= tol
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'spec':<22}{'G params':>12}{'mapping':>10}{'synthesis':>12}{'D params':>12}{'init':>8}"
    print(head + f"{'G fwd':>10}{'D fwd':>10}{'G grads':>10}{'D grads':>10}{'losses':>10}{'2 iters':>10}  ok")
    for r in rows:
        d = r["diffs"]

        def worst(keys: list[str], d: dict = d) -> str:
            vals = [d[k][0] for k in keys if k in d]
            return f"{max(vals):10.2e}" if vals else f"{'-':>10}"

        g_fwd = [k for k in d if k.startswith("G ") and "grad" not in k and "loss" not in k] + ["w_avg"]
        losses = [k for k in d if k.endswith(" loss")] + ["pl_mean"]
        print(
            f"{r['spec']:<22}{r['G_params']:>12,}{r['G_mapping_params']:>10,}{r['G_synthesis_params']:>12,}"
            f"{r['D_params']:>12,}{r['init']:>8.1e}{worst(g_fwd)}{worst(['D real', 'D fake'])}"
            f"{worst(['Gmain grad', 'Greg grad', 'Gboth grad'])}{worst(['Dmain grad', 'Dreg grad', 'Dboth grad'])}"
            f"{worst(losses)}{worst(['2 iterations'])}  {'yes' if r['ok'] else 'NO'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
    ap.add_argument("--specs", nargs="*", default=list(SPECS), help=f"subset of {list(SPECS)}")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verbose", action="store_true", help="every comparison of every spec")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ref = load_reference(args.reference)
    rows = []
    for name in args.specs:
        rows.append(check_spec(name, SPECS[name], ref, args.batch, args.seed))
        if args.verbose:
            for key, (diff, scale) in rows[-1]["diffs"].items():
                print(f"  {name:<22}{key:<16} max abs diff {diff:.3e}  (reference max |x| {scale:.3e})", flush=True)
    expected = {
        "G_params": 19_947_539,
        "G_mapping_params": 525_312,
        "G_synthesis_params": 19_422_227,
        "D_params": 20_720_641,
    }
    print_table(rows)
    for r in rows:
        if r["spec"] == "cifar":
            assert all(r[k] == v for k, v in expected.items()), f"cifar param counts {r} != {expected}"
    print("G fwd/D fwd: images/logits; grads: per phase, over all parameters; losses: the training_stats values.")
    print("init: same-seed initial state_dict difference; 2 iters: G, D, G_ema after 2 loop iterations.")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()

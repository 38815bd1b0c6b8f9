"""PyTorch eager reference timings for the JAX train steps: same networks, losses, optimizer and batch sizes.

Standalone (needs `torch`; the gan_jax package never imports it). Prints one JSON object per case, e.g.
    python scripts/torch_reference.py --case all --steps 20 --warmup 3 --threads 2
    python scripts/torch_reference.py --case dcgan32 --device cuda --batch 256 --dtype float32 bfloat16 \
        --mode eager compile --tf32 --keep-going     # one row per mode and dtype (scripts/device_check.py)
`--dtype bfloat16` runs the forward passes (and losses) under `torch.autocast(dtype=torch.bfloat16)`, parameters
and Adam in float32, like `model.compute_dtype=bfloat16` in JAX; `--mode compile` wraps every network in
`torch.compile` (the optimizer and the step's Python stay eager); `--tf32` lets float32 matmuls use TF32 on CUDA
(`torch.set_float32_matmul_precision("high")`; cuDNN convolutions use TF32 by default), as XLA does by default.
`dcgan32` is PyTorch-StudioGAN's CIFAR-10 `deep_conv` (G 3,812,355 / D 2,931,009 parameters), batch 64,
n_critic 2; `toy_mlp` is a 2-D 8-Gaussians MLP GAN, batch 512, n_critic 1. Both use the non-saturating loss
and Adam(2e-4, betas=(0.5, 0.999)); real and fake batches go through D separately, as in the JAX step.
`cyclegan` is junyanz/pytorch-CycleGAN-and-pix2pix's CycleGANModel.optimize_parameters (LSGAN, lambda 10,
identity 0.5, ImagePool 50) at experiments/cyclegan_digits_mnist's size: 32x32x1, ngf 16, 6 blocks, ndf 32,
n_layers 2, batch 8.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import random
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F


def dcgan32_generator(z_dim: int = 128) -> nn.Module:
    def up(cin: int, cout: int) -> list[nn.Module]:
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout, eps=1e-4, momentum=0.1), nn.ReLU()]

    return nn.Sequential(
        nn.Linear(z_dim, 4 * 4 * 512),
        nn.Unflatten(1, (512, 4, 4)),
        *up(512, 256),
        *up(256, 128),
        *up(128, 64),
        nn.Conv2d(64, 3, 3, 1, 1),
        nn.Tanh(),
    )


def dcgan32_critic() -> nn.Module:
    def conv_bn(cin: int, cout: int, k: int, s: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, s, 1), nn.BatchNorm2d(cout, eps=1e-4, momentum=0.1), nn.ReLU()]

    layers: list[nn.Module] = []
    for cin, cout in ((3, 64), (64, 128), (128, 256)):
        layers += conv_bn(cin, cout, 3, 1) + conv_bn(cout, cout, 4, 2)
    layers += conv_bn(256, 512, 3, 1)
    return nn.Sequential(*layers, SumHW(), nn.Linear(512, 1), nn.Flatten(0))


class SumHW(nn.Module):
    """StudioGAN's global sum pooling (not mean): `torch.sum(h, dim=[2, 3])`."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.sum(dim=(2, 3))


def toy_generator(z_dim: int = 16) -> nn.Module:
    return nn.Sequential(
        nn.Linear(z_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2),
    )  # fmt: skip


def toy_critic() -> nn.Module:
    return nn.Sequential(
        nn.Linear(2, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Flatten(0),
    )  # fmt: skip


def eight_gaussians(n: int, std: float = 0.02, device: str | torch.device = "cpu") -> torch.Tensor:
    """n points from 8 Gaussians centred on the unit circle, drawn fresh each call (as the JAX toy source does)."""
    angles = torch.randint(0, 8, (n,), device=device).float() * (2 * math.pi / 8)
    centres = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return centres + std * torch.randn(n, 2, device=device)


def make_step(
    gen: nn.Module,
    crit: nn.Module,
    real: Callable[[], torch.Tensor],
    z_dim: int,
    batch: int,
    n_critic: int,
    device: str | torch.device = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Callable[[], None]:
    """One GAN step: n_critic D updates (real and fake forwarded separately), then one G update. `autocast()`
    is entered around the forward passes and losses (backward and the optimizer steps run outside it)."""
    g_opt = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(crit.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def step() -> None:
        for _ in range(n_critic):
            with torch.no_grad(), autocast():
                fake = gen(torch.randn(batch, z_dim, device=device))
            with autocast():
                d_loss = F.binary_cross_entropy_with_logits(crit(real()), ones)
                d_loss = d_loss + F.binary_cross_entropy_with_logits(crit(fake), zeros)
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
        # As in the JAX step (and StudioGAN's toggle_grad), the G update runs D in training mode (batch
        # statistics) without computing D's weight gradients.
        crit.requires_grad_(False)
        with autocast():
            g_loss = F.binary_cross_entropy_with_logits(crit(gen(torch.randn(batch, z_dim, device=device))), ones)
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        crit.requires_grad_(True)

    return step


# CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py) with its CycleGAN defaults: instance norm
# (affine=False, track_running_stats=False), no dropout, reflection padding, init_weights("normal", 0.02).
# resnet_9blocks 3->3 at ngf 64 has 11,378,179 parameters, the n_layers=3 PatchGAN on 3 channels 2,764,737.


def _cyclegan_norm(norm: str) -> tuple[Callable[[int], nn.Module], bool]:
    """(norm layer, conv bias) as the reference's get_norm_layer and use_bias = (norm is InstanceNorm2d)."""
    if norm == "instance":
        return lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False), True
    if norm == "batch":
        return lambda c: nn.BatchNorm2d(c, affine=True), False
    raise ValueError(f"unknown norm {norm!r}")


def cyclegan_init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The reference's init_weights(init_type="normal"): conv weights N(0, gain), biases 0, BN scales N(1, gain)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


class CycleGANResnetBlock(nn.Module):
    """x + [ReflectionPad1, Conv3x3, norm, ReLU, ReflectionPad1, Conv3x3, norm](x) (padding_type="reflect")."""

    def __init__(self, dim: int, norm: str = "instance") -> None:
        super().__init__()
        norm_layer, bias = _cyclegan_norm(norm)
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), norm_layer(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def cyclegan_generator(
    in_ch: int = 3, out_ch: int = 3, ngf: int = 64, n_blocks: int = 9, norm: str = "instance"
) -> nn.Module:
    """The reference's ResnetGenerator (resnet_9blocks / resnet_6blocks), two down- and two up-samplings."""
    norm_layer, bias = _cyclegan_norm(norm)
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), norm_layer(ngf)]
    layers.append(nn.ReLU(True))
    n_down = 2
    for i in range(n_down):
        cin, cout = ngf * 2**i, ngf * 2 ** (i + 1)
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=bias), norm_layer(cout), nn.ReLU(True)]
    layers += [CycleGANResnetBlock(ngf * 2**n_down, norm) for _ in range(n_blocks)]
    for i in range(n_down):
        cin, cout = ngf * 2 ** (n_down - i), ngf * 2 ** (n_down - i) // 2
        up = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=bias)
        layers += [up, norm_layer(cout), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
    return cyclegan_init_weights(nn.Sequential(*layers))


def cyclegan_critic(in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance") -> nn.Module:
    """The reference's NLayerDiscriminator (the 70x70 PatchGAN at n_layers=3): (N, C, H, W) -> (N, 1, h, w) logits."""
    norm_layer, bias = _cyclegan_norm(norm)
    layers: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        stride = 2 if n < n_layers else 1
        conv = nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias)
        layers += [conv, norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
    layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
    return cyclegan_init_weights(nn.Sequential(*layers))


def cyclegan_nets(
    in_ch: int = 3, ngf: int = 64, n_blocks: int = 9, ndf: int = 64, n_layers: int = 3, norm: str = "instance"
) -> dict[str, nn.Module]:
    """The reference's four networks under its names: G_A (A -> B), G_B (B -> A), D_A (judges domain B images:
    real_B vs G_A's fakes) and D_B (judges domain A). The JAX family calls them G_ab, G_ba, D_b and D_a."""
    return {
        "G_A": cyclegan_generator(in_ch, in_ch, ngf, n_blocks, norm).train(),
        "G_B": cyclegan_generator(in_ch, in_ch, ngf, n_blocks, norm).train(),
        "D_A": cyclegan_critic(in_ch, ndf, n_layers, norm).train(),
        "D_B": cyclegan_critic(in_ch, ndf, n_layers, norm).train(),
    }


def cyclegan_optimizers(
    nets: dict[str, nn.Module], lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)
) -> dict[str, torch.optim.Optimizer]:
    """The reference's optimizer_G and optimizer_D: one Adam over both generators, one over both critics."""
    g_params = itertools.chain(nets["G_A"].parameters(), nets["G_B"].parameters())
    d_params = itertools.chain(nets["D_A"].parameters(), nets["D_B"].parameters())
    return {"G": torch.optim.Adam(g_params, lr=lr, betas=betas), "D": torch.optim.Adam(d_params, lr=lr, betas=betas)}


class ImagePool:
    """The reference's util/image_pool.py ImagePool (Shrivastava et al. 2017), with its own `random.Random` so a
    seed fixes the swaps: while filling, each image enters and is returned; once full, with probability 1/2 a
    random stored image is returned and replaced by the new one. pool_size 0 returns the images unchanged."""

    def __init__(self, pool_size: int, seed: int = 0) -> None:
        self.pool_size, self.images, self.rng = pool_size, [], random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool_size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                slot = self.rng.randint(0, self.pool_size - 1)
                out.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def cyclegan_gan_loss(prediction: torch.Tensor, target_is_real: bool, gan_mode: str = "lsgan") -> torch.Tensor:
    """The reference's GANLoss: MSE (lsgan) or BCE with logits (vanilla) against a 1.0 / 0.0 target map."""
    target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
    if gan_mode == "lsgan":
        return F.mse_loss(prediction, target)
    if gan_mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    raise ValueError(f"unknown gan_mode {gan_mode!r}")


def cyclegan_train_step(
    nets: dict[str, nn.Module],
    opts: dict[str, torch.optim.Optimizer],
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    pools: dict[str, ImagePool],
    lambda_cycle: float = 10.0,
    lambda_idt: float = 0.5,
    gan_mode: str = "lsgan",
) -> dict[str, torch.Tensor]:
    """The reference's CycleGANModel.optimize_parameters (lambda_A = lambda_B = lambda_cycle): forward, G step
    with the critics frozen, D step on pooled fakes. `pools["A"]` is its fake_A_pool, `pools["B"]` fake_B_pool.
    Returns its loss_* values (detached) under their names: the cycle and identity terms are weighted."""
    g_a, g_b, d_a, d_b = (nets[k] for k in ("G_A", "G_B", "D_A", "D_B"))
    fake_b = g_a(real_a)
    rec_a = g_b(fake_b)
    fake_a = g_b(real_b)
    rec_b = g_a(fake_a)
    d_a.requires_grad_(False)
    d_b.requires_grad_(False)
    opts["G"].zero_grad()
    losses = {}
    if lambda_idt > 0:
        losses["idt_A"] = F.l1_loss(g_a(real_b), real_b) * lambda_cycle * lambda_idt
        losses["idt_B"] = F.l1_loss(g_b(real_a), real_a) * lambda_cycle * lambda_idt
    losses["G_A"] = cyclegan_gan_loss(d_a(fake_b), True, gan_mode)
    losses["G_B"] = cyclegan_gan_loss(d_b(fake_a), True, gan_mode)
    losses["cycle_A"] = F.l1_loss(rec_a, real_a) * lambda_cycle
    losses["cycle_B"] = F.l1_loss(rec_b, real_b) * lambda_cycle
    losses["G"] = (
        losses["G_A"] + losses["G_B"] + losses["cycle_A"] + losses["cycle_B"]
        + losses.get("idt_A", 0.0) + losses.get("idt_B", 0.0)
    )  # fmt: skip
    losses["G"].backward()
    opts["G"].step()
    d_a.requires_grad_(True)
    d_b.requires_grad_(True)
    opts["D"].zero_grad()
    losses["D_A"] = _cyclegan_critic_loss(d_a, real_b, pools["B"].query(fake_b), gan_mode)
    losses["D_B"] = _cyclegan_critic_loss(d_b, real_a, pools["A"].query(fake_a), gan_mode)
    opts["D"].step()
    return {k: v.detach() for k, v in losses.items()}


def _cyclegan_critic_loss(net: nn.Module, real: torch.Tensor, fake: torch.Tensor, gan_mode: str) -> torch.Tensor:
    """The reference's backward_D_basic: (real + fake) / 2, fakes detached, backward run here."""
    loss = (cyclegan_gan_loss(net(real), True, gan_mode) + cyclegan_gan_loss(net(fake.detach()), False, gan_mode)) * 0.5
    loss.backward()
    return loss


def cyclegan_step(
    batch: int,
    resolution: int,
    channels: int,
    ngf: int,
    n_blocks: int,
    ndf: int,
    n_layers: int,
    pool_size: int = 50,
    device: str | torch.device = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    wrap: Callable[[nn.Module], nn.Module] = lambda net: net,
) -> Callable[[], None]:
    """experiments/cyclegan_digits_mnist's step in the reference's code path: fresh random batches of both
    domains each step (images from a fixed bank, as a data loader would hand them), pools of 50. `autocast()`
    is entered around the whole step (the reference's optimize_parameters runs its backward passes inside it);
    `wrap` is applied to each network after its optimizer is made (e.g. torch.compile)."""
    nets = {k: net.to(device) for k, net in cyclegan_nets(channels, ngf, n_blocks, ndf, n_layers).items()}
    opts = cyclegan_optimizers(nets)
    nets = {k: wrap(net) for k, net in nets.items()}
    pools = {d: ImagePool(pool_size, seed=i) for i, d in enumerate("AB")}
    bank = {d: torch.rand(1024, channels, resolution, resolution, device=device) * 2 - 1 for d in "AB"}

    def step() -> None:
        real_a, real_b = (bank[d][torch.randint(0, 1024, (batch,), device=device)] for d in "AB")
        with autocast():
            cyclegan_train_step(nets, opts, real_a, real_b, pools)

    return step


CASES = ("dcgan32", "toy_mlp", "cyclegan", "stylegan2")
DEFAULT_BATCH = {"dcgan32": 64, "toy_mlp": 512, "cyclegan": 8, "stylegan2": 32}  # the JAX benchmark cases' batch sizes
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def build_case(
    case: str,
    device: str | torch.device = "cpu",
    batch: int | None = None,
    dtype: str = "float32",
    compile_backend: str | None = None,
) -> Callable[[], None]:
    """The case's train step on `device` at `batch` (default: the case's), its forward passes under bf16
    autocast for dtype="bfloat16", its networks wrapped in torch.compile(backend=compile_backend) if given."""
    batch = DEFAULT_BATCH[case] if batch is None else batch
    device = torch.device(device)
    autocast = contextlib.nullcontext
    if dtype != "float32":
        autocast = functools.partial(torch.autocast, device.type, dtype=DTYPES[dtype])

    def wrap(net: nn.Module) -> nn.Module:
        return net if compile_backend is None else torch.compile(net, backend=compile_backend)

    if case == "dcgan32":
        gen, crit = dcgan32_generator(), dcgan32_critic()
        assert sum(p.numel() for p in gen.parameters()) == 3_812_355
        assert sum(p.numel() for p in crit.parameters()) == 2_931_009
        # stand-in for CIFAR-10: the timing ignores pixel values
        images = torch.rand(1024, 3, 32, 32, device=device) * 2 - 1

        def real() -> torch.Tensor:
            return images[torch.randint(0, images.shape[0], (batch,), device=device)]

        gen, crit = wrap(gen.to(device).train()), wrap(crit.to(device).train())
        return make_step(gen, crit, real, z_dim=128, batch=batch, n_critic=2, device=device, autocast=autocast)
    if case == "toy_mlp":
        gen, crit = wrap(toy_generator().to(device)), wrap(toy_critic().to(device))

        def points() -> torch.Tensor:
            return eight_gaussians(batch, device=device)

        return make_step(gen, crit, points, z_dim=16, batch=batch, n_critic=1, device=device, autocast=autocast)
    if case == "cyclegan":
        return cyclegan_step(
            batch=batch, resolution=32, channels=1, ngf=16, n_blocks=6, ndf=32, n_layers=2,
            device=device, autocast=autocast, wrap=wrap,
        )  # fmt: skip
    if case == "stylegan2":
        return stylegan2_step(batch, device)
    raise ValueError(f"unknown case {case!r}")


# experiment=stylegan2_fashion's networks and loss (benchmark.py's stylegan2 case; ADA off on both sides).
STYLEGAN2_FASHION_SPEC = {
    "channels": 1,
    "z_dim": 128,
    "w_dim": 128,
    "channel_base": 2048,
    "channel_max": 128,
    "d_architecture": "resnet",
    "mbstd_group": 4,
    "gamma": 0.0064,
    "ema_kimg": 10.0,
    "pl_weight": 2.0,
    "style_mixing": 0.9,
    "batch": 32,
}


def stylegan2_step(batch: int, device: torch.device) -> Callable[[], None]:
    """One reference training iteration per call (scripts/torch_stylegan2.py: checked bit for bit against
    stylegan2-ada-pytorch by scripts/check_stylegan2_reference.py); lazy phases at their intervals, so any 16
    consecutive calls hold one R1 and four path-length steps."""
    import itertools

    from torch_stylegan2 import CIFAR_SPEC, make_training, train_iteration

    state = make_training({**CIFAR_SPEC, **STYLEGAN2_FASHION_SPEC, "batch": batch}, batch, str(device))
    counter = itertools.count()
    return lambda: train_iteration(state, next(counter))


def resolve_device(device: str) -> torch.device:
    """ "auto": CUDA when torch sees a GPU, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def time_case(
    case: str,
    steps: int,
    warmup: int,
    device: str = "cpu",
    batch: int | None = None,
    dtype: str = "float32",
    mode: str = "eager",
    compile_backend: str = "inductor",
) -> dict[str, object]:
    """Times `steps` steps after `warmup` untimed ones (at least one under mode="compile": the compilation,
    reported as compile_s with the first step's own time)."""
    dev = resolve_device(device)
    backend = compile_backend if mode == "compile" else None
    if mode not in ("eager", "compile"):
        raise ValueError(f"unknown mode {mode!r}")
    if mode == "compile":
        # A fresh cache per run, and room for every graph: the networks share nn.Sequential.forward, and the
        # critics run with and without weight gradients, each a recompilation (past the limit: silently eager).
        torch._dynamo.reset()
        for name in ("recompile_limit", "cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name, max(64, getattr(torch._dynamo.config, name)))
    step = build_case(case, dev, batch, dtype, backend)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    sync()
    t0 = time.perf_counter()
    if mode == "compile" or warmup > 0:
        step()
        sync()
    first_step_s = time.perf_counter() - t0
    for _ in range(warmup - 1):
        step()
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    sync()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    row: dict[str, object] = {
        "case": case,
        "framework": f"torch-{mode}",
        "steps_per_s": round(steps / elapsed, 3),
        "ms_per_step": round(1e3 * elapsed / steps, 2),
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        # CPU seconds of all threads per step: comparable across runs on a shared machine, where wall time is not.
        "cpu_ms_per_step": round(1e3 * cpu / steps, 2),
    }
    if (device, batch, dtype, mode) != ("cpu", None, "float32", "eager"):  # the extended runs say what they ran
        row.update(
            dtype=dtype,
            batch_size=DEFAULT_BATCH[case] if batch is None else batch,
            steps=steps,
            torch=torch.__version__,
            tf32_matmul=torch.get_float32_matmul_precision() != "highest",
            cudnn_tf32=torch.backends.cudnn.allow_tf32,
        )
        if mode == "compile":
            row.update(compile_backend=compile_backend, compile_s=round(first_step_s, 3))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", nargs="+", choices=[*CASES, "all"], default=["all"])
    ap.add_argument("--steps", type=int, default=20, help="timed steps after warm-up")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, oneDNN primitives)")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 keeps torch's default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: each case's)")
    ap.add_argument("--dtype", nargs="+", choices=list(DTYPES), default=["float32"], help="bfloat16: autocast")
    ap.add_argument("--mode", nargs="+", choices=["eager", "compile"], default=["eager"], help="compile: torch.compile")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend (eager: tracing only)")
    ap.add_argument("--tf32", action="store_true", help="float32 matmuls may use TF32 on CUDA")
    ap.add_argument("--keep-going", action="store_true", help="print an error row for a failed run and go on")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    torch.manual_seed(args.seed)
    cases = CASES if "all" in args.case else args.case
    for case, mode, dtype in itertools.product(cases, args.mode, args.dtype):
        try:
            row = time_case(case, args.steps, args.warmup, args.device, args.batch, dtype, mode, args.compile_backend)
        except Exception as e:
            if not args.keep_going:
                raise
            row = {"case": case, "framework": f"torch-{mode}", "dtype": dtype, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

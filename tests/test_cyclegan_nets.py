"""CycleGAN's ResNet generator and PatchGAN critic against the reference (junyanz/pytorch-CycleGAN-and-pix2pix).

Parameter counts equal the reference definitions' (literal numbers and the PyTorch mirrors in
scripts/torch_reference.py); with the PyTorch weights copied in, outputs agree to float32 rounding, which pins
down the reflection padding, the torch ConvTranspose2d(k3, s2, p1, op1) and instance norm. The equivalence
tests need torch (a test dependency) and are skipped without it.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import re
import sys
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from gan_jax.errors import ConfigError
from gan_jax.models.cyclegan import (
    PatchDiscriminator,
    ResnetGenerator,
    TorchConvTranspose,
    patch_logits_size,
    receptive_field,
)
from gan_jax.models.layers import cpu_compiler_options

# Counted by hand from the reference's layer definitions (weights + biases of every conv; instance norm has none):
# G: 7x7 3->64, 3x3 64->128 s2, 128->256 s2, 9 blocks of two 3x3 256->256, ConvT 256->128, 128->64, 7x7 64->3.
RESNET_9BLOCKS = 9_472 + 73_856 + 295_168 + 9 * 2 * 590_080 + 295_040 + 73_792 + 9_411
RESNET_6BLOCKS = RESNET_9BLOCKS - 3 * 2 * 590_080
# D: 4x4 3->64, 64->128, 128->256, 256->512, 512->1.
PATCHGAN_70 = 3_136 + 131_200 + 524_544 + 2_097_664 + 8_193


def _torch_reference():
    """scripts/torch_reference.py as a module, with torch (limited to 2 threads), or skip."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(min(2, torch.get_num_threads()))
    path = Path(__file__).resolve().parents[1] / "scripts" / "torch_reference.py"
    if "torch_reference" not in sys.modules:
        spec = importlib.util.spec_from_file_location("torch_reference", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["torch_reference"] = module
        spec.loader.exec_module(module)
    return torch, sys.modules["torch_reference"]


def _n_params(variables) -> int:
    return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(variables["params"]))


def _abstract_init(module: nn.Module, shape: tuple[int, ...]):
    """(output shape, variables) of `init` traced abstractly: no parameters allocated, no forward pass run."""
    out, variables = jax.eval_shape(lambda: module.init_with_output(jax.random.key(0), jnp.zeros(shape), train=False))
    return out.shape, variables


def test_literal_counts_are_the_expected_ones():
    assert (RESNET_9BLOCKS, RESNET_6BLOCKS, PATCHGAN_70) == (11_378_179, 7_837_699, 2_764_737)


@pytest.mark.parametrize(
    ("n_blocks", "norm", "expected"),
    [(9, "instance", RESNET_9BLOCKS), (6, "instance", RESNET_6BLOCKS), (9, "batch", None)],
)
def test_generator_parameter_counts(n_blocks, norm, expected):
    _, ref = _torch_reference()
    _, variables = _abstract_init(ResnetGenerator(3, ngf=64, n_blocks=n_blocks, norm=norm), (1, 64, 64, 3))
    theirs = sum(p.numel() for p in ref.cyclegan_generator(3, 3, 64, n_blocks, norm).parameters())
    assert _n_params(variables) == theirs
    if expected is not None:
        assert theirs == expected


@pytest.mark.parametrize(
    ("n_layers", "norm", "expected"), [(3, "instance", PATCHGAN_70), (2, "instance", None), (3, "batch", None)]
)
def test_critic_parameter_counts(n_layers, norm, expected):
    _, ref = _torch_reference()
    _, variables = _abstract_init(PatchDiscriminator(ndf=64, n_layers=n_layers, norm=norm), (1, 64, 64, 3))
    theirs = sum(p.numel() for p in ref.cyclegan_critic(3, 64, n_layers, norm).parameters())
    assert _n_params(variables) == theirs
    if expected is not None:
        assert theirs == expected


@pytest.mark.parametrize(("hw", "channels"), [(32, 1), (64, 3)])
def test_generator_output_shapes(hw, channels):
    shape, variables = _abstract_init(ResnetGenerator(channels, ngf=8, n_blocks=2), (2, hw, hw, channels))
    assert shape == (2, hw, hw, channels)
    assert "batch_stats" not in variables  # instance norm keeps no state


@pytest.mark.parametrize(("n_layers", "hw", "grid"), [(2, 32, 6), (3, 32, 2), (3, 64, 6), (3, 256, 30)])
def test_patch_logit_shapes(n_layers, hw, grid):
    shape, _ = _abstract_init(PatchDiscriminator(ndf=8, n_layers=n_layers), (2, hw, hw, 3))
    assert shape == (2, grid, grid, 1)
    assert patch_logits_size(hw, n_layers) == grid


def test_receptive_field():
    # The PatchGAN sizes of the pix2pix paper: 16x16, 34x34, 70x70, 142x142, 286x286.
    assert [receptive_field(n) for n in (1, 2, 3, 4, 5)] == [16, 34, 70, 142, 286]
    with pytest.raises(ConfigError):
        receptive_field(0)


def test_bad_configs_and_inputs_raise_clear_errors():
    x = jnp.zeros((1, 30, 32, 1))
    with pytest.raises(ValueError, match="divisible by 4"):
        _abstract_init(ResnetGenerator(1, ngf=4, n_blocks=1), x.shape)
    with pytest.raises(ConfigError, match="norm"):
        _abstract_init(ResnetGenerator(1, ngf=4, norm="layer"), (1, 32, 32, 1))
    with pytest.raises(ValueError, match=">= 24"):
        _abstract_init(PatchDiscriminator(ndf=4, n_layers=3), (1, 16, 16, 1))


def _generator_layers(n_blocks: int, n_down: int = 2) -> list[tuple[str, ...]]:
    """Flax paths of the generator's conv and norm layers in the reference's order (`init` sorts its keys)."""
    paths = [("conv_in",), ("norm_in",)]
    paths += [p for i in range(n_down) for p in ((f"down{i}",), (f"down{i}_norm",))]
    paths += [(f"block{i}", name) for i in range(n_blocks) for name in ("conv0", "norm0", "conv1", "norm1")]
    paths += [p for i in range(n_down) for p in ((f"up{i}",), (f"up{i}_norm",))]
    return [*paths, ("conv_out",)]


def _critic_layers(n_layers: int) -> list[tuple[str, ...]]:
    return [("conv0",), *[(f"{k}{n}",) for n in range(1, n_layers + 1) for k in ("conv", "norm")], ("conv_out",)]


def _to_flax(torch_net, template, order: list[tuple[str, ...]]) -> dict:
    """The torch module's weights as Flax variables shaped like `template` (params, and batch_stats for BN).

    Layers pair up in order: torch's conv and BN modules as the net is built, and the Flax paths in `order`
    that `template` has (instance norm has no parameters). Conv2d (out, in, kh, kw) -> (kh, kw, in, out);
    ConvTranspose2d (in, out, kh, kw) -> taps flipped, (kh, kw, in, out); BatchNorm2d weight/bias/running
    stats -> scale/bias/mean/var.
    """
    torch = sys.modules["torch"]
    kinds = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d)
    layers = [m for m in torch_net.modules() if isinstance(m, kinds)]
    paths = [p for p in order if _has(template["params"], p)]
    assert len(paths) == len(layers), (len(paths), len(layers))
    params, stats = {}, {}
    for path, m in zip(paths, layers, strict=True):
        numpy = {k: v.detach().numpy() for k, v in m.state_dict().items() if v.dtype == torch.float32}
        if isinstance(m, torch.nn.BatchNorm2d):
            entry = {"scale": numpy["weight"], "bias": numpy["bias"]}
            _set(stats, path, {"mean": numpy["running_mean"], "var": numpy["running_var"]})
        elif isinstance(m, torch.nn.ConvTranspose2d):
            entry = {"kernel": numpy["weight"][:, :, ::-1, ::-1].transpose(2, 3, 0, 1)}
        else:
            entry = {"kernel": numpy["weight"].transpose(2, 3, 1, 0)}
        if "bias" in numpy:
            entry["bias"] = numpy["bias"]
        _set(params, path, entry)
    out = {"params": params, **({"batch_stats": stats} if stats else {})}
    shapes = jax.tree_util.tree_map(lambda a: a.shape, template)
    assert jax.tree_util.tree_map(lambda a: a.shape, out) == shapes  # same tree and shapes: nothing skipped
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.ascontiguousarray(a)), out)


def _has(tree: dict, path: tuple[str, ...]) -> bool:
    for key in path:
        if key not in tree:
            return False
        tree = tree[key]
    return True


def _set(tree: dict, path: tuple[str, ...], value: dict) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _randomize(torch_net, seed: int):
    """Weights and biases well away from init (std 0.1, BN scales near 1), so every bias and tap matters."""
    torch = sys.modules["torch"]
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in torch_net.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            p.copy_(1.0 + 0.1 * noise if name.endswith("weight") and p.ndim == 1 else 0.1 * noise)
    return torch_net


def _compare(
    torch_net, module: nn.Module, order: list[tuple[str, ...]], x: np.ndarray, *, train: bool = False
) -> float:
    """Max abs difference of the two nets on NCHW/NHWC copies of x, asserted within 1e-5 of the output scale."""
    torch = sys.modules["torch"]
    torch_net.train(train)
    with torch.no_grad():
        theirs = torch_net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    _, template = _abstract_init(module, x.shape)
    variables = _to_flax(torch_net, template, order)
    run = functools.partial(module.apply, train=train, mutable=["batch_stats"] if train else False)
    ours = jax.jit(run)(variables, jnp.asarray(x))
    ours = np.asarray(ours[0] if train else ours)
    assert ours.shape == theirs.shape
    diff = float(np.abs(ours - theirs).max())
    assert diff <= 1e-5 * max(1.0, float(np.abs(theirs).max())), diff
    return diff


@pytest.mark.parametrize(("shape", "out_ch"), [((2, 32, 32, 1), 1), ((2, 20, 28, 3), 3)])
def test_generator_matches_torch(shape, out_ch):
    _, ref = _torch_reference()
    net = _randomize(ref.cyclegan_generator(shape[-1], out_ch, ngf=8, n_blocks=2), seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32)
    diff = _compare(net, ResnetGenerator(out_ch, ngf=8, n_blocks=2), _generator_layers(2), x)
    print(f"generator {shape}: max abs diff {diff:.2e}")


@pytest.mark.parametrize(("shape", "n_layers"), [((2, 32, 32, 1), 2), ((2, 48, 40, 3), 3)])
def test_critic_matches_torch(shape, n_layers):
    _, ref = _torch_reference()
    net = _randomize(ref.cyclegan_critic(shape[-1], ndf=8, n_layers=n_layers), seed=1)
    x = np.random.default_rng(1).uniform(-1, 1, size=shape).astype(np.float32)
    diff = _compare(net, PatchDiscriminator(ndf=8, n_layers=n_layers), _critic_layers(n_layers), x)
    print(f"critic {shape}: max abs diff {diff:.2e}")


@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_variant_matches_torch(train):
    """norm="batch": batch statistics in training mode, the copied running statistics in eval mode."""
    torch, ref = _torch_reference()
    x = np.random.default_rng(2).uniform(-1, 1, size=(3, 16, 16, 2)).astype(np.float32)
    g = _randomize(ref.cyclegan_generator(2, 2, ngf=4, n_blocks=1, norm="batch"), seed=2)
    d = _randomize(ref.cyclegan_critic(2, ndf=4, n_layers=1, norm="batch"), seed=3)
    for m in (*g.modules(), *d.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):  # running stats other than (0, 1), so eval mode is tested
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    g_diff = _compare(g, ResnetGenerator(2, ngf=4, n_blocks=1, norm="batch"), _generator_layers(1), x, train=train)
    d_diff = _compare(d, PatchDiscriminator(ndf=4, n_layers=1, norm="batch"), _critic_layers(1), x, train=train)
    print(f"batch norm, train={train}: max abs diff G {g_diff:.2e}, D {d_diff:.2e}")


def test_conv_transpose_is_torch_and_lax_conv_transpose():
    """ConvTranspose2d(k3, s2, p1, output_padding=1) is lax.conv_transpose padded (1, 2) on the dilated input."""
    torch, _ = _torch_reference()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
    up = torch.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1)
    with torch.no_grad():
        theirs = up(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    kernel = up.weight.detach().numpy()[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).copy()
    bias = up.bias.detach().numpy()
    variables = {"params": {"kernel": kernel, "bias": bias}}
    ours = np.asarray(TorchConvTranspose(4).apply(variables, jnp.asarray(x)))
    dims = ("NHWC", "HWIO", "NHWC")
    lax_ref = np.asarray(lax.conv_transpose(x, kernel, (2, 2), ((1, 2), (1, 2)), dimension_numbers=dims)) + bias
    assert ours.shape == theirs.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    np.testing.assert_allclose(lax_ref, theirs, atol=1e-5)


# The criterion of test_dcgan.test_no_slow_xla_cpu_convolutions_inside_scan: XLA:CPU hands a conv to its library
# only with NHWC/HWIO labels and no window reversal; anything else is a naive loop (10-100x slower).
_CONV = re.compile(r"convolution\(.*?window=\{([^}]*)\}, dim_labels=(\S+?),")


def test_no_slow_xla_cpu_convolutions_inside_scan():
    """Every conv of a scanned G+D gradient step (cycle and adversarial terms) is a fast-path conv on XLA:CPU."""
    g, d = ResnetGenerator(1, ngf=4, n_blocks=1), PatchDiscriminator(ndf=4, n_layers=2)
    x = jnp.zeros((2, 16, 16, 1))
    g_vars, d_vars = _abstract_init(g, x.shape)[1], _abstract_init(d, x.shape)[1]

    def steps(g_params, d_params, x):
        def loss(params):
            fake = g.apply({"params": params[0]}, x, train=True)
            cycle = jnp.mean(jnp.abs(g.apply({"params": params[0]}, fake, train=True) - x))
            return jnp.mean(jnp.square(d.apply({"params": params[1]}, fake, train=True) - 1.0)) + cycle

        body = lambda p, _: (jax.tree_util.tree_map(lambda a, b: a - b, p, jax.grad(loss)(p)), None)  # noqa: E731
        return jax.lax.scan(body, (g_params, d_params), None, length=2)[0]

    options = {"xla_backend_optimization_level": 0, **cpu_compiler_options()}
    compiled = jax.jit(steps).lower(g_vars["params"], d_vars["params"], x).compile(options)
    convs = _CONV.findall(compiled.as_text())
    assert len(convs) > 20
    slow = [c for c in convs if "rhs_reversal" in c[0] or c[1] != "b01f_01io->b01f"]
    assert not slow, slow

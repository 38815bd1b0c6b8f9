"""StyleGAN2 networks (gan_jax.models.stylegan2): the reference's parameter counts and names, the resampling
convs against direct formulas, mapping/truncation/w_avg/noise semantics, the state_dict converter, and fast-path
convolutions in second-order (R1, path length) gradients inside lax.scan.

Forward and gradient parity with NVlabs/stylegan2-ada-pytorch itself needs the reference's code, which CI does
not have; it was checked locally (every architecture, conditional and not, max |diff| < 2e-5).
"""

from __future__ import annotations

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models.layers import cpu_compiler_options
from gan_jax.models.stylegan2 import (
    Conv2dLayer,
    Discriminator,
    FullyConnectedLayer,
    Generator,
    MappingNetwork,
    SynthesisLayer,
    SynthesisNetwork,
    conv2d_resample,
    demodulation_coefficients,
    filter_taps,
)
from gan_jax.models.stylegan2_convert import reference_filter, state_dict_from_variables, variables_from_torch

_CONV = re.compile(r"convolution\(.*?window=\{([^}]*)\}, dim_labels=(\S+?),")
TINY_SYN = dict(channel_base=64, channel_max=8)


def _names(tree) -> set[str]:
    return {".".join(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _count(tree) -> int:
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(tree))


def _abstract(module, *args, **kwargs):
    return jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))


def _run(fn, *args):
    """jax.jit(fn)(*args) compiled at LLVM -O0 (outputs as numpy): each function here runs once, so compile time
    is the cost (a single jax.random.normal takes about 2 s to compile at the default level on 2 cores)."""
    out = jax.jit(fn).lower(*args).compile({"xla_backend_optimization_level": 0})(*args)
    return jax.tree_util.tree_map(np.asarray, out)


def _random_variables(module, *args, seed: int = 0, **kwargs):
    """N(0, 1) values in the shapes `init` would give: jitted inits of many parameters compile slowly on CPU
    (one threefry kernel per parameter), and these tests need only finite, non-trivial values."""
    rng = np.random.default_rng(seed)
    shapes = _abstract(module, *args, **kwargs)
    return jax.tree_util.tree_map(lambda s: jnp.asarray(rng.normal(size=s.shape), s.dtype), shapes)


def _g_vars(g: Generator, n: int = 2, seed: int = 0):
    c = jnp.zeros((n, g.c_dim)) if g.c_dim else None
    return _random_variables(g, jnp.zeros((n, g.z_dim)), c, seed=seed, noise_mode="const")


def _cifar_specs(c_dim: int = 0) -> tuple[Generator, Discriminator]:
    g = Generator(512, c_dim, 512, 32, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(architecture="skip"))
    return g, Discriminator(c_dim, 32, 3, architecture="orig")


# Parameter counts measured from the reference (NVlabs/stylegan2-ada-pytorch @ d72cc7d, torch 2.13 CPU):
# (G kwargs, D kwargs, G total, G mapping, D total). The parameter names matched the reference's too.
_MEASURED = {
    "cifar_cond10": (
        dict(z_dim=512, c_dim=10, w_dim=512, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2)),
        dict(c_dim=10, img_resolution=32, img_channels=3, architecture="orig"),
        20_215_315, 793_088, 23_089_664,
    ),
    "gray64_resnetD_map8": (
        dict(
            z_dim=512, c_dim=0, w_dim=512, img_resolution=64, img_channels=1,
            synthesis_kwargs=dict(channel_base=16384),
        ),
        dict(c_dim=0, img_resolution=64, img_channels=1, architecture="resnet", channel_base=16384),
        23_814_926, 2_101_248, 23_406_849,
    ),
    "cond128_resnetG_skipD": (
        dict(
            z_dim=256, c_dim=7, w_dim=256, img_resolution=128, img_channels=3,
            mapping_kwargs=dict(num_layers=4, embed_features=64, layer_features=128),
            synthesis_kwargs=dict(channel_base=8192, channel_max=256, architecture="resnet"),
        ),
        dict(
            c_dim=7, img_resolution=128, img_channels=3, architecture="skip", channel_base=8192, channel_max=256,
            cmap_dim=128, mbstd_num_channels=2, mapping_kwargs=dict(num_layers=2),
        ),
        5_658_446, 107_648, 5_809_344,
    ),
    "gray16_origG_cond3": (
        dict(
            z_dim=64, c_dim=3, w_dim=128, img_resolution=16, img_channels=1, mapping_kwargs=dict(num_layers=3),
            synthesis_kwargs=dict(channel_base=1024, channel_max=128, architecture="orig"),
        ),
        dict(c_dim=3, img_resolution=16, img_channels=1, architecture="orig", channel_base=1024, channel_max=128),
        696_390, 58_240, 966_208,
    ),
}  # fmt: skip


def test_cifar_parameter_counts_match_the_reference():
    g, d = _cifar_specs()
    g_vars = _abstract(g, jnp.zeros((2, 512)), None, noise_mode="const")
    d_vars = _abstract(d, jnp.zeros((2, 32, 32, 3)))
    assert _count(g_vars["params"]["mapping"]) == 525_312
    assert _count(g_vars["params"]["synthesis"]) == 19_422_227
    assert _count(g_vars["params"]) == 19_947_539
    assert _count(d_vars["params"]) == 20_720_641
    assert set(d_vars) == {"params"} and g.num_ws == 8
    assert jax.tree_util.tree_map(lambda a: a.shape, g_vars["stats"]["mapping"]) == {"w_avg": (512,)}
    assert g_vars["stats"]["synthesis"]["b32"]["conv0"]["noise_const"].shape == (32, 32)


@pytest.mark.parametrize("name", sorted(_MEASURED))
def test_parameter_counts_match_measured_reference_counts(name):
    g_kwargs, d_kwargs, g_total, g_mapping, d_total = _MEASURED[name]
    g, d = Generator(**g_kwargs), Discriminator(**d_kwargs)
    c = jnp.zeros((4, g.c_dim)) if g.c_dim else None
    g_vars = _abstract(g, jnp.zeros((4, g.z_dim)), c, noise_mode="const")
    res, ch = d.img_resolution, d.img_channels
    d_vars = _abstract(d, jnp.zeros((4, res, res, ch)), jnp.zeros((4, d.c_dim)) if d.c_dim else None)
    assert (_count(g_vars["params"]), _count(g_vars["params"]["mapping"])) == (g_total, g_mapping)
    assert _count(d_vars["params"]) == d_total


def test_parameter_names_mirror_the_reference_tree():
    g = Generator(
        8, 3, 8, 16, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(**TINY_SYN, architecture="resnet")
    )
    d = Discriminator(3, 16, 3, architecture="resnet", **TINY_SYN, mapping_kwargs=dict(num_layers=1))
    g_vars = _abstract(g, jnp.zeros((2, 8)), jnp.zeros((2, 3)), noise_mode="const")
    keys = _names(g_vars["params"]) | _names(g_vars["stats"])
    assert {"mapping.embed.weight", "mapping.fc1.bias", "mapping.w_avg", "synthesis.b4.const"} <= keys
    assert {"synthesis.b4.conv1.affine.weight", "synthesis.b8.conv0.noise_strength", "synthesis.b8.skip.weight"} <= keys
    assert {"synthesis.b16.conv1.noise_const", "synthesis.b16.torgb.bias"} <= keys
    assert "synthesis.b8.torgb.weight" not in keys  # resnet: only the last block has a ToRGB
    d_keys = _names(_abstract(d, jnp.zeros((2, 16, 16, 3)), jnp.zeros((2, 3)))["params"])
    assert {
        "b16.fromrgb.weight",
        "b16.skip.weight",
        "b8.conv1.bias",
        "mapping.fc0.weight",
        "mapping.embed.bias",
    } <= d_keys
    assert {"b4.conv.weight", "b4.fc.weight", "b4.out.weight"} <= d_keys and "b8.fromrgb.weight" not in d_keys
    assert hash(g) and hash(d)  # dict/list fields are frozen: the modules can be jit static arguments


# --- resampling convs against direct formulas (numpy) -----------------------------------------------------------


def _np_upfirdn(x: np.ndarray, f1: np.ndarray, up: int, down: int, pads: tuple[int, int], gain: float) -> np.ndarray:
    """The reference's definition: zero-insert, pad/crop, convolve with the 2-D filter, subsample (NHWC)."""
    n, h, w, c = x.shape
    z = np.zeros((n, h * up, w * up, c))
    z[:, ::up, ::up] = x
    lo, hi = pads
    z = np.pad(z, ((0, 0), (max(lo, 0), max(hi, 0)), (max(lo, 0), max(hi, 0)), (0, 0)))
    z = z[:, max(-lo, 0) : z.shape[1] - max(-hi, 0), max(-lo, 0) : z.shape[2] - max(-hi, 0)]
    f = np.outer(f1, f1)[::-1, ::-1] * gain
    k = len(f1)
    out = sum(
        f[i, j] * z[:, i : z.shape[1] - k + 1 + i, j : z.shape[2] - k + 1 + j] for i in range(k) for j in range(k)
    )
    return out[:, ::down, ::down]


def _np_conv(x: np.ndarray, w: np.ndarray, stride: int = 1, flip: bool = False) -> np.ndarray:
    """VALID correlation (convolution if flip) of NHWC x with HWIO w."""
    w = w[::-1, ::-1] if flip else w
    k = w.shape[0]
    oh, ow = (x.shape[1] - k) // stride + 1, (x.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(k):
        for j in range(k):
            out += x[:, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride] @ w[i, j]
    return out


def test_resampling_convs_match_direct_formulas():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 3))
    w3, w1 = rng.normal(size=(3, 3, 3, 4)), rng.normal(size=(1, 1, 3, 4))
    f = filter_taps((1, 3, 3, 1))
    cases = [(w3, dict(up=2, padding=1)), (w3, dict(down=2, padding=1)), (w1, dict(down=2)), (w1, dict(up=2))]
    cases.append((w3, dict(padding=1)))
    ours = _run(lambda x, ws: [conv2d_resample(x, w, f, **kw) for w, (_, kw) in zip(ws, cases, strict=True)],
                jnp.float32(x), [jnp.float32(w) for w, _ in cases])  # fmt: skip
    # 3x3 up: transposed conv (the reference's flip_weight=False convention), then the 4x-gain FIR.
    z = np.zeros((2, 11, 11, 3))
    z[:, ::2, ::2] = x
    full = _np_conv(np.pad(z, ((0, 0), (2, 2), (2, 2), (0, 0))), w3, flip=True)
    np.testing.assert_allclose(ours[0], _np_upfirdn(full, f, 1, 1, (1, 1), 4), atol=1e-4)
    # 3x3 down: FIR (pad 2) then the stride-2 correlation; 1x1 down: FIR-downsample then the 1x1 conv.
    np.testing.assert_allclose(ours[1], _np_conv(_np_upfirdn(x, f, 1, 1, (2, 2), 1), w3, stride=2), atol=1e-4)
    np.testing.assert_allclose(ours[2], _np_conv(_np_upfirdn(x, f, 1, 2, (1, 1), 1), w1), atol=1e-4)
    np.testing.assert_allclose(ours[3], _np_upfirdn(_np_conv(x, w1), f, 2, 1, (2, 1), 4), atol=1e-4)
    np.testing.assert_allclose(ours[4], _np_conv(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), w3), atol=1e-4)


def test_demodulation_normalizes_each_output_channel():
    rng = np.random.default_rng(1)
    weight, styles = rng.normal(size=(3, 3, 5, 7)), rng.normal(size=(4, 5))
    d = np.asarray(_run(demodulation_coefficients, jnp.float32(weight), jnp.float32(styles)))
    modulated = weight[None] * styles[:, None, None, :, None] * d[:, None, None, None, :]  # [N, kh, kw, I, O]
    np.testing.assert_allclose(np.sqrt(np.sum(modulated**2, axis=(1, 2, 3))), 1.0, rtol=1e-5)
    # So a synthesis layer's output does not depend on the scale of its weights.
    layer = SynthesisLayer(6, resolution=8)
    x, w = jnp.float32(rng.normal(size=(2, 8, 8, 5))), jnp.float32(rng.normal(size=(2, 4)))
    v = _random_variables(layer, x, w, noise_mode="none")
    scaled = jax.tree_util.tree_map_with_path(lambda p, a: a * 3 if p[-1].key == "weight" and a.ndim == 4 else a, v)
    out = _run(lambda vs: [layer.apply(v, x, w, noise_mode="none") for v in vs], [v, scaled])
    np.testing.assert_allclose(out[1], out[0], rtol=1e-4, atol=1e-5)


def test_equalized_learning_rate_init_and_gains():
    fc = FullyConnectedLayer(256, lr_multiplier=0.01, bias_init=1.0)
    x = jnp.ones((1, 64))
    v = _run(lambda key: fc.init(key, x), jax.random.key(0))
    assert 90 < float(np.std(v["params"]["weight"])) < 110  # N(0, 1) / lr_multiplier, used times lr / sqrt(in)
    np.testing.assert_array_equal(v["params"]["bias"], 1.0)
    expected = x @ (v["params"]["weight"] * 0.01 / 8) + 0.01
    np.testing.assert_allclose(_run(fc.apply, v, x), expected, rtol=1e-5)
    conv = Conv2dLayer(4, 3, activation="lrelu", conv_clamp=0.5)
    v = {"params": {"weight": jnp.ones((3, 3, 2, 4)), "bias": jnp.zeros(4)}}
    # At the centre: 18 taps of 1/sqrt(18), times the lrelu gain sqrt(2); then clamped to +-0.5.
    out = _run(lambda v: [conv.apply(v, jnp.ones((1, 5, 5, 2)) * scale)[0, 2, 2] for scale in (1.0, 0.01)], v)
    np.testing.assert_allclose(out[0], 0.5)
    np.testing.assert_allclose(out[1], 0.18 / 3, rtol=1e-5)


# --- mapping, noise, shapes -------------------------------------------------------------------------------------


def test_truncation_and_w_avg_update():
    m = MappingNetwork(z_dim=6, c_dim=0, w_dim=5, num_ws=4, num_layers=2, w_avg_beta=0.9)
    rng = np.random.default_rng(2)
    z, w_avg = jnp.float32(rng.normal(size=(3, 6))), rng.normal(size=5).astype(np.float32)
    v = {"params": _random_variables(m, z)["params"], "stats": {"w_avg": jnp.asarray(w_avg)}}

    def run(v):
        truncated = [m.apply(v, z, truncation_psi=psi, truncation_cutoff=cut) for psi, cut in ((0.0, None), (0.5, 2))]
        return m.apply(v, z), truncated, m.apply(v, z, update_w_avg=True, mutable=["stats"])[1]

    ws, (zero, half), new = _run(run, v)
    assert ws.shape == (3, 4, 5) and ws.dtype == np.float32
    np.testing.assert_allclose(ws[:, 0], ws[:, 3])  # broadcast
    np.testing.assert_allclose(zero, np.broadcast_to(w_avg, (3, 4, 5)))  # psi = 0: w_avg
    np.testing.assert_allclose(half[:, :2], w_avg + 0.5 * (ws[:, :2] - w_avg), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(half[:, 2:], ws[:, 2:])  # layers >= cutoff untouched
    mean = ws[:, 0].mean(0)
    np.testing.assert_allclose(new["stats"]["w_avg"], mean + 0.9 * (w_avg - mean), rtol=1e-5)
    with pytest.raises(ValueError, match="z of shape"):
        jax.eval_shape(m.apply, v, jnp.zeros((3, 7)))


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_forward_shapes_dtypes(arch):
    g = Generator(
        8, 3, 8, 8, 1, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(**TINY_SYN, architecture=arch)
    )
    d = Discriminator(3, 8, 1, architecture=arch, **TINY_SYN, mbstd_group_size=2, mapping_kwargs=dict(num_layers=1))
    z, c = jnp.float32(np.random.default_rng(3).normal(size=(4, 8))), jnp.eye(3)[jnp.array([0, 1, 2, 0])]
    g_vars, d_vars = _g_vars(g, 4), _random_variables(d, jnp.zeros((4, 8, 8, 1)), c)

    def run(g_vars, d_vars):
        img = g.apply(g_vars, z, c, noise_mode="const")
        ws = g.apply(g_vars, z, c, method=g.mapping)
        return img, g.apply(g_vars, ws, "const", method=g.synthesis), d.apply(d_vars, img, c)

    img, img2, logits = _run(run, g_vars, d_vars)
    assert img.shape == (4, 8, 8, 1) and img.dtype == np.float32
    np.testing.assert_allclose(img, img2, rtol=1e-6, atol=1e-6)  # G(z, c) = synthesis(mapping(z, c))
    assert logits.shape == (4, 1) and logits.dtype == np.float32 and np.isfinite(logits).all()


def test_noise_modes():
    g = Generator(8, 0, 8, 8, 3, mapping_kwargs=dict(num_layers=1), synthesis_kwargs=TINY_SYN)
    v = _g_vars(g, 2)
    ws = jnp.float32(np.random.default_rng(4).normal(size=(2, g.num_ws, 8)))
    modes = [("const", 0), ("const", 1), ("random", 0), ("random", 1), ("none", 0)]

    def run(v, keys):
        return [g.apply(v, ws, mode, rngs={"noise": keys[k]}, method=g.synthesis) for mode, k in modes]

    const0, const1, random0, random1, none = _run(run, v, jax.random.split(jax.random.key(0)))
    np.testing.assert_array_equal(const0, const1)  # the const buffers, whatever the rng
    assert not np.allclose(random0, random1) and not np.allclose(const0, none) and not np.allclose(const0, random0)
    zero = {**v, "params": jax.tree_util.tree_map_with_path(
        lambda p, a: a * 0 if p[-1].key == "noise_strength" else a, v["params"])}  # fmt: skip
    np.testing.assert_allclose(_run(lambda v: run(v, jax.random.split(jax.random.key(0)))[2], zero), none, atol=1e-6)


def test_bfloat16_blocks_keep_float32_params_and_outputs():
    syn = dict(**TINY_SYN, architecture="skip", conv_clamp=256.0)
    g32 = Generator(8, 0, 8, 16, 3, mapping_kwargs=dict(num_layers=1), synthesis_kwargs=syn)
    g16 = Generator(8, 0, 8, 16, 3, mapping_kwargs=dict(num_layers=1),
                    synthesis_kwargs={**syn, "num_fp16_res": 2, "compute_dtype": jnp.bfloat16})  # fmt: skip
    d = Discriminator(0, 16, 3, **TINY_SYN, num_fp16_res=2, conv_clamp=256.0, compute_dtype=jnp.bfloat16)
    g_vars, d_vars = _g_vars(g32), _random_variables(d, jnp.zeros((2, 16, 16, 3)))
    g16_vars = _abstract(g16, jnp.zeros((2, 8)), noise_mode="const")
    assert {a.dtype for a in jax.tree_util.tree_leaves(g16_vars)} == {jnp.dtype(jnp.float32)}
    z = jnp.float32(np.random.default_rng(5).normal(size=(2, 8)))

    def run(g_vars, d_vars):
        a, b = (g.apply(g_vars, z, noise_mode="const") for g in (g32, g16))
        return a, b, d.apply(d_vars, b)

    a, b, logits = _run(run, g_vars, d_vars)
    assert b.dtype == np.float32 and logits.dtype == np.float32
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()


@pytest.mark.parametrize("resolution", [4, 12, 48, 0])
def test_bad_resolution_is_a_clear_value_error(resolution):
    for build in (
        lambda: Generator(8, 0, 8, resolution, 3),
        lambda: Discriminator(0, resolution, 3),
        lambda: SynthesisNetwork(8, resolution, 3),
    ):
        with pytest.raises(ValueError, match=r"power of two >= 8.*img_resolution="):
            build()
    with pytest.raises(ValueError, match="architecture"):
        Discriminator(0, 16, 3, architecture="unet")


# --- converter --------------------------------------------------------------------------------------------------


def test_converter_round_trip_and_layouts():
    g = Generator(8, 3, 8, 8, 3, mapping_kwargs=dict(num_layers=2), synthesis_kwargs=TINY_SYN)
    v = jax.tree_util.tree_map(np.asarray, _g_vars(g))
    sd = state_dict_from_variables(v)
    assert sd["synthesis.b8.conv0.weight"].shape == (8, 8, 3, 3)  # OIHW
    assert sd["mapping.fc0.weight"].shape == (8, 16) and sd["synthesis.b4.const"].shape == (8, 4, 4)
    assert sd["synthesis.b4.conv1.noise_strength"].shape == ()
    sd["synthesis.b8.conv0.resample_filter"] = reference_filter()
    back = variables_from_torch(sd)
    jax.tree_util.tree_map(np.testing.assert_array_equal, back, v)
    np.testing.assert_allclose(reference_filter(), np.outer([1, 3, 3, 1], [1, 3, 3, 1]) / 64)
    with pytest.raises(ValueError, match="resample_filter"):
        variables_from_torch({**sd, "synthesis.b8.resample_filter": np.ones((2, 2)) / 4})
    # The reference builds its non-resampling layers with the default filter whatever the network's is.
    other = reference_filter((1, 2, 1))
    assert variables_from_torch(
        {"b8.resample_filter": other, "b8.conv0.resample_filter": reference_filter()}, (1, 2, 1)
    ) == {"params": {}}
    with pytest.raises(ValueError, match="resample_filter"):
        variables_from_torch({"b8.resample_filter": reference_filter()}, resample_filter=(1, 2, 1))
    with pytest.raises(ValueError, match="not a StyleGAN2"):
        variables_from_torch({**sd, "synthesis.b8.conv0.running_mean": np.zeros(3)})


# --- XLA:CPU fast path ------------------------------------------------------------------------------------------


def _regularized_steps(g: Generator, d: Discriminator, g_vars, d_vars, ws, real, y):
    """Two scanned steps of a G loss (adversarial + path-length-style) and a D loss (logistic + R1)."""

    def synth(gp, w):
        return g.apply({**g_vars, "params": gp}, w, "const", method=g.synthesis)

    def critic(dp, x):
        return d.apply({"params": dp}, x)

    def g_loss(gp, dp):
        path = jax.grad(lambda w: jnp.sum(synth(gp, w) * y))(ws)
        return jnp.mean(jax.nn.softplus(-critic(dp, synth(gp, ws)))) + jnp.sum(jnp.square(path))

    def d_loss(dp, gp):
        r1 = jax.grad(lambda x: jnp.sum(critic(dp, x)))(real)
        fake = jax.lax.stop_gradient(synth(gp, ws))
        return jnp.mean(jax.nn.softplus(critic(dp, fake)) + jax.nn.softplus(-critic(dp, real))) + jnp.sum(r1**2)

    def body(carry, _):
        gp, dp = carry
        gp = jax.tree_util.tree_map(lambda a, b: a - 1e-3 * b, gp, jax.grad(g_loss)(gp, dp))
        dp = jax.tree_util.tree_map(lambda a, b: a - 1e-3 * b, dp, jax.grad(d_loss)(dp, gp))
        return (gp, dp), None

    return jax.lax.scan(body, (g_vars["params"], d_vars["params"]), None, length=2)[0]


def test_second_order_gradients_stay_on_fast_xla_cpu_convolutions():
    """R1 (grad wrt image, then params) and path length (grad wrt ws, then params) inside lax.scan: every conv
    is NHWC/HWIO without window reversal (the criterion of test_dcgan), and the result is finite."""
    g = Generator(
        4, 0, 4, 8, 3, mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(**TINY_SYN, architecture="resnet")
    )
    d = Discriminator(0, 8, 3, architecture="resnet", **TINY_SYN, mbstd_group_size=2)
    g_vars = _g_vars(g)
    real = jax.random.uniform(jax.random.key(5), (2, 8, 8, 3), minval=-1, maxval=1)
    d_vars = _random_variables(d, real)
    ws, y = jax.random.normal(jax.random.key(6), (2, g.num_ws, 4)), jax.random.normal(jax.random.key(7), real.shape)
    steps = jax.jit(functools.partial(_regularized_steps, g, d))
    options = {"xla_backend_optimization_level": 0, **cpu_compiler_options()}
    compiled = steps.lower(g_vars, d_vars, ws, real, y).compile(options)
    convs = _CONV.findall(compiled.as_text())
    assert len(convs) > 50
    slow = [c for c in convs if "rhs_reversal" in c[0] or c[1] != "b01f_01io->b01f"]
    assert not slow, slow
    out = compiled(g_vars, d_vars, ws, real, y)
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(out))
    assert not np.allclose(out[1]["b4"]["out"]["weight"], d_vars["params"]["b4"]["out"]["weight"])

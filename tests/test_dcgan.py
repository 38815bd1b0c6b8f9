"""DCGAN models and the CPU-friendly conv layers: sizes, equivalence with Flax, and no slow XLA:CPU convs."""

from __future__ import annotations

import functools
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import ConfigError
from gan_jax.models.dcgan import DCGANCritic, DCGANGenerator, RadfordCritic, RadfordGenerator
from gan_jax.models.layers import Conv, ConvTranspose, conv_nhwc, cpu_compiler_options


def _n_params(variables) -> int:
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(variables["params"]))


def _shapes(module: nn.Module, x: jax.Array):
    """(output shape, variables) without running the network: eval_shape only traces it."""
    out, variables = jax.eval_shape(lambda: module.init_with_output(jax.random.key(0), x, train=False))
    return out.shape, variables


def test_studiogan_deep_conv_parameter_counts():
    _, g_vars = _shapes(DCGANGenerator(resolution=32, channels=3, z_dim=128), jnp.zeros((2, 128)))
    _, d_vars = _shapes(DCGANCritic(resolution=32, channels=3), jnp.zeros((2, 32, 32, 3)))
    assert _n_params(g_vars) == 3_812_355
    assert _n_params(d_vars) == 2_931_009


@pytest.mark.parametrize("resolution", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(resolution, channels):
    g_shape, _ = _shapes(DCGANGenerator(resolution=resolution, channels=channels, z_dim=16), jnp.zeros((2, 16)))
    assert g_shape == (2, resolution, resolution, channels)
    d_shape, _ = _shapes(DCGANCritic(resolution=resolution, channels=channels), jnp.zeros(g_shape))
    assert d_shape == (2,)


@pytest.mark.parametrize("channels", [1, 3])
def test_radford_shapes(channels):
    g_shape, _ = _shapes(RadfordGenerator(channels=channels), jnp.zeros((2, 100)))
    assert g_shape == (2, 64, 64, channels)
    d_shape, _ = _shapes(RadfordCritic(channels=channels), jnp.zeros(g_shape))
    assert d_shape == (2,)


def test_bad_configs_raise_clear_errors():
    with pytest.raises(ConfigError, match="resolution"):
        _shapes(DCGANGenerator(resolution=48), jnp.zeros((2, 128)))
    with pytest.raises(ConfigError, match="activation"):
        _shapes(DCGANCritic(activation="swishy"), jnp.zeros((2, 32, 32, 3)))
    with pytest.raises(ConfigError, match="init"):
        _shapes(DCGANCritic(weight_init="xavier"), jnp.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match=r"\(B, 32, 32, 3\)"):
        _shapes(DCGANCritic(), jnp.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="padding='SAME'"):
        ConvTranspose(4, padding="VALID").init(jax.random.key(0), jnp.zeros((1, 4, 4, 2)))


def _assert_same_function(ref: nn.Module, fast: nn.Module, x: np.ndarray):
    """Same parameters; same outputs and gradients w.r.t. params and input, and the gradient-penalty gradient."""
    ref_vars, fast_vars = (
        jax.eval_shape(ref.init, jax.random.key(0), x),
        jax.eval_shape(fast.init, jax.random.key(0), x),
    )
    assert jax.tree_util.tree_structure(ref_vars) == jax.tree_util.tree_structure(fast_vars)
    assert jax.tree_util.tree_leaves(ref_vars) == jax.tree_util.tree_leaves(fast_vars)  # shapes and dtypes
    # Random values for every parameter (bias included), made with numpy: Flax's eager init costs seconds.
    rng = np.random.default_rng(0)
    params = jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape).astype(a.dtype) / 4, ref_vars)
    cot = rng.normal(size=jax.eval_shape(ref.apply, params, x).shape).astype(np.float32)

    def run(m: nn.Module):
        def f(params, x):
            loss = lambda p, x: jnp.sum(m.apply(p, x) * cot)  # noqa: E731
            penalty = lambda p: jnp.sum(jax.grad(loss, 1)(p, x) ** 2)  # noqa: E731
            return m.apply(params, x), jax.grad(loss, (0, 1))(params, x), jax.grad(penalty)(params)

        return jax.tree_util.tree_leaves(jax.jit(f)(params, x))  # one compilation, not hundreds of op dispatches

    for a, b in zip(run(ref), run(fast), strict=True):
        a, b = np.asarray(a), np.asarray(b)  # numpy from here: each eager jnp op would compile a kernel
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5 * np.abs(a).max())


@pytest.mark.parametrize(
    ("kernel", "strides", "hw"), [((4, 4), (2, 2), (4, 4)), ((4, 4), (2, 2), (3, 5)), ((3, 3), (2, 2), (4, 4)),
                                  ((2, 2), (2, 2), (3, 3)), ((5, 4), (3, 2), (3, 4)), ((4, 4), (1, 1), (4, 4))],
)  # fmt: skip
def test_conv_transpose_matches_flax(kernel, strides, hw):
    x = np.random.default_rng(1).normal(size=(3, *hw, 5)).astype(np.float32)
    _assert_same_function(nn.ConvTranspose(6, kernel, strides, "SAME"), ConvTranspose(6, kernel, strides), x)


@pytest.mark.parametrize(
    ("kernel", "strides", "padding", "hw"),
    [((3, 3), 1, 1, (8, 8)), ((4, 4), 2, 1, (8, 8)), ((4, 4), 2, 1, (7, 9)), ((4, 4), 1, "VALID", (4, 4)),
     ((3, 3), 2, "SAME", (7, 8)), ((5, 5), 3, ((2, 1), (0, 2)), (9, 8)), ((1, 1), 1, 0, (4, 4))],
)  # fmt: skip
def test_conv_matches_flax(kernel, strides, padding, hw):
    x = np.random.default_rng(1).normal(size=(3, *hw, 5)).astype(np.float32)
    _assert_same_function(nn.Conv(6, kernel, strides, padding), Conv(6, kernel, strides, padding), x)


@pytest.mark.parametrize(
    ("hw", "kernel", "padding"), [((3, 3), (5, 5), ((2, 2), (2, 2))), ((2, 4), (4, 3), ((3, 0), (1, 1))),
                                  ((4, 4), (3, 5), ((-1, 1), (2, 0))), ((4, 4), (4, 4), ((0, 0), (0, 0)))],
)  # fmt: skip
def test_conv_nhwc_matches_lax_when_kernel_exceeds_input(hw, kernel, padding):
    """These shapes take the operand-swapped path (kernel larger than input) or crop for negative padding."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *hw, 3)).astype(np.float32)
    w = rng.normal(size=(*kernel, 3, 4)).astype(np.float32)

    def run(conv):
        loss = lambda x, w: jnp.sum(jnp.sin(conv(x, w)))  # noqa: E731
        return conv(x, w), jax.grad(loss, (0, 1))(x, w)

    ref = jax.jit(
        lambda: run(
            lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        )
    )()
    ours = jax.jit(lambda: run(lambda x, w: conv_nhwc(x, w, padding)))()
    for a, b in zip(jax.tree_util.tree_leaves(ref), jax.tree_util.tree_leaves(ours), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=0, atol=1e-5 * np.abs(np.asarray(a)).max())


_CONV = re.compile(r"convolution\(.*?window=\{([^}]*)\}, dim_labels=(\S+?),")


def _abstract_variables(module: nn.Module, x: jax.Array):
    return jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), x)


def test_no_slow_xla_cpu_convolutions_inside_scan():
    """Every conv of a scanned G+D gradient (with a gradient penalty) must be NHWC/HWIO without window reversal.

    Anything else runs as a naive loop on XLA:CPU (about 40x slower). Flax's own layers fail this: XLA's
    ConvCanonicalization skips loop bodies, and the ConvTranspose weight gradient is window-reversed.
    """
    g, d = DCGANGenerator(resolution=28, channels=1, z_dim=8), DCGANCritic(resolution=28, channels=1)
    z = jnp.zeros((2, 8))
    g_vars, d_vars = _abstract_variables(g, z), _abstract_variables(d, jnp.zeros((2, 28, 28, 1)))

    def steps(g_vars, d_vars, z):
        def loss(params):
            x, _ = g.apply({**g_vars, "params": params[0]}, z, train=True, mutable=["batch_stats"])
            critic = lambda x: d.apply({**d_vars, "params": params[1]}, x, train=True, mutable=["batch_stats"])[0]  # noqa: E731
            # A gradient penalty term makes the step differentiate the critic's convolutions twice.
            return jnp.mean(critic(x)) + jnp.sum(jax.grad(lambda x: jnp.sum(critic(x)))(x) ** 2)

        body = lambda p, _: (jax.tree_util.tree_map(lambda a, b: a - b, p, jax.grad(loss)(p)), None)  # noqa: E731
        return jax.lax.scan(body, (g_vars["params"], d_vars["params"]), None, length=2)[0]

    # The HLO passes that decide a conv's fate run at any LLVM level; level 0 halves the compile time.
    options = {"xla_backend_optimization_level": 0, **cpu_compiler_options()}
    compiled = jax.jit(steps).lower(g_vars, d_vars, z).compile(options)
    convs = _CONV.findall(compiled.as_text())
    assert len(convs) > 20
    slow = [c for c in convs if "rhs_reversal" in c[0] or c[1] != "b01f_01io->b01f"]
    assert not slow, slow


def _random_like(tree, seed: int):
    rng = np.random.default_rng(seed)
    return jax.tree_util.tree_map(lambda a: (rng.normal(size=a.shape) / 8).astype(a.dtype), tree)


def test_batch_norm_eval_mode_uses_running_stats():
    g, d = DCGANGenerator(resolution=28, channels=1, z_dim=8), DCGANCritic(resolution=28, channels=1)
    z = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    g_vars = _random_like(_abstract_variables(g, z), 1)
    d_vars = _random_like(_abstract_variables(d, jnp.zeros((4, 28, 28, 1))), 2)

    @jax.jit
    def run(g_vars, d_vars, z):
        _, updates = g.apply(g_vars, 3.0 * z + 1.0, train=True, mutable=["batch_stats"])
        g_vars = {**g_vars, **updates}
        full, one = g.apply(g_vars, z, train=False), g.apply(g_vars, z[:1], train=False)
        batch, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
        alone, _ = g.apply(g_vars, z[:2], train=True, mutable=["batch_stats"])
        d_full, d_one = d.apply(d_vars, full, train=False), d.apply(d_vars, full[:1], train=False)
        # torch momentum 0.1: one update from a zero running mean leaves 0.1 x the batch mean.
        bn = nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-4)
        stats = bn.init(jax.random.key(0), jnp.zeros((2, 3)))
        _, stats = bn.apply(stats, jnp.full((2, 3), 5.0), mutable=["batch_stats"])
        return full[:1], one, batch[:1], alone[:1], d_full[:1], d_one, stats["batch_stats"]["mean"]

    full, one, batch, alone, d_full, d_one, bn_mean = jax.tree_util.tree_map(np.asarray, run(g_vars, d_vars, z))
    np.testing.assert_allclose(one, full, atol=1e-6)
    np.testing.assert_allclose(d_one, d_full, rtol=1e-5, atol=1e-6)
    # In training mode the batch statistics make an example's output depend on the rest of the batch.
    assert not np.allclose(alone, batch, atol=1e-4)
    np.testing.assert_allclose(bn_mean, 0.5, rtol=1e-6)

"""SNGAN ResNet generator and critic: reference sizes, shapes, conditioning, spectral norm, attention, bf16, GP."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from gan_jax.errors import ConfigError
from gan_jax.models.conditioning import SelfAttention
from gan_jax.models.resnet import ResNetCritic, ResNetGenerator


def _n_params(variables) -> int:
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(variables["params"]))


def _abstract(module, *args):
    """(output, variables) as shapes only: eval_shape traces the network without running it."""
    return jax.eval_shape(lambda: module.init_with_output(jax.random.key(0), *args, train=False))


# Tiny shapes: LLVM's optimisation of the compiled code costs far more time than it saves (init: 8 s -> 1 s).
_jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


def _init(module, *args):
    return _jit(lambda *a: module.init(jax.random.key(0), *a, train=False))(*args)


def _random_variables(module, *args, seed: int = 0):
    """Variables of the right shapes, filled with numpy: a compiled Flax init costs seconds per network.

    Kernels N(0, 1/fan_in), other params N(0, 0.1^2) (batch-norm scales around 1), running stats and spectral
    norm's sigma at their initial 0 / 1, power-iteration vectors u ~ N(0, 1)."""
    rng = np.random.default_rng(seed)

    def fill(path, a):
        name = str(path[-1].key)
        if name in ("mean", "var") or name.endswith("/sigma"):
            return np.full(a.shape, name != "mean", a.dtype)
        if name.endswith("/u"):
            return rng.normal(size=a.shape).astype(a.dtype)
        if a.ndim >= 2:
            return (rng.normal(size=a.shape) / math.sqrt(math.prod(a.shape[:-1]))).astype(a.dtype)
        return (rng.normal(size=a.shape) * 0.1 + (name == "scale")).astype(a.dtype)

    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, train=False))
    return jax.tree_util.tree_map_with_path(fill, variables)


def _conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout  # weight + bias


def test_sngan_32_parameter_counts_match_reference():
    """Mimicry's SNGANGenerator32 / SNGANDiscriminator32 (= Chainer's sngan_projection resnet_32, plus the
    Linear head's bias), counted layer by layer from the reference code."""
    nz, ngf, ndf, bottom = 128, 256, 128, 4
    l1 = nz * bottom**2 * ngf + bottom**2 * ngf
    g_block = 2 * (2 * ngf) + 2 * _conv(3, ngf, ngf) + _conv(1, ngf, ngf)  # b1, b2 (scale, shift), c1, c2, c_sc
    g_ref = l1 + 3 * g_block + 2 * ngf + _conv(3, ngf, 3)  # + b5, c5
    optimized = _conv(3, 3, ndf) + _conv(3, ndf, ndf) + _conv(1, 3, ndf)
    d_down = 2 * _conv(3, ndf, ndf) + _conv(1, ndf, ndf)  # learnable shortcut: it downsamples
    d_plain = 2 * _conv(3, ndf, ndf)  # identity shortcut
    d_ref = optimized + d_down + 2 * d_plain + ndf + 1  # + l5 (SNLinear with bias)
    assert (g_ref, d_ref) == (4_276_739, 1_053_825)  # "4.3M" and "1.0M"

    _, g_vars = _abstract(ResNetGenerator(), jnp.zeros((2, 128)))
    _, d_vars = _abstract(ResNetCritic(), jnp.zeros((2, 32, 32, 3)))
    assert _n_params(g_vars) == g_ref
    assert _n_params(d_vars) == d_ref
    # Spectral norm's u and sigma are state, not parameters: one pair per conv (3 + 3 + 2 + 2) and the head.
    sigmas = [k for k in traverse_util.flatten_dict(d_vars["batch_stats"], sep="/") if k.endswith("sigma")]
    assert len(sigmas) == 11


def test_xavier_init_bounds():
    """Residual-branch 3x3 convs: Glorot uniform with gain sqrt(2); shortcuts gain 1 (SNGAN's initializers)."""
    g_vars = _init(ResNetGenerator(resolution=28, channels=1, z_dim=8, width=32), jnp.zeros((2, 8)))
    block = g_vars["params"]["block0"]
    for name, gain in (("conv1", math.sqrt(2.0)), ("conv2", math.sqrt(2.0)), ("shortcut", 1.0)):
        kernel = np.asarray(block[name]["kernel"])
        kh, kw, cin, cout = kernel.shape
        bound = gain * math.sqrt(6.0 / (kh * kw * (cin + cout)))
        assert np.abs(kernel).max() <= bound
        assert np.abs(kernel).max() > 0.95 * bound
        np.testing.assert_array_equal(np.asarray(block[name]["bias"]), 0.0)


@pytest.mark.parametrize(("resolution", "channels"), [(28, 1), (32, 3), (64, 3)])
def test_shapes_and_range(resolution, channels):
    g = ResNetGenerator(resolution=resolution, channels=channels, z_dim=8, width=16)
    d = ResNetCritic(resolution=resolution, channels=channels, width=16)
    z = jax.random.normal(jax.random.key(1), (3, 8))
    g_vars = _random_variables(g, z)
    d_vars = _random_variables(d, jnp.zeros((3, resolution, resolution, channels)))

    @_jit
    def run(g_vars, d_vars, z):
        x, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])
        logits, _ = d.apply(d_vars, x, train=True, mutable=["batch_stats"])
        return x, logits

    x, logits = run(g_vars, d_vars, z)
    assert x.shape == _abstract(g, z)[0].shape == (3, resolution, resolution, channels)
    assert x.dtype == jnp.float32 and logits.shape == (3,) and logits.dtype == jnp.float32
    assert np.all(np.abs(np.asarray(x)) <= 1.0) and np.asarray(x).std() > 0
    assert np.all(np.isfinite(np.asarray(logits)))


def test_conditional_generator_uses_labels_and_dropout():
    g = ResNetGenerator(resolution=28, channels=1, z_dim=8, width=16, num_classes=10, dropout=0.5)
    z = jnp.tile(jax.random.normal(jax.random.key(1), (1, 8)), (4, 1))
    y = jnp.array([0, 0, 3, 7])
    variables = _random_variables(g, z, y)  # per-class batch-norm scales and shifts: random, so classes differ

    @_jit
    def run(variables, z, y):
        x = g.apply(variables, z, y, train=False)
        drop = lambda k: g.apply(variables, z, y, train=True, rngs={"dropout": k}, mutable=["batch_stats"])[0]  # noqa: E731
        return x, drop(jax.random.key(3)), drop(jax.random.key(4))

    x, drop_a, drop_b = map(np.asarray, run(variables, z, y))
    np.testing.assert_allclose(x[0], x[1], atol=1e-6)  # same z, same label
    assert np.abs(x[0] - x[2]).max() > 1e-3 and np.abs(x[2] - x[3]).max() > 1e-3  # same z, other labels
    assert np.abs(drop_a - drop_b).max() > 1e-3  # dropout draws from the 'dropout' rng
    assert "gamma" in variables["params"]["block0"]["bn1"]
    with pytest.raises(ValueError, match="int labels of shape"):
        _abstract(g, z)


@pytest.mark.parametrize("conditioning", ["none", "cgan", "acgan", "projection"])
def test_critic_conditionings(conditioning):
    d = ResNetCritic(resolution=28, channels=1, width=16, num_classes=5, conditioning=conditioning)
    x, y = jnp.zeros((3, 28, 28, 1)), jnp.array([0, 1, 4])
    logits, variables = jax.eval_shape(
        lambda: d.init_with_output(jax.random.key(0), x, y, train=True, mutable=["params", "batch_stats", "aux"])
    )
    assert logits.shape == (3,) and logits.dtype == jnp.float32
    if conditioning == "acgan":
        assert variables["aux"]["head"]["class_logits"][0].shape == (3, 5)
    else:
        assert "aux" not in variables
    if conditioning == "cgan":  # one-hot label maps joined to the image: 1 + 5 input channels
        assert variables["params"]["block0"]["conv1"]["kernel"].shape == (3, 3, 6, 16)
    if conditioning == "projection":
        assert variables["params"]["head"]["embed"]["kernel"].shape == (5, 16)
    if conditioning != "none":
        with pytest.raises(ValueError, match="int labels of shape"):
            _abstract(d, x)


def test_spectral_norm_state_tracks_every_kernel():
    """After 20 training calls (one power iteration each) the stored sigma of every normalised kernel,
    reshaped to (-1, out), is its largest singular value: each effective weight has spectral norm 1."""
    d = ResNetCritic(resolution=32, channels=3, width=16, num_classes=4, conditioning="projection")
    d = d.clone(attention_resolution=8)
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    y = jnp.array([0, 3])
    variables = _random_variables(d, x, y)

    @_jit
    def step(variables, x, y):
        _, updates = d.apply(variables, x, y, train=True, mutable=["batch_stats"])
        return {**variables, **updates}

    for _ in range(20):
        variables = step(variables, x, y)
    params = traverse_util.flatten_dict(variables["params"])
    stats = traverse_util.flatten_dict(variables["batch_stats"])
    checked = 0
    for path, sigma in stats.items():
        if not path[-1].endswith("/sigma"):
            continue
        # batch_stats/.../<layer>_sn/"<layer>/kernel/sigma" belongs to params/.../<layer>/kernel
        kernel = np.asarray(params[(*path[:-2], *path[-1].split("/")[:-1])])
        top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert top / float(sigma) == pytest.approx(1.0, abs=0.05), path
        checked += 1
    # 4 blocks (3 + 3 + 2 + 2 convs), attention (query, key, value, out), head (linear, embed)
    assert checked == 10 + 4 + 2


def test_self_attention_starts_as_identity():
    g = ResNetGenerator(resolution=32, channels=3, z_dim=8, width=16)
    d = ResNetCritic(resolution=32, channels=3, width=16)
    g_att, d_att = g.clone(attention_resolution=16), d.clone(attention_resolution=16)
    z = jax.random.normal(jax.random.key(1), (2, 8))
    x = jax.random.normal(jax.random.key(2), (2, 32, 32, 3))
    h = jnp.ones((1, 16, 16, 16))
    assert float(_init(SelfAttention(), h)["params"]["gamma"]) == 0.0  # SAGAN's gate starts closed
    g_vars, d_vars = _random_variables(g_att, z), _random_variables(d_att, x)
    g_vars["params"]["attention"]["gamma"] = d_vars["params"]["attention"]["gamma"] = np.zeros((), np.float32)
    assert "attention" in d_vars["batch_stats"]  # the critic's attention is spectrally normalised too

    def without_attention(variables):
        return {k: {n: v for n, v in c.items() if n != "attention"} for k, c in variables.items()}

    assert "attention" not in _abstract(g, z)[1]["params"]
    assert jax.tree_util.tree_structure(without_attention(g_vars)) == jax.tree_util.tree_structure(_abstract(g, z)[1])

    @_jit
    def run(g_vars, d_vars):
        return (
            g_att.apply(g_vars, z, train=False),
            g.apply(without_attention(g_vars), z, train=False),
            d_att.apply(d_vars, x, train=False),
            d.apply(without_attention(d_vars), x, train=False),
        )

    g_out, g_ref, d_out, d_ref = map(np.asarray, run(g_vars, d_vars))
    np.testing.assert_allclose(g_out, g_ref, atol=1e-6)
    np.testing.assert_allclose(d_out, d_ref, rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_gradients():
    g = ResNetGenerator(resolution=28, channels=1, z_dim=8, width=16, dtype=jnp.bfloat16)
    d = ResNetCritic(resolution=28, channels=1, width=16, dtype=jnp.bfloat16, attention_resolution=14)
    z = jax.random.normal(jax.random.key(1), (2, 8))
    for module, arg in ((g, z), (d, jnp.zeros((2, 28, 28, 1)))):  # abstract init: the parameters' dtypes
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(_abstract(module, arg)[1])} == {jnp.dtype("float32")}
    g_vars, d_vars = _random_variables(g, z), _random_variables(d, jnp.zeros((2, 28, 28, 1)))

    @_jit
    def grads(g_vars, d_vars):
        x, _ = g.apply(g_vars, z, train=True, mutable=["batch_stats"])

        def loss(d_params):
            logits, _ = d.apply({**d_vars, "params": d_params}, x, train=True, mutable=["batch_stats"])
            return jnp.mean(logits), logits

        return x, jax.grad(loss, has_aux=True)(d_vars["params"])

    x, (d_grad, logits) = grads(g_vars, d_vars)
    assert x.dtype == jnp.float32 and logits.dtype == jnp.float32 and logits.shape == (2,)
    assert np.all(np.isfinite(np.asarray(x))) and np.asarray(x).std() > 0
    for leaf in jax.tree_util.tree_leaves(d_grad):
        assert leaf.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(leaf)))


@pytest.mark.parametrize("spectral_norm", [False, True])
def test_gradient_penalty_second_order_under_jit(spectral_norm):
    """WGAN-GP differentiates the critic twice: grad w.r.t. params of the input-gradient norm penalty."""
    d = ResNetCritic(resolution=28, channels=1, width=16, spectral_norm=spectral_norm)
    x = jax.random.normal(jax.random.key(1), (3, 28, 28, 1))
    variables = _random_variables(d, x)

    @_jit
    def penalty_grad(params):
        def critic(params, x):
            return d.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"])[0]

        def penalty(params):
            g = jax.grad(lambda x: jnp.sum(critic(params, x)))(x)
            return jnp.mean((jnp.sqrt(jnp.sum(g**2, axis=(1, 2, 3)) + 1e-12) - 1.0) ** 2)

        return jax.value_and_grad(penalty)(params)

    value, grad = penalty_grad(variables["params"])
    assert np.isfinite(float(value)) and float(value) > 0
    leaves = jax.tree_util.tree_leaves(grad)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    for block in ("block0", "block1", "block3"):  # the penalty reaches every layer
        assert np.abs(np.asarray(grad[block]["conv1"]["kernel"])).max() > 0


def test_bad_configs_raise_clear_errors():
    z, x = jnp.zeros((2, 128)), jnp.zeros((2, 32, 32, 3))
    with pytest.raises(ConfigError, match="resolution 48"):
        _abstract(ResNetGenerator(resolution=48), z)
    with pytest.raises(ConfigError, match="resolution 48"):
        _abstract(ResNetCritic(resolution=48), jnp.zeros((2, 48, 48, 3)))
    with pytest.raises(ConfigError, match=r"attention_resolution=4 .*\[8, 16, 32\]"):
        _abstract(ResNetGenerator(attention_resolution=4), z)
    with pytest.raises(ConfigError, match=r"attention_resolution=32 .*\[8, 16\]"):
        _abstract(ResNetCritic(attention_resolution=32), x)
    with pytest.raises(ConfigError, match="conditioning"):
        _abstract(ResNetCritic(conditioning="concat"), x)
    with pytest.raises(ConfigError, match="num_classes >= 1"):
        _abstract(ResNetCritic(conditioning="projection"), x, jnp.zeros((2,), jnp.int32))
    with pytest.raises(ValueError, match=r"\(B, 128\)"):
        _abstract(ResNetGenerator(), jnp.zeros((2, 100)))
    with pytest.raises(ValueError, match=r"\(B, 32, 32, 3\)"):
        _abstract(ResNetCritic(), jnp.zeros((2, 28, 28, 1)))

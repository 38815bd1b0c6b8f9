"""DiffAugment: shapes, gradients, and each op's semantics against the reference DiffAugment_pytorch.py.

Everything runs jitted with few distinct shapes: op-by-op dispatch would compile every primitive for every shape,
and compiling dominates these tests on a small CPU host.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment
from gan_jax.augment import POLICIES, diff_augment, parse_policy
from gan_jax.errors import ConfigError

KEY = jax.random.key(0)
FAST = {"xla_backend_optimization_level": 0}  # these programs are tiny: compile them quickly
SINGLE = tuple((p,) for p in POLICIES)
aug = jax.jit(diff_augment, static_argnames="policy", compiler_options=FAST)


def _images(batch: int = 8, height: int = 16, width: int = 16, channels: int = 3, seed: int = 1) -> jax.Array:
    """Uniform in [-1, 1] (numpy's generator: no program to compile per shape)."""
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.uniform(-1.0, 1.0, (batch, height, width, channels)).astype(np.float32))


@pytest.mark.parametrize(
    ("policy", "channels", "dtype"),
    [
        *[(p, 3, jnp.float32) for p in SINGLE],
        (POLICIES, 3, jnp.float32),
        (POLICIES, 1, jnp.float32),  # grey
        (("color",), 6, jnp.bfloat16),  # m*C channels (a packed critic's input) mixed by colour; half precision
    ],
)
def test_shape_and_dtype_kept(policy, channels, dtype):
    x = _images(channels=channels).astype(dtype)
    y = aug(x, KEY, policy=policy)
    assert y.shape == x.shape and y.dtype == dtype
    assert bool(jnp.all(jnp.isfinite(y.astype(jnp.float32))))
    assert not np.array_equal(np.asarray(y, np.float32), np.asarray(x, np.float32))


def test_empty_policy_is_identity():
    x = _images()
    assert diff_augment(x, KEY, ()) is x
    assert diff_augment(x, KEY, "") is x


def test_unknown_op_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"'flip'.*\['color', 'translation', 'cutout'\]"):
        diff_augment(_images(), KEY, ("color", "flip"))
    with pytest.raises(ConfigError, match="NHWC"):
        diff_augment(jnp.zeros((4, 2)), KEY, ("color",))


def test_policy_may_be_the_reference_comma_separated_string():
    assert parse_policy("color,translation, cutout") == POLICIES
    assert parse_policy(["cutout"]) == ("cutout",)
    assert parse_policy("") == ()


def test_same_key_same_output_different_key_different_output():
    x = _images()
    y = aug(x, KEY, policy=POLICIES)
    np.testing.assert_array_equal(y, aug(x, KEY, policy=POLICIES))
    assert not np.allclose(y, aug(x, jax.random.key(1), policy=POLICIES))


def test_ops_run_in_order_each_with_its_folded_key():
    """color = brightness, saturation, contrast; op i of the policy gets fold_in(key, i)."""

    @functools.partial(jax.jit, compiler_options=FAST)
    def by_hand(x):
        k_b, k_s, k_c = jax.random.split(jax.random.fold_in(KEY, 0), 3)
        x = augment._contrast(augment._saturation(augment._brightness(x, k_b), k_s), k_c)
        x = augment._translation(x, jax.random.fold_in(KEY, 1))
        return augment._cutout(x, jax.random.fold_in(KEY, 2))

    x = _images()
    np.testing.assert_allclose(aug(x, KEY, policy=POLICIES), by_hand(x), atol=1e-6)


def test_real_and_fake_in_one_batch_draw_their_own_parameters():
    """One call on concat(real, fake): an example's output depends only on itself, and equal halves differ."""
    real, fake, other = _images(4, seed=1), _images(4, seed=2), _images(4, seed=3)
    out = aug(jnp.concatenate([real, fake]), KEY, policy=POLICIES)
    out_other = aug(jnp.concatenate([real, other]), KEY, policy=POLICIES)
    np.testing.assert_allclose(out[:4], out_other[:4], atol=1e-6)
    same = aug(jnp.concatenate([real, real]), KEY, policy=POLICIES)
    for i in range(4):
        assert not np.allclose(same[i], same[4 + i])


# --- gradients -----------------------------------------------------------------------------------------------

FD_EPS = 1e-2
GRAD_POLICIES = (("translation",), POLICIES)


@functools.cache
def _gradient_checks() -> dict[tuple[str, ...], tuple[np.ndarray, float, float]]:
    """Per policy: grad of a nonlinear function of the output; for translation alone also its directional
    derivative and the central difference it should match."""
    x, direction, weights = _images(2, 8, 8), _images(2, 8, 8, seed=7), _images(2, 8, 8, seed=5)

    @functools.partial(jax.jit, compiler_options=FAST)
    def checks(x, direction):
        out = {}
        for policy in GRAD_POLICIES:

            def f(v, policy=policy):
                return jnp.sum(jnp.tanh(diff_augment(v, KEY, policy)) * weights)

            grad = jax.grad(f)(x)
            numeric = jnp.nan
            if policy == ("translation",):
                numeric = (f(x + FD_EPS * direction) - f(x - FD_EPS * direction)) / (2 * FD_EPS)
            out[policy] = (grad, numeric, jnp.vdot(grad, direction))
        return out

    return {p: tuple(np.asarray(v) for v in vals) for p, vals in checks(x, direction).items()}


@pytest.mark.parametrize("policy", GRAD_POLICIES)
def test_gradient_is_finite_and_nonzero(policy):
    grad, _, _ = _gradient_checks()[policy]
    assert grad.shape == (2, 8, 8, 3) and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_translation_gradient_matches_finite_differences():
    _, numeric, analytic = _gradient_checks()[("translation",)]
    np.testing.assert_allclose(analytic, numeric, rtol=1e-2, atol=1e-3)


# --- translation ---------------------------------------------------------------------------------------------


def _reference_translate(x: np.ndarray, shift_h: np.ndarray, shift_w: np.ndarray) -> np.ndarray:
    """The reference's gather, in NHWC: indices into a one-pixel zero border, clamped onto it."""
    batch, height, width, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.empty_like(x)
    for b in range(batch):
        rows = np.clip(np.arange(height) + shift_h[b] + 1, 0, height + 1)
        cols = np.clip(np.arange(width) + shift_w[b] + 1, 0, width + 1)
        out[b] = padded[b][rows[:, None], cols[None, :]]
    return out


def test_translate_matches_reference_gather():
    """Every shift within and beyond the image, one example each."""
    shifts = [(dh, dw) for dh in range(-7, 8) for dw in range(-6, 7)]
    sh, sw = (np.array(s) for s in zip(*shifts, strict=True))
    x = np.asarray(_images(len(shifts), 6, 5, 2))
    translate = jax.jit(augment._translate, compiler_options=FAST)
    np.testing.assert_array_equal(translate(jnp.asarray(x), sh, sw), _reference_translate(x, sh, sw))


TRANSLATION_SHAPE = (256, 16, 24, 2)  # shifts of up to 2 rows and 3 columns


def test_translation_moves_a_pixel_by_integer_offsets_up_to_an_eighth():
    batch, height, width, _ = TRANSLATION_SHAPE
    x = jnp.zeros(TRANSLATION_SHAPE).at[:, 8, 12, :].set(1.0)
    y = np.asarray(aug(x, KEY, policy=("translation",)))
    offsets = set()
    for b in range(batch):
        rows, cols, _ = np.nonzero(y[b])
        assert len(rows) == 2 and np.all(y[b, rows, cols] == 1.0)  # the pixel, whole, in both channels
        offsets.add((rows[0] - 8, cols[0] - 12))
    lim_h, lim_w = height // 8, width // 8
    assert offsets == {(i, j) for i in range(-lim_h, lim_h + 1) for j in range(-lim_w, lim_w + 1)}


def test_translation_zero_pads_what_comes_in():
    batch, height, width, channels = TRANSLATION_SHAPE
    values = 1.0 + jnp.arange(height * width, dtype=jnp.float32).reshape(1, height, width, 1)
    x = jnp.tile(values, (batch, 1, 1, channels))
    y = np.asarray(aug(x, KEY, policy=("translation",)))
    src = np.pad(np.asarray(values[0, :, :, 0]), 8)  # a zero frame wider than any shift
    for b in range(batch):
        v = y[b, :, :, 0]
        i, j = np.argwhere(v > 0)[0]
        sh, sw = divmod(int(v[i, j]) - 1, width)
        sh, sw = sh - i, sw - j  # the shift: out[i, j] = x[i + sh, j + sw]
        assert abs(sh) <= height // 8 and abs(sw) <= width // 8
        np.testing.assert_array_equal(v, src[8 + sh : 8 + sh + height, 8 + sw : 8 + sw + width])
        np.testing.assert_array_equal(y[b, :, :, 1], v)  # every channel moves together


# --- cutout --------------------------------------------------------------------------------------------------


def _reference_cutout_mask(height: int, width: int, offset_h: int, offset_w: int) -> np.ndarray:
    """The reference's mask: ones, with zeros scattered at the square's indices clamped into the image."""
    cut_h, cut_w = height // 2, width // 2
    rows = np.clip(np.arange(cut_h) + offset_h - cut_h // 2, 0, height - 1)
    cols = np.clip(np.arange(cut_w) + offset_w - cut_w // 2, 0, width - 1)
    mask = np.ones((height, width), np.float32)
    mask[rows[:, None], cols[None, :]] = 0
    return mask


@pytest.mark.parametrize(("height", "width"), [(8, 8), (7, 5), (6, 3), (2, 1), (1, 1)])
def test_cutout_matches_reference_mask_for_every_offset(height, width):
    """Every offset the reference can draw, [0, size - (cut % 2)] on each axis, clipped squares included."""
    cut_h, cut_w = height // 2, width // 2
    offsets = [(i, j) for i in range(height + 1 - cut_h % 2) for j in range(width + 1 - cut_w % 2)]
    oh, ow = (jnp.array(o) for o in zip(*offsets, strict=True))
    cutout_at = jax.jit(augment._cutout_at, compiler_options=FAST)
    y = np.asarray(cutout_at(jnp.ones((len(offsets), height, width, 2)), oh, ow))
    for b, (i, j) in enumerate(offsets):
        expected = _reference_cutout_mask(height, width, i, j)
        np.testing.assert_array_equal(y[b], np.stack([expected, expected], axis=-1))


def test_cutout_offsets_cover_the_reference_range():
    offsets = jax.jit(augment._cutout_offsets, static_argnums=(1, 2, 3), compiler_options=FAST)
    oh, ow = offsets(KEY, 2000, 8, 7)  # cut 4 (even): [0, 8]; cut 3 (odd): [0, 6]
    assert set(np.asarray(oh).tolist()) == set(range(9))
    assert set(np.asarray(ow).tolist()) == set(range(7))


def test_cutout_zeroes_one_half_size_square_per_example():
    """On ones: (H/2)*(W/2) zeros where the square fits, fewer where it is clipped at the border."""
    height = width = 16
    cut = height // 2
    y = np.asarray(aug(jnp.ones((512, height, width, 2)), KEY, policy=("cutout",)))
    assert set(np.unique(y).tolist()) <= {0.0, 1.0}
    full = clipped = 0
    for b in range(y.shape[0]):
        zero = y[b, :, :, 0] == 0
        np.testing.assert_array_equal(y[b, :, :, 1] == 0, zero)  # all channels alike
        rows, cols = np.nonzero(zero.any(axis=1))[0], np.nonzero(zero.any(axis=0))[0]
        # one rectangle: contiguous rows x contiguous columns
        assert zero.sum() == len(rows) * len(cols) and np.all(zero[np.ix_(rows, cols)])
        assert rows[-1] - rows[0] + 1 == len(rows) and cols[-1] - cols[0] + 1 == len(cols)
        for idx, size in ((rows, height), (cols, width)):
            touches_border = idx[0] == 0 or idx[-1] == size - 1
            assert len(idx) == cut or (len(idx) < cut and touches_border and len(idx) >= cut - cut // 2)
        if zero.sum() == cut * cut:
            full += 1
        else:
            assert zero.sum() < cut * cut
            clipped += 1
    assert full > 0 and clipped > 0


# --- colour --------------------------------------------------------------------------------------------------


@functools.cache
def _colour_ops() -> tuple[np.ndarray, ...]:
    """x (512 examples), then brightness, saturation and contrast of it alone, and saturation of a grey image."""

    @functools.partial(jax.jit, compiler_options=FAST)
    def ops(x, grey):
        return (
            x,
            augment._brightness(x, KEY),
            augment._saturation(x, KEY),
            augment._contrast(x, KEY),
            grey,
            (augment._saturation(grey, KEY)),
        )

    return tuple(np.asarray(a, np.float64) for a in ops(_images(512, 4, 4), _images(8, 4, 4, channels=1)))


def _per_example_factor(centered_in: np.ndarray, centered_out: np.ndarray) -> np.ndarray:
    """The least-squares scale per example of centered_out against centered_in."""
    return np.sum(centered_in * centered_out, axis=(1, 2, 3)) / np.sum(np.square(centered_in), axis=(1, 2, 3))


def test_brightness_adds_one_uniform_offset_per_example():
    x, bright, *_ = _colour_ops()
    delta = bright - x
    per_example = delta[:, 0, 0, 0]
    np.testing.assert_allclose(delta, np.broadcast_to(per_example[:, None, None, None], delta.shape), atol=1e-6)
    assert per_example.min() >= -0.5 and per_example.max() <= 0.5
    assert per_example.min() < -0.45 and per_example.max() > 0.45


def test_saturation_scales_around_the_channel_mean():
    x, _, saturated, _, grey, grey_saturated = _colour_ops()
    mean = np.mean(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.mean(saturated, axis=-1, keepdims=True), mean, atol=1e-5)
    factor = _per_example_factor(x - mean, saturated - mean)
    np.testing.assert_allclose(saturated - mean, (x - mean) * factor[:, None, None, None], atol=1e-5)
    assert factor.min() >= 0.0 and factor.max() <= 2.0 and factor.min() < 0.1 and factor.max() > 1.9
    np.testing.assert_allclose(grey_saturated, grey, atol=1e-6)  # one channel: a no-op


def test_contrast_scales_around_the_image_mean():
    x, _, _, contrasted, *_ = _colour_ops()
    mean = np.mean(x, axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(np.mean(contrasted, axis=(1, 2, 3), keepdims=True), mean, atol=1e-5)
    factor = _per_example_factor(x - mean, contrasted - mean)
    np.testing.assert_allclose(contrasted - mean, (x - mean) * factor[:, None, None, None], atol=1e-5)
    assert factor.min() >= 0.5 and factor.max() <= 1.5 and factor.min() < 0.6 and factor.max() > 1.4

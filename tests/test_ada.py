"""ADA's augmentation (gan_jax/ada.py): exactness of the blit ops and of p = 0, each colour op's algebra, the
per-example probabilities, determinism, gradients, the traced p, and the p heuristic.

The parity with NVlabs/stylegan2-ada-pytorch's AugmentPipe (resampling to ~1e-5, distributions of the drawn
matrices) was checked against the reference itself when porting; these tests need no torch. Everything runs
jitted with few shapes: compiling dominates on a small CPU host.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import ada
from gan_jax.ada import PRESETS, AdaSpec, adjust_p, augment, spec_from_name
from gan_jax.errors import ConfigError

KEY = jax.random.key(0)
FAST = {"xla_backend_optimization_level": 0}  # tiny programs: compile them quickly
aug = jax.jit(augment, static_argnames="spec", compiler_options=FAST)
REFERENCE_NAMES = ("blit", "geom", "color", "filter", "noise", "cutout", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc")


def _images(batch: int = 8, size: int = 16, channels: int = 3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (batch, size, size, channels)).astype(np.float32)


def _smooth(batch: int = 8, size: int = 16, seed: int = 2) -> np.ndarray:
    """Low-pass noise in [-1, 1]: the resampling's filter asymmetry is small on such images."""
    spectrum = np.fft.fft2(_images(batch, size, 3, seed), axes=(1, 2))
    freq = np.fft.fftfreq(size)
    spectrum *= np.exp(-(freq[:, None] ** 2 + freq[None, :] ** 2) / (2 * 0.08**2))[None, :, :, None]
    x = np.real(np.fft.ifft2(spectrum, axes=(1, 2)))
    return (x / np.abs(x).max()).astype(np.float32)


def _run(spec: AdaSpec, x: np.ndarray, p: float = 1.0, key: jax.Array = KEY) -> np.ndarray:
    return np.asarray(aug(jnp.asarray(x), key, jnp.float32(p), spec=spec))


def test_presets_and_names() -> None:
    assert tuple(PRESETS) == REFERENCE_NAMES
    assert PRESETS["bgc"] == AdaSpec(**{k: 1 for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso")},
                                     xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)  # fmt: skip
    assert (AdaSpec().xint_max, AdaSpec().contrast_std, AdaSpec().saturation_std) == (0.125, 0.5, 1.0)
    assert spec_from_name("blit", xint_max=0.25) == dataclasses.replace(PRESETS["blit"], xint_max=0.25)
    with pytest.raises(ConfigError, match="bgcfnc"):
        spec_from_name("bgcx")
    with pytest.raises(ConfigError, match="unknown ADA option"):
        spec_from_name("bgc", xflp=1)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_p_zero_returns_the_input_bit_for_bit(name: str) -> None:
    x = _images()
    x[0, 0, 0, 0], x[1, 2, 3, 1] = -0.0, 1.0  # a negative zero survives only untouched
    out = _run(PRESETS[name], x, p=0.0)
    assert out.dtype == x.dtype and out.shape == x.shape
    np.testing.assert_array_equal(out.view(np.uint32), x.view(np.uint32))


def test_xflip_flips_exactly() -> None:
    x = _images(16)
    out = _run(AdaSpec(xflip=1), x)
    flipped = [bool(np.array_equal(o, xi[:, ::-1])) for o, xi in zip(out, x, strict=True)]
    kept = [bool(np.array_equal(o, xi)) for o, xi in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 0 < sum(flipped) < len(x)  # flipped with probability 1/2 when applied, as the reference


def test_rotate90_rotates_exactly() -> None:
    x = _images(32)
    out = _run(AdaSpec(rotate90=1), x)
    turns = []
    for o, xi in zip(out, x, strict=True):
        matches = [k for k in range(4) if np.array_equal(o, np.rot90(xi, k, axes=(0, 1)))]
        assert len(matches) == 1
        turns += matches
    assert set(turns) == {0, 1, 2, 3}


def _find_shift(out: np.ndarray, x: np.ndarray, max_shift: int, atol: float) -> tuple[int, int]:
    """The (dx, dy) with out[i, j] = x[i + dy, j + dx] wherever that is inside the image."""
    n = x.shape[0]
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            rows, cols = slice(max(0, -dy), n - max(0, dy)), slice(max(0, -dx), n - max(0, dx))
            src = x[max(0, dy) : n + min(0, dy), max(0, dx) : n + min(0, dx)]
            if np.allclose(out[rows, cols], src, rtol=0, atol=atol):
                return dx, dy
    raise AssertionError("no integer shift within xint_max matches")


def test_integer_translation_is_an_exact_integer_shift() -> None:
    x = _images(12)
    spec = AdaSpec(xint=1)
    max_shift = round(spec.xint_max * 16)
    exact = _run(spec, x)
    shifts = [_find_shift(o, xi, max_shift, atol=0.0) for o, xi in zip(exact, x, strict=True)]
    assert any(s != (0, 0) for s in shifts)
    # The reference's path (reflect pad, up 2x, sample, down 2x) moves by the same whole pixels, exactly up to
    # rounding (the sym6 filter is orthogonal), border included (both reflect).
    resampled = _run(dataclasses.replace(spec, exact_blit=False), x)
    np.testing.assert_allclose(resampled, exact, rtol=0, atol=2e-5)


def test_blit_gather_agrees_with_the_resampling() -> None:
    """Same orientation and origin: the reference's resampling of a flip / rotation differs from the exact pixel
    move only by its filter's asymmetry, which is small on smooth images."""

    @functools.partial(jax.jit, compiler_options=FAST)
    def both(x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mats = ada._blit_matrix(ada._draws(jax.random.key(3), 8), jnp.float32(1.0), PRESETS["blit"], 16)
        return ada._blit(x, mats), ada._resample(x, mats, 15)

    blit, resampled = (np.asarray(v) for v in both(jnp.asarray(_smooth(8))))
    assert np.sqrt(np.mean((blit - resampled) ** 2)) < 0.02
    assert np.abs(blit - resampled).max() < 0.1


def test_exact_blit_only_changes_the_blit_only_examples() -> None:
    """With a general op drawn, an example takes the reference's resampling whatever `exact_blit` says."""
    x, spec, p = _smooth(8), PRESETS["bg"], 0.3
    general = ada._general_matrix(ada._draws(KEY, 8), jnp.float32(p), spec, 16)
    resampled = ~np.asarray(ada._is_identity(general))
    assert 0 < resampled.sum() < len(x)
    exact, reference = _run(spec, x, p), _run(dataclasses.replace(spec, exact_blit=False), x, p)
    np.testing.assert_array_equal(exact[resampled], reference[resampled])
    np.testing.assert_allclose(exact[~resampled], reference[~resampled], atol=0.1)


def test_general_geometry_changes_every_example_and_keeps_range() -> None:
    x = _smooth(8)
    out = _run(PRESETS["geom"], x)
    assert np.all(np.abs(out - x).max(axis=(1, 2, 3)) > 1e-3)
    assert np.abs(out).max() < 1.5  # reflect padding: no zero borders or blow-ups


def test_brightness_adds_a_constant_per_example() -> None:
    x = _images()
    delta = _run(AdaSpec(brightness=1), x) - x
    offsets = delta[:, :1, :1, :1]
    np.testing.assert_allclose(delta, np.broadcast_to(offsets, delta.shape), atol=1e-6)
    assert len(np.unique(np.round(offsets, 6))) == len(x)


def test_contrast_scales_about_zero() -> None:
    x = _images()
    ratio = _run(AdaSpec(contrast=1), x) / x
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1, :1, :1], ratio.shape), rtol=1e-5)
    assert np.all(ratio > 0)


def test_hue_and_saturation_keep_luma() -> None:
    x = _images()
    out = _run(AdaSpec(hue=1, saturation=1), x)
    np.testing.assert_allclose(out.mean(-1), x.mean(-1), atol=1e-5)
    assert np.all(np.abs(out - x).max(axis=(1, 2, 3)) > 1e-3)


def test_grey_images_as_the_reference() -> None:
    """One channel: hue and saturation are skipped, the luma flip negates, the rest acts on grey RGB."""
    x = _images(16, channels=1)
    untouched = _run(AdaSpec(hue=1, saturation=1), x)
    np.testing.assert_array_equal(untouched, x)
    flipped = _run(AdaSpec(lumaflip=1), x)
    negated = [bool(np.allclose(o, -xi, atol=1e-6)) for o, xi in zip(flipped, x, strict=True)]
    assert all(n or np.array_equal(o, xi) for n, o, xi in zip(negated, flipped, x, strict=True))
    assert 0 < sum(negated) < len(x)
    assert _run(PRESETS["bgc"], x).shape == x.shape


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (AdaSpec(brightness=1), 0.5),
        (AdaSpec(xflip=1), 0.25),  # applied with p, then flipped with probability 1/2
        (AdaSpec(rotate=1), 0.5),  # pre or post rotation: P(either) = p, as the reference's p_rot
    ],
)
def test_fraction_of_changed_examples(spec: AdaSpec, expected: float) -> None:
    n = 2000
    x = _images(n, size=8, channels=1, seed=4)
    changed = np.any(_run(spec, x, p=0.5, key=jax.random.key(11)) != x, axis=(1, 2, 3))
    assert abs(changed.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)


def test_image_space_ops() -> None:
    x = _images(8, size=16)
    cut = _run(AdaSpec(cutout=1), x)
    zeros = (cut == 0).all(-1).sum(axis=(1, 2))
    assert np.all((zeros > 0) & (zeros <= 64)) and np.all((cut == 0) | (cut == x))
    noisy = _run(AdaSpec(noise=1), x)
    assert 0 < np.abs(noisy - x).std() < 0.5
    filtered = _run(AdaSpec(imgfilter=1), x)  # 43 taps on 16 pixels: the padding reflects repeatedly
    assert np.all(np.isfinite(filtered)) and np.all(np.abs(filtered - x).max(axis=(1, 2, 3)) > 1e-3)


def test_same_key_same_output_other_key_differs() -> None:
    x = _images()
    spec = PRESETS["bgc"]
    first, again = _run(spec, x), _run(spec, x)
    np.testing.assert_array_equal(first, again)
    assert np.all(np.abs(_run(spec, x, key=jax.random.key(1)) - first).max(axis=(1, 2, 3)) > 0)


def test_gradients_flow_to_the_images() -> None:
    x = jnp.asarray(_images(4))
    weights = jnp.asarray(_images(4, seed=9))
    spec = PRESETS["bgcfnc"]

    def critic(images: jax.Array, a: jax.Array) -> jax.Array:
        return jnp.sum(a * weights * augment(images, KEY, jnp.float32(0.8), spec))

    def r1(a: jax.Array) -> tuple[jax.Array, jax.Array]:  # StyleGAN2's R1 differentiates the image gradient
        grads = jax.grad(critic)(x, a)
        return jnp.sum(jnp.square(grads)), grads

    (_, grads), second = jax.jit(jax.value_and_grad(r1, has_aux=True), compiler_options=FAST)(1.0)
    assert np.all(np.isfinite(grads)) and np.all(np.abs(grads).sum(axis=(1, 2, 3)) > 0)
    assert np.isfinite(second) and second > 0


def test_traced_p_compiles_once() -> None:
    traces = []
    spec = PRESETS["bgc"]

    @functools.partial(jax.jit, compiler_options=FAST)
    def run(images: jax.Array, p: jax.Array) -> jax.Array:
        traces.append(1)
        return augment(images, KEY, p, spec)

    x = jnp.asarray(_images(4))
    low, high = run(x, jnp.float32(0.0)), run(x, jnp.float32(1.0))
    assert len(traces) == 1
    np.testing.assert_array_equal(np.asarray(low), np.asarray(x))
    assert np.abs(np.asarray(high) - np.asarray(x)).max() > 0


def test_rejects_images_it_cannot_augment() -> None:
    with pytest.raises(ConfigError, match="square"):
        augment(jnp.zeros((2, 16, 8, 3)), KEY, 0.5, PRESETS["blit"])
    with pytest.raises(ConfigError, match="channels"):
        augment(jnp.zeros((2, 16, 16, 4)), KEY, 0.5, PRESETS["color"])


def test_adjust_p_follows_the_reference_heuristic() -> None:
    step = 64 * 4 / (500 * 1000)
    np.testing.assert_allclose(adjust_p(0.3, 0.7, 64, 4), 0.3 + step, rtol=1e-6)  # overfitting: more
    np.testing.assert_allclose(adjust_p(0.3, 0.5, 64, 4), 0.3 - step, rtol=1e-6)
    np.testing.assert_allclose(adjust_p(0.3, 0.6, 64, 4), 0.3, rtol=1e-6)  # sign(0) = 0
    np.testing.assert_allclose(adjust_p(0.3, 0.9, 32, 4, target=0.8, speed_kimg=100), 0.3 + 32 * 4 / 1e5, rtol=1e-6)
    assert float(adjust_p(0.0001, -1.0, 64, 4)) == 0.0  # clipped at 0; no upper clip, as the reference
    assert float(adjust_p(1.0, 1.0, 64, 4)) > 1.0
    jitted = jax.jit(adjust_p, static_argnums=(2, 3))
    assert jitted(jnp.float32(0.2), jnp.float32(0.9), 64, 4).dtype == jnp.float32

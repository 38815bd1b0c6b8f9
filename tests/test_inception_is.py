"""The Inception Score network against torch-fidelity (PyPI `torch-fidelity==0.4.0`, its model code is in the wheel).

No wheel ships the real `pt_inception-2015-12-05-6726825d.pth`, so CI proves the architecture and the conversion
with random weights: torch-fidelity's own `FeatureExtractorInceptionV3` is built with random weights (BatchNorm
statistics calibrated so every layer stays O(1), scales and fc far from their defaults), saved as a state dict in
the distributed format, converted by our script, and both networks see the same uint8 images. Our IS is then checked
against torch-fidelity's `isc_features_to_metric` on the same logits.

torch-fidelity is installed with `--no-deps` (.ci/run): its wheel requires torchvision, which on PyPI would replace
the pinned CPU torch, and only its other extractors use it. Its package `__init__` imports those, so the two modules
we need are loaded from the installed files without running the `__init__` (nothing in them is replaced).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics import inception_is
from gan_jax.metrics.evaluator import ImageEvaluator, check_metrics
from gan_jax.metrics.inception_score import inception_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import convert_inception

INSTALL = "pip install torch==2.13.0 && pip install --no-deps torch-fidelity==0.4.0"


def _torch_fidelity():
    """(torch, torch-fidelity's inceptionv3 module, its metric_isc source path), or skip / fail as CI requires."""
    spec = importlib.util.find_spec("torch_fidelity")
    missing = [m for m in ("torch",) if importlib.util.find_spec(m) is None] + ([] if spec else ["torch_fidelity"])
    if missing:
        msg = f"{', '.join(missing)} not installed; run: {INSTALL}"
        if os.environ.get("GAN_JAX_REQUIRE_TORCH") == "1":
            pytest.fail(f"GAN_JAX_REQUIRE_TORCH=1 but {msg}")
        pytest.skip(msg)
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    location = next(iter(spec.submodule_search_locations))
    if "torch_fidelity" not in sys.modules:  # a bare package object: its submodules import as usual
        package = types.ModuleType("torch_fidelity")
        package.__path__ = [location]
        package.__spec__ = spec
        sys.modules["torch_fidelity"] = package
    module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
    return torch, module, os.path.join(location, "metric_isc.py")


def _isc_features_to_metric(source_path: str):
    """torch-fidelity's IS function, compiled from its installed source (its module imports torchvision-only code)."""
    import torch

    tree = ast.parse(Path(source_path).read_text())
    keep = [n for n in tree.body if isinstance(n, ast.Assign) or getattr(n, "name", "") == "isc_features_to_metric"]
    namespace = {"np": np, "torch": torch}
    exec(compile(ast.Module(body=keep, type_ignores=[]), source_path, "exec"), namespace)
    return namespace["isc_features_to_metric"]


def _random_torch_fidelity_net(torch, tfi, tmp_path):
    """torch-fidelity's InceptionV3 with random weights, loaded back strictly from the state-dict file we write."""

    class Unloaded(tfi.FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):  # the constructor's weight load: skipped for the random net
            return None

    torch.manual_seed(0)
    dummy = tmp_path / "empty.pth"
    torch.save({}, dummy)
    net = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(dummy))
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        # Scale and shift away from 1 / 0, statistics from a calibration batch (cumulative average of one batch).
        # gamma < 1 with a positive shift keeps the random net well conditioned: with gamma in [0.5, 1.5] and a
        # centred shift, torch's own float32 pool3 was 3.3e-4 away from its float64 one (random BN nets amplify
        # rounding with depth), so a 1e-4 comparison would have measured chaos, not the port.
        for bn in bns:
            bn.weight.uniform_(0.2, 0.5)
            bn.bias.uniform_(0.3, 0.8)
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        net(torch.from_numpy(_images(4, seed=100)).permute(0, 3, 1, 2))
        net.fc.weight.normal_(0.0, 0.2)  # peaked softmax: an IS well above 1
        net.fc.bias.normal_(0.0, 1.0)
    path = tmp_path / "random-inception-2015-12-05-layout.pth"
    torch.save(net.state_dict(), path)
    reference = tfi.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048", "logits_unbiased", "logits"], feature_extractor_weights_path=str(path)
    )
    return reference, path


@pytest.fixture(scope="module")
def random_is_net(tmp_path_factory):
    """(torch-fidelity's net, our converted extractor, the weights cache) for the same random state dict."""
    torch, tfi, _ = _torch_fidelity()
    tmp = tmp_path_factory.mktemp("is_inception")
    reference, path = _random_torch_fidelity_net(torch, tfi, tmp)
    cache = tmp / "cache"
    assert convert_inception.main(["--is-source", str(path), "--cache-dir", str(cache), "--unpinned"]) == 0
    return reference, inception_is.load_is_inception(cache), cache


def _colour_fields(n: int, seed: int, size: int = 32, channels: int = 3) -> np.ndarray:
    """Smooth random colour fields (2x2 upsampled): images far apart for the net, unlike i.i.d. noise."""
    from gan_jax.metrics.features import resize_tf1_bilinear

    x = np.random.default_rng(seed).integers(0, 256, (n, 2, 2, channels)).astype(np.float32)
    return np.rint(np.asarray(resize_tf1_bilinear(x, (size, size)))).astype(np.uint8)


def _images(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Random 32x32 RGB uint8 images; `size=299`: the same kind, already upsampled (TF1 bilinear) and rounded."""
    x = np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    if size == 32:
        return x
    from gan_jax.metrics.features import resize_tf1_bilinear

    return np.rint(np.asarray(resize_tf1_bilinear(x.astype(np.float32), (size, size)))).astype(np.uint8)


@pytest.mark.parametrize("size", [32, 299], ids=["32rgb-resized", "299-native"])
def test_logits_and_pool3_match_torch_fidelity(random_is_net, size):
    import torch

    reference, ours, _ = random_is_net
    x = _images(3 if size == 32 else 2, seed=size, size=size)
    shape = x.shape
    with torch.no_grad():
        ref_pool3, ref_unbiased, ref_logits = (t.numpy() for t in reference(torch.from_numpy(x).permute(0, 3, 1, 2)))
    pool3, logits = ours.extract(x)
    assert pool3.shape == (shape[0], 2048) and logits.shape == (shape[0], 1008)
    assert np.abs(ref_unbiased).max() > 1 and ref_pool3.std() > 0.1  # O(1) activations: the comparison is not vacuous
    np.testing.assert_allclose(pool3, ref_pool3, rtol=0, atol=1e-4)
    np.testing.assert_allclose(logits, ref_unbiased, rtol=0, atol=1e-4)
    fc_bias = reference.fc.bias.detach().numpy()
    np.testing.assert_allclose(logits + fc_bias, ref_logits, rtol=0, atol=1e-4)


def test_inception_score_matches_torch_fidelity(random_is_net):
    """Same logits, same splits: our IS equals torch-fidelity's (its shuffle off: ours keeps the given order)."""
    import torch

    _, _, isc_path = _torch_fidelity()
    isc = _isc_features_to_metric(isc_path)
    _, ours, _ = random_is_net
    logits = ours.extract(_colour_fields(20, seed=7))[1]
    for n, splits in ((20, 10), (20, 3), (17, 4)):
        ref = isc(torch.from_numpy(logits[:n]), splits=splits, shuffle=False)
        mean, std = inception_score(logits[:n], splits=splits)
        assert mean == pytest.approx(ref["inception_score_mean"], rel=1e-9)
        assert std == pytest.approx(ref["inception_score_std"], rel=1e-7, abs=1e-12)
    assert mean > 1.2  # distinct images through a random net: distinguishable predictions, not the trivial IS of 1


def test_sidecar_records_the_unpinned_source(random_is_net):
    _, ours, cache = random_is_net
    record = json.loads((cache / "inception_is_2015.json").read_text())
    assert record["source_pinned"] is False and record["source_sha256"] != inception_is.SOURCE_SHA256
    assert ours.protocol["source_pinned"] is False and ours.protocol["feature_extractor"] == inception_is.EXTRACTOR
    assert ours.protocol["weights_sha256"] == record["sha256"]


def test_evaluator_scores_is_with_its_protocol(random_is_net):
    from gan_jax.data.images import load_digits

    _, _, cache = random_is_net
    evaluator = ImageEvaluator("digits", "all", load_digits(8), ["is"], cache_dir=str(cache))
    values, protocol = evaluator(_colour_fields(20, seed=3, size=8, channels=1))
    assert values["inception_score"] > 1 and values["inception_score_std"] >= 0
    record = protocol["inception_score"]
    assert record["splits"] == 10 and record["n_fake"] == 20 and record["source_pinned"] is False


def test_convert_refuses_an_unpinned_file_by_default(tmp_path):
    _torch_fidelity()
    wrong = tmp_path / inception_is.SOURCE_NAME
    wrong.write_bytes(b"not the Inception")
    with pytest.raises(DataError, match=r"sha256 .* not 6726825d") as err:
        inception_is.convert_state_dict(wrong, tmp_path / "cache")
    assert inception_is.SOURCE_URLS[0] in str(err.value)
    assert not (tmp_path / "cache" / inception_is.WEIGHTS_NAME).exists()


def test_is_without_weights_names_file_checksum_and_source(tmp_path):
    with pytest.raises(ConfigError) as err:
        check_metrics(["is"], "mnist", str(tmp_path))
    msg = str(err.value)
    assert inception_is.SOURCE_NAME in msg and inception_is.SOURCE_SHA256 in msg
    assert inception_is.SOURCE_URLS[0] in msg and "--is-source" in msg and str(tmp_path) in msg
    with pytest.raises(DataError, match=r"pt_inception-2015-12-05-6726825d\.pth"):
        inception_is.load_is_inception(tmp_path)


def test_state_dict_with_missing_fc_is_refused():
    with pytest.raises(DataError, match=r"fc\.weight"):
        inception_is.state_dict_to_flax({})
    with pytest.raises(DataError, match="unexpected keys"):
        inception_is.state_dict_to_flax({"AuxLogits.conv0.conv.weight": np.zeros((1,))})


def test_inception_score_script(random_is_net, capsys, tmp_path):
    import inception_score as script

    _, _, cache = random_is_net
    assert script.main(["--dataset", "digits", "--count", "20", "--cache-dir", str(cache)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["images"] == "digits/all[:20]" and record["n"] == 20 and record["inception_score"] > 1
    assert record["protocol"]["source_pinned"] is False
    assert script.main(["--dataset", "digits", "--cache-dir", str(tmp_path / "none")]) == 2
    assert inception_is.SOURCE_SHA256 in capsys.readouterr().err

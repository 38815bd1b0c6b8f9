"""Reference StyleGAN2 `state_dict()`s <-> the Flax variables of `gan_jax.models.stylegan2`.

The Flax tree mirrors the reference's module tree (`stylegan2.py`), so conversion is per key: the dotted path
becomes the nested dict path and only the layout changes: conv weights OIHW -> HWIO, FC weights [out, in] ->
[in, out], the synthesis `const` [C, H, W] -> [H, W, C]. Buffers `w_avg` and `noise_const` go to "stats";
the reference's `resample_filter` buffers are derived from the network's config, so they are checked against
the filter given here and dropped. Works for the reference's networks and for any mirror that uses its exact
state_dict names (scripts/torch_stylegan2.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_STATS = ("w_avg", "noise_const")
_AS_IS = ("bias", "noise_strength")


def reference_filter(resample_filter: Sequence[float] = (1, 3, 3, 1)) -> np.ndarray:
    """The reference's `upfirdn2d.setup_filter(f)`: normalized, 2-D outer product below 8 taps."""
    f = np.asarray(resample_filter, np.float32)
    if f.ndim == 1 and f.size < 8:
        f = np.outer(f, f)
    return f / f.sum()


def _check_filter(key: str, value: np.ndarray, expected: np.ndarray, block_level: bool) -> None:
    """Every block's buffer holds the network's filter; the reference's layers that never resample (e.g. G's
    conv1, torgb, D's conv0) are built with the default [1, 3, 3, 1] whatever the network's filter is."""
    allowed = [expected] if block_level else [expected, reference_filter()]
    if not any(value.shape == f.shape and np.allclose(value, f, atol=1e-7) for f in allowed):
        raise ValueError(f"{key} is {value.tolist()}, not the filter of the given resample_filter; pass the network's")


def _to_flax(key: str, leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == "weight" and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if leaf == "weight" and value.ndim == 2:
        return value.T  # [out, in] -> [in, out]
    if leaf == "const" and value.ndim == 3:
        return value.transpose(1, 2, 0)  # CHW -> HWC
    if leaf in _AS_IS or leaf in _STATS:
        return value
    raise ValueError(f"state_dict key {key!r} (shape {value.shape}) is not a StyleGAN2 parameter or buffer")


def _to_torch(key: str, leaf: str, value: np.ndarray) -> np.ndarray:
    if leaf == "weight" and value.ndim == 4:
        return value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
    if leaf == "weight" and value.ndim == 2:
        return value.T
    if leaf == "const" and value.ndim == 3:
        return value.transpose(2, 0, 1)
    if leaf in _AS_IS or leaf in _STATS:
        return value
    raise ValueError(f"variable {key!r} (shape {value.shape}) is not a StyleGAN2 parameter or buffer")


def variables_from_torch(
    state_dict: Mapping[str, Any], resample_filter: Sequence[float] = (1, 3, 3, 1)
) -> dict[str, dict[str, Any]]:
    """A reference G/D `state_dict()` (values as numpy arrays or CPU tensors) -> {"params", "stats"} for Flax.

    Raises ValueError on an unknown key or on a block's `resample_filter` buffer that is not the one
    `resample_filter` gives (the Flax network, built with that filter, would filter differently).
    """
    expected = reference_filter(resample_filter)
    variables: dict[str, dict[str, Any]] = {"params": {}, "stats": {}}
    for key, value in state_dict.items():
        value = np.asarray(value, np.float32)
        *path, leaf = key.split(".")
        if leaf == "resample_filter":
            _check_filter(key, value, expected, block_level=bool(path and re.fullmatch(r"b\d+", path[-1])))
            continue
        node = variables["stats" if leaf in _STATS else "params"]
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = np.array(_to_flax(key, leaf, value), order="C")  # (ascontiguousarray makes 0-d 1-d)
    if not variables["stats"]:
        del variables["stats"]  # D has no buffers besides its filters
    return variables


def state_dict_from_variables(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The inverse: Flax {"params", "stats"} -> reference state_dict entries (without `resample_filter`
    buffers, which the reference rebuilds itself: load with `strict=False`)."""
    out: dict[str, np.ndarray] = {}

    def walk(node: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for name, child in node.items():
            if isinstance(child, Mapping):
                walk(child, (*prefix, name))
            else:
                key = ".".join((*prefix, name))
                out[key] = np.array(_to_torch(key, name, np.asarray(child, np.float32)), order="C")

    for collection in ("params", "stats"):
        walk(variables.get(collection, {}), ())
    return out

"""Cache of real-data feature statistics, keyed by a hash of everything that produced them.

Real-data statistics cost a pass of the extractor over the whole dataset but never change for a given dataset,
split, sample count, extractor (network and weights) and preprocessing, so they are computed once and stored as
`<cache_dir>/fid_stats/<key>.npz`, with key = sha256 of the canonical JSON of that spec (as StyleGAN2-ADA caches
by a hash of its options). Any change to the spec, e.g. new extractor weights or another resize, gives a new key,
so a stale file can never be picked up. The spec is stored inside the file and checked on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_jax.cache import default_cache_dir
from gan_jax.errors import ConfigError, DataError
from gan_jax.metrics.fid import feature_stats

SPEC_KEYS = ("dataset", "split", "count", "extractor", "preprocessing")


@dataclass(frozen=True, eq=False)
class ReferenceStats:
    """Mean and covariance of real features (float64), with the spec and file they belong to.

    `features` (float32) is kept only when asked for, for the metrics that need the samples (KID, PRDC)."""

    mu: np.ndarray
    sigma: np.ndarray
    spec: dict[str, Any]
    key: str
    path: Path
    features: np.ndarray | None = None


def make_spec(
    dataset: str,
    split: str,
    count: int,
    extractor: str,
    weights_sha256: str,
    preprocessing: dict[str, Any] | str,
) -> dict[str, Any]:
    """The spec in its canonical shape: the extractor is identified by name and a checksum of its weights."""
    return {
        "dataset": dataset,
        "split": split,
        "count": int(count),
        "extractor": {"name": extractor, "weights_sha256": weights_sha256},
        "preprocessing": preprocessing,
    }


def stats_key(spec: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no whitespace) of a spec; raises if a required key is missing."""
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ConfigError(
            f"reference-statistics spec lacks {', '.join(missing)}: it needs {', '.join(SPEC_KEYS)} "
            "(build it with gan_jax.metrics.reference_stats.make_spec)."
        )
    return hashlib.sha256(_canonical(spec).encode()).hexdigest()


def stats_path(spec: dict[str, Any], cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the statistics of this spec are (or would be) cached."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "fid_stats" / f"{stats_key(spec)}.npz"


def load_or_compute(
    spec: dict[str, Any],
    compute_fn: Callable[[], np.ndarray],
    cache_dir: str | os.PathLike | None = None,
    keep_features: bool = False,
) -> ReferenceStats:
    """Cached statistics of this spec, or `compute_fn()` -> (N, D) real features, summarised and stored.

    With keep_features the features are stored too (float32) and a cached file without them is recomputed.
    """
    path = stats_path(spec, cache_dir)
    key = path.stem
    if path.is_file():
        cached = _load(path, spec)
        if cached is not None and (cached.features is not None or not keep_features):
            return cached
    feats = np.asarray(compute_fn())
    if feats.ndim != 2 or feats.shape[0] != spec["count"]:
        raise DataError(
            f"the feature function returned shape {feats.shape}, but the spec says count={spec['count']} "
            "samples as rows: make compute_fn return (count, D) features of exactly the described data."
        )
    mu, sigma = feature_stats(feats)
    stored = feats.astype(np.float32) if keep_features else None
    arrays = {"mu": mu, "sigma": sigma, "spec": np.array(_canonical(spec))}
    if stored is not None:
        arrays["features"] = stored
    _atomic_savez(path, arrays)
    return ReferenceStats(mu=mu, sigma=sigma, spec=spec, key=key, path=path, features=stored)


def _load(path: Path, spec: dict[str, Any]) -> ReferenceStats | None:
    """The cached entry, or None when it is unreadable or was written for another spec (then it is redone)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["spec"]) != _canonical(spec):
                return None
            features = data["features"] if "features" in data.files else None
            return ReferenceStats(data["mu"], data["sigma"], spec, path.stem, path, features)
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _canonical(spec: dict[str, Any]) -> str:
    try:
        return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"reference-statistics spec must be plain JSON (str, int, float, list, dict): {exc}") from exc


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file beside the target and rename, so a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as exc:
        raise ConfigError(
            f"cannot write reference statistics under {path.parent} ({exc}); set GAN_JAX_CACHE to a writable folder."
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is meant to be shared like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

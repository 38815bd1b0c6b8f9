"""Tables (DataFrame) <-> model space for CTGAN-style GANs: the fitted, invertible per-column transform.

It holds the fitted state and the maths of the representation; reading files and deciding column kinds live in
`table_io`, and drawing conditional vectors on device lives in `table_sampler`, which needs only `Span` from here.

The representation follows CTGAN (Xu et al. 2019, "Modeling Tabular data using Conditional GAN"):

- continuous, integer and datetime columns: mode-specific normalisation. A Bayesian Gaussian mixture (at most
  `max_modes` modes, modes under `weight_threshold` dropped) is fitted per column; each value becomes a scalar
  (x - mu_k) / (4 sigma_k) in [-0.99, 0.99] (a 'tanh' span) plus the one-hot of its mode k (a 'softmax' span), the
  mode drawn from its posterior. A column with missing values gets one more 2-way 'softmax' span: the missing flag.
- categorical and boolean columns: one-hot (a 'softmax' span marked `discrete`); a missing value is its own
  category. Discrete spans are what the conditional vector and training-by-sampling are built on.
- constant columns (one value, or entirely missing) take no dimensions and are restored as they were.

`TableTransformer.inverse_transform` maps any matrix of that width (e.g. generator outputs) back to a DataFrame
with the original header, column order and dtypes; integers are rounded, every value is clipped to the range seen
in training, and a category is always one seen in training. The fitted state is plain JSON (`to_dict` / `save`),
so a checkpointed run can sample later without the data or a refit.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gan_jax.data.table_io import (
    _ISO_DATE,
    _ISO_DATETIME,
    DISCRETE_KINDS,
    NUMERIC_KINDS,
    _check_override_columns,
    _column_kind,
    load_kind_overrides,
    sdmetrics_metadata,
)
from gan_jax.data.table_spans import Span
from gan_jax.errors import ConfigError, DataError

Array = jax.Array

STD_MULTIPLIER = 4.0  # CTGAN / RDT: (x - mu) / (4 sigma) lies in [-1, 1] for 99.99% of a mode's mass
SCALAR_CLIP = 0.99
FORMAT_VERSION = 1
_NS_STEPS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)  # day .. nanosecond


# ----------------------------------------------------------------------------------------------------------------
# The transformer
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class ColumnSpec:
    """Fitted state of one column; plain Python values only, so it is JSON as it stands."""

    name: Any
    kind: str
    dtype: str
    has_missing: bool = False
    # continuous / integer / datetime: mixture modes (original units; seconds for datetimes), range, rounding
    means: list[float] | None = None
    stds: list[float] | None = None
    weights: list[float] | None = None
    lo: float | None = None
    hi: float | None = None
    fill: float | None = None  # stands in for a missing value before normalising (the flag says it is missing)
    decimals: int | None = None  # continuous values are rounded to the decimals seen in training
    step_ns: int | None = None  # datetime resolution seen in training
    datetime_format: str | None = None  # datetimes that were strings are written back with this format
    # categorical / boolean: categories (missing, if any, is one more category after them) and their counts
    categories: list | None = None
    counts: list[int] | None = None
    dtype_categories: list | None = None  # pandas 'category' dtype: its full category list and order
    ordered: bool = False
    # constant
    value: Any = None

    @property
    def n_modes(self) -> int:
        return len(self.means or ())

    @property
    def n_categories(self) -> int:
        """Categories in the one-hot, missing included."""
        return len(self.categories or ()) + int(self.has_missing)

    def spans(self) -> list[Span]:
        name = str(self.name)
        if self.kind in NUMERIC_KINDS:
            out = [Span(1, "tanh", False, name), Span(self.n_modes, "softmax", False, name)]
            if self.has_missing:
                out.append(Span(2, "softmax", False, name))
            return out
        if self.kind in DISCRETE_KINDS:
            return [Span(self.n_categories, "softmax", True, name)]
        return []


class TableTransformer:
    """Fits a table's columns once (deterministically from `seed`) and maps rows to model space and back.

    `kinds` overrides detected column kinds: a dict {column: kind} or the path of a metadata JSON (see
    `load_kind_overrides`). `max_fit_rows` caps the rows each mixture is fitted on (a seeded subsample) so a
    large table fits in bounded time; every row is still transformed.
    """

    def __init__(
        self,
        kinds: Mapping[str, Any] | str | Path | None = None,
        *,
        max_modes: int = 10,
        weight_threshold: float = 0.005,
        max_categories: int = 1000,
        max_fit_rows: int | None = 100_000,
        seed: int = 0,
    ) -> None:
        if max_modes < 1:
            raise ConfigError(f"max_modes must be at least 1, got {max_modes}.")
        if not 0 <= weight_threshold < 1:
            raise ConfigError(f"weight_threshold must be in [0, 1), got {weight_threshold}.")
        self.overrides = load_kind_overrides(kinds)
        self.max_modes = int(max_modes)
        self.weight_threshold = float(weight_threshold)
        self.max_categories = int(max_categories)
        self.max_fit_rows = None if max_fit_rows is None else int(max_fit_rows)
        self.seed = int(seed)
        self.columns: list[ColumnSpec] = []
        self.na_rep = ""

    # ---- fitted facts -------------------------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return bool(self.columns)

    @property
    def column_names(self) -> list:
        return [c.name for c in self.columns]

    @property
    def kinds(self) -> dict[Any, str]:
        return {c.name: c.kind for c in self.columns}

    @property
    def output_info(self) -> tuple[Span, ...]:
        """Spans in column order: what the generator's output activation and the conditional vector need."""
        self._require_fitted()
        return tuple(span for c in self.columns for span in c.spans())

    @property
    def output_dim(self) -> int:
        return sum(s.dim for s in self.output_info)

    @property
    def cond_dim(self) -> int:
        return sum(s.dim for s in self.output_info if s.discrete)

    @property
    def discrete_columns(self) -> list:
        return [c.name for c in self.columns if c.kind in DISCRETE_KINDS]

    def category_counts(self) -> list[np.ndarray]:
        """Training counts of each discrete column's categories (missing last), in conditional-vector order."""
        self._require_fitted()
        return [np.asarray(c.counts, np.int64) for c in self.columns if c.kind in DISCRETE_KINDS]

    def cond_index(self, column: Any, value: Any) -> int:
        """Position of `column == value` in the conditional vector (value None/NaN: the missing category)."""
        self._require_fitted()
        offset = 0
        for c in self.columns:
            if c.kind not in DISCRETE_KINDS:
                continue
            if c.name == column:
                if _is_missing(value):
                    if not c.has_missing:
                        raise ConfigError(f"column {column!r} had no missing values in training to condition on.")
                    return offset + len(c.categories)
                for same in (lambda a, b: a == b, lambda a, b: str(a) == str(b)):  # exact first, then as text
                    for i, category in enumerate(c.categories):
                        if same(category, value):
                            return offset + i
                raise ConfigError(
                    f"{value!r} is not a category of column {column!r}; its categories are: "
                    f"{', '.join(map(repr, c.categories[:50]))}{' ...' if len(c.categories) > 50 else ''}."
                )
            offset += c.n_categories
        names = [c.name for c in self.columns]
        if column in names:
            raise ConfigError(
                f"column {column!r} is {self.kinds[column]}; only categorical/boolean columns can be conditioned "
                f"on: {', '.join(map(repr, self.discrete_columns))}."
            )
        raise ConfigError(f"no column {column!r}; the columns are: {', '.join(map(repr, names))}.")

    def sdmetrics_metadata(self) -> dict:
        """Single-table SDMetrics metadata ({"columns": {name: {"sdtype": ...}}}) from the fitted kinds."""
        self._require_fitted()
        return sdmetrics_metadata(self.kinds)

    # ---- fit / transform / inverse ------------------------------------------------------------------------------

    def fit(self, df: pd.DataFrame) -> TableTransformer:
        """Detect kinds, fit a mixture per numeric column and a category list per discrete column."""
        _check_frame(df, "fit")
        if len(df) < 2:
            raise DataError(
                f"cannot fit a table with {len(df)} row(s): a tabular model needs at least 2 rows to learn "
                "column distributions; provide more data."
            )
        _check_override_columns(self.overrides, df)
        specs = []
        for i, name in enumerate(df.columns):
            override = self.overrides.get(name, {})
            kind = _column_kind(df[name], name, override.get("kind"))
            rng = np.random.default_rng([self.seed, i])
            specs.append(self._fit_column(df[name], name, kind, rng, override.get("datetime_format")))
        if not any(spec.spans() for spec in specs):
            raise DataError(
                "every column of the table is constant or entirely missing: there is nothing to model; "
                "check that the right file and columns were loaded."
            )
        self.columns = specs
        self.na_rep = str(df.attrs.get("na_rep", ""))
        return self

    def transform(self, df: pd.DataFrame, *, seed: int | None = None) -> np.ndarray:
        """Rows -> float32 matrix (N, output_dim). Modes are drawn from their posterior with `seed` (default:
        the fit seed), so the same call gives the same matrix."""
        self._require_fitted()
        _check_frame(df, "transform")
        missing = [c.name for c in self.columns if c.name not in df.columns]
        if missing:
            raise DataError(
                f"the table to transform lacks columns {missing} that the transformer was fitted on; "
                "pass a table with the training header."
            )
        base = self.seed if seed is None else int(seed)
        blocks = []
        for i, spec in enumerate(self.columns):
            rng = np.random.default_rng([base, i, 1])
            if spec.kind in NUMERIC_KINDS:
                blocks.append(_transform_numeric(spec, df[spec.name], rng))
            elif spec.kind in DISCRETE_KINDS:
                blocks.append(_one_hot(_category_codes(spec, df[spec.name]), spec.n_categories))
        return np.concatenate(blocks, axis=1).astype(np.float32) if blocks else np.zeros((len(df), 0), np.float32)

    def inverse_transform(self, data: np.ndarray | Array) -> pd.DataFrame:
        """Model-space rows (any real values; argmax decides modes/categories) -> DataFrame with the training
        header, column order and dtypes, values within the training ranges and categories."""
        self._require_fitted()
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.output_dim:
            raise DataError(
                f"inverse_transform expects shape (N, {self.output_dim}), got {data.shape}; pass the generator "
                "output for this transformer's output_info."
            )
        if not np.all(np.isfinite(data)):
            raise DataError("inverse_transform got NaN or inf values: the generator diverged; check the run.")
        n = data.shape[0]
        out = {}
        start = 0
        for spec in self.columns:
            width = sum(s.dim for s in spec.spans())
            block = data[:, start : start + width]
            start += width
            if spec.kind in NUMERIC_KINDS:
                out[spec.name] = _inverse_numeric(spec, block)
            elif spec.kind in DISCRETE_KINDS:
                out[spec.name] = _inverse_categorical(spec, block.argmax(axis=1))
            else:
                out[spec.name] = _restore(np.full(n, spec.value, dtype=object), spec)
        frame = pd.DataFrame(out, columns=self.column_names)
        frame.attrs["na_rep"] = self.na_rep
        return frame

    # ---- serialisation ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The fitted state as JSON-able data: enough to transform and inverse-transform without the data."""
        self._require_fitted()
        return {
            "format": "gan_jax.TableTransformer",
            "version": FORMAT_VERSION,
            "config": {
                "max_modes": self.max_modes,
                "weight_threshold": self.weight_threshold,
                "max_categories": self.max_categories,
                "max_fit_rows": self.max_fit_rows,
                "seed": self.seed,
            },
            "overrides": self.overrides,
            "na_rep": self.na_rep,
            "columns": [asdict(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> TableTransformer:
        if state.get("format") != "gan_jax.TableTransformer" or state.get("version") != FORMAT_VERSION:
            raise DataError(
                f"not a version-{FORMAT_VERSION} TableTransformer state (format={state.get('format')!r}, "
                f"version={state.get('version')!r}); refit the transformer on the training table."
            )
        out = cls(state.get("overrides") or None, **state["config"])
        known = {f.name for f in fields(ColumnSpec)}
        out.columns = [ColumnSpec(**{k: v for k, v in c.items() if k in known}) for c in state["columns"]]
        out.na_rep = state.get("na_rep", "")
        return out

    def save(self, path: str | Path) -> None:
        """Write the fitted state as JSON (a few kB to a few hundred kB)."""
        Path(path).expanduser().write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> TableTransformer:
        path = Path(path).expanduser()
        if not path.is_file():
            raise DataError(f"transformer state not found: {path}; it is written next to the run's checkpoints.")
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(f"{path} is not a readable TableTransformer state ({exc}); refit and save it.") from exc

    # ---- per-column fitting -------------------------------------------------------------------------------------

    def _fit_column(
        self, s: pd.Series, name: Any, kind: str, rng: np.random.Generator, datetime_format: str | None
    ) -> ColumnSpec:
        dtype = str(s.dtype)
        has_missing = bool(s.isna().any())
        spec = ColumnSpec(name=name, kind=kind, dtype=dtype, has_missing=has_missing)
        if isinstance(s.dtype, pd.CategoricalDtype):
            spec.dtype_categories = [_jsonable(v) for v in s.dtype.categories]
            spec.ordered = bool(s.dtype.ordered)
        if kind == "constant":
            values = s.dropna()
            spec.value = _jsonable(values.iloc[0]) if len(values) else None
            spec.has_missing = False
            return spec
        if kind in DISCRETE_KINDS:
            return self._fit_categorical(spec, s)
        if kind == "datetime":
            x, spec.step_ns, fmt = _datetime_seconds(s, datetime_format)
            spec.datetime_format = fmt
        else:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
            observed = x[np.isfinite(x)]
            if kind == "continuous":
                spec.decimals = _decimals(observed)
        observed = x[~np.isnan(x)]
        if not np.all(np.isfinite(observed)):
            raise DataError(
                f"column {name!r} holds infinite values; replace them (e.g. with NaN, kept as missing) before fitting."
            )
        spec.lo, spec.hi = float(observed.min()), float(observed.max())
        spec.fill = float(observed.mean())
        spec.means, spec.stds, spec.weights = self._fit_modes(observed, rng)
        return spec

    def _fit_categorical(self, spec: ColumnSpec, s: pd.Series) -> ColumnSpec:
        values = s.dropna()
        categories = list(pd.unique(values.to_numpy(dtype=object)))
        with contextlib.suppress(TypeError):  # mixed types: keep order of first appearance (deterministic too)
            categories = sorted(categories)
        if len(categories) > self.max_categories:
            raise DataError(
                f"column {spec.name!r} has {len(categories)} distinct values (more than max_categories="
                f"{self.max_categories}): it looks like an identifier or free text; drop the column, or raise "
                "max_categories if it really is categorical."
            )
        spec.categories = [_jsonable(v) for v in categories]
        codes = _category_codes(spec, s)
        spec.counts = np.bincount(codes, minlength=spec.n_categories).astype(int).tolist()
        return spec

    def _fit_modes(self, x: np.ndarray, rng: np.random.Generator) -> tuple[list[float], list[float], list[float]]:
        """Bayesian GMM (Dirichlet-process prior 0.001, as CTGAN/RDT) on standardised values; modes whose weight
        is under the threshold are dropped and the kept weights renormalised.

        In 1-D the 'diag' covariance is the same model as CTGAN's 'full' (same fit, same numbers) and 4-5x faster.
        Then every training value is made representable: a value no kept mode covers within 0.99 * 4 sigma (a far
        tail, e.g. capital-gain 99999) widens its most likely mode just enough, so transform -> inverse is exact
        on the training data instead of clipping about 1% of such columns.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        full = x
        if self.max_fit_rows is not None and len(x) > self.max_fit_rows:
            x = rng.choice(x, self.max_fit_rows, replace=False)
        loc, scale = float(x.mean()), float(x.std())
        scale = scale if scale > 0 else 1.0
        n_components = int(min(self.max_modes, len(np.unique(x))))
        gmm = BayesianGaussianMixture(
            n_components=n_components,
            covariance_type="diag",
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001,
            random_state=int(rng.integers(2**31 - 1)),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(((x - loc) / scale)[:, None])
        weights = gmm.weights_
        keep = weights > self.weight_threshold
        if not keep.any():
            keep = weights == weights.max()
        means = gmm.means_[:, 0][keep] * scale + loc
        stds = np.sqrt(gmm.covariances_.reshape(-1)[keep]) * scale
        kept = weights[keep] / weights[keep].sum()
        values = np.unique(full)
        scaled, post = _mode_posterior(means, stds, kept, values)
        uncovered = ~(np.abs(scaled) <= SCALAR_CLIP).any(axis=1)
        if uncovered.any():
            owner = post[uncovered].argmax(axis=1)
            need = np.abs(values[uncovered] - means[owner]) / (STD_MULTIPLIER * SCALAR_CLIP) * (1 + 1e-9)
            np.maximum.at(stds, owner, need)
        return means.tolist(), stds.tolist(), kept.tolist()

    def _require_fitted(self) -> None:
        if not self.columns:
            raise DataError("the TableTransformer is not fitted: call fit(df) first, or load a saved state.")


# ----------------------------------------------------------------------------------------------------------------
# Column helpers
# ----------------------------------------------------------------------------------------------------------------


def _check_frame(df: Any, what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{what} expects a pandas DataFrame, got {type(df).__name__}; read CSVs with read_table.")
    if df.shape[1] == 0:
        raise DataError(f"cannot {what} a table with no columns; check the file's header and separator.")
    if len(df) == 0:
        raise DataError(f"cannot {what} a table with no rows; check the file and any filtering applied to it.")
    if df.columns.has_duplicates:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise DataError(f"the table has duplicate column names {dup}; rename them so every column is unique.")


def _is_missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _jsonable(v: Any) -> Any:
    """A cell value as plain JSON data (numpy scalars -> Python, timestamps -> ISO strings, missing -> None)."""
    if _is_missing(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, str | int | float | bool):
        return v
    raise DataError(
        f"value {v!r} of type {type(v).__name__} cannot be stored in the transformer state; convert the column "
        "to strings or numbers first."
    )


def _decimals(x: np.ndarray) -> int | None:
    """Fewest decimals (up to 6) that represent every value, or None: synthetic values are rounded to them."""
    for d in range(7):
        if np.allclose(x, np.round(x, d), rtol=0, atol=1e-9 * max(1.0, float(np.abs(x).max(initial=0)))):
            return d
    return None


def _datetime_seconds(s: pd.Series, fmt: str | None) -> tuple[np.ndarray, int, str | None]:
    """Seconds since the epoch (NaN for missing), the time step every value is a multiple of, and the string
    format to write values back with (None when the column already held datetimes)."""
    if ptypes.is_datetime64_any_dtype(s.dtype):
        stamps, out_format = s, None
    else:
        texts = s.dropna().astype(str)
        if fmt is None:
            if texts.str.match(_ISO_DATE).all():
                fmt = "%Y-%m-%d"
            elif texts.str.match(_ISO_DATETIME).all():
                fmt = "%Y-%m-%dT%H:%M:%S" if texts.str.contains("T").all() else "%Y-%m-%d %H:%M:%S"
        stamps = pd.to_datetime(s, format=fmt if fmt else "mixed", errors="coerce")
        out_format = fmt or "%Y-%m-%d %H:%M:%S"
    if getattr(stamps.dtype, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    ns = stamps.astype("datetime64[ns]").to_numpy().astype(np.int64)
    valid = ~stamps.isna().to_numpy()
    step = next(st for st in _NS_STEPS if np.all(ns[valid] % st == 0))
    seconds = np.where(valid, ns / 1e9, np.nan)
    return seconds, int(step), out_format


def _mode_posterior(
    means: Sequence[float], stds: Sequence[float], weights: Sequence[float], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distance (x - mu_k) / (4 sigma_k) to each mode (N, K) and each mode's posterior (N, K)."""
    means = np.asarray(means, np.float64)[None, :]
    stds = np.maximum(np.asarray(stds, np.float64), 1e-12)[None, :]
    z = (x[:, None] - means) / stds
    log_post = np.log(np.asarray(weights, np.float64))[None, :] - np.log(stds) - 0.5 * z * z
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return z / STD_MULTIPLIER, post / post.sum(axis=1, keepdims=True)


def _transform_numeric(spec: ColumnSpec, s: pd.Series, rng: np.random.Generator) -> np.ndarray:
    if spec.kind == "datetime":
        x = _datetime_seconds(s, spec.datetime_format)[0]
    else:
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    missing = np.isnan(x)
    if missing.any() and not spec.has_missing:
        raise DataError(
            f"column {spec.name!r} has {int(missing.sum())} missing values, but had none when the transformer "
            "was fitted; fill them, or refit on data that includes missing values."
        )
    x = np.where(missing, spec.fill, x)
    scaled, post = _mode_posterior(spec.means, spec.stds, spec.weights, x)
    # CTGAN draws the mode from its posterior (not argmax), so the generator sees each mode's full width. The draw
    # is among the modes that represent x without clipping (all of them but for far tails), so the round trip is
    # exact; a value no mode covers (only possible outside the training data) takes its most likely mode, clipped.
    covered = np.abs(scaled) <= SCALAR_CLIP
    probs = np.where(covered.any(axis=1, keepdims=True), post * covered, post)
    probs /= probs.sum(axis=1, keepdims=True)
    u = rng.random((len(x), 1))
    mode = np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), spec.n_modes - 1)
    mode = np.where(probs[np.arange(len(x)), mode] > 0, mode, probs.argmax(axis=1))  # guard against rounding
    scalar = np.clip(scaled[np.arange(len(x)), mode], -SCALAR_CLIP, SCALAR_CLIP)
    blocks = [scalar[:, None], _one_hot(mode, spec.n_modes)]
    if spec.has_missing:
        blocks.append(_one_hot(missing.astype(np.int64), 2))
    return np.concatenate(blocks, axis=1)


def _inverse_numeric(spec: ColumnSpec, block: np.ndarray) -> pd.Series:
    k = spec.n_modes
    scalar = np.clip(block[:, 0], -1.0, 1.0)
    mode = block[:, 1 : 1 + k].argmax(axis=1)
    x = scalar * STD_MULTIPLIER * np.asarray(spec.stds)[mode] + np.asarray(spec.means)[mode]
    x = np.clip(x, spec.lo, spec.hi)
    missing = block[:, 1 + k : 3 + k].argmax(axis=1) == 1 if spec.has_missing else np.zeros(len(x), bool)
    if spec.kind == "integer":
        x = np.clip(np.rint(x), math.ceil(spec.lo), math.floor(spec.hi))
    elif spec.kind == "continuous" and spec.decimals is not None:
        x = np.clip(np.round(x, spec.decimals), spec.lo, spec.hi)
    if spec.kind == "datetime":
        return _restore_datetime(spec, x, missing)
    values = x.astype(object)
    if spec.kind == "integer":
        values = np.array([int(v) for v in x], dtype=object)
    values[missing] = None
    return _restore(values, spec)


def _restore_datetime(spec: ColumnSpec, seconds: np.ndarray, missing: np.ndarray) -> pd.Series:
    ns = np.rint(seconds * 1e9 / spec.step_ns).astype(np.int64) * spec.step_ns
    lo = math.ceil(round(spec.lo * 1e9) / spec.step_ns) * spec.step_ns
    hi = math.floor(round(spec.hi * 1e9) / spec.step_ns) * spec.step_ns
    stamps = pd.Series(pd.to_datetime(np.clip(ns, lo, hi), unit="ns"))
    stamps[missing] = pd.NaT
    if spec.datetime_format is not None:
        texts = stamps.dt.strftime(spec.datetime_format).astype(object)
        texts[missing] = np.nan
        return _restore(texts.to_numpy(dtype=object), spec)
    dtype = pd.api.types.pandas_dtype(spec.dtype)
    if getattr(dtype, "tz", None) is not None:
        stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(dtype.tz)
    return stamps.astype(dtype)


def _category_codes(spec: ColumnSpec, s: pd.Series) -> np.ndarray:
    """Index of each value in the fitted categories; missing -> the extra last category; unseen -> error."""
    missing = s.isna().to_numpy()
    codes = pd.Index(spec.categories, dtype=object).get_indexer(s.astype(object))
    unseen = (codes < 0) & ~missing
    if unseen.any():
        examples = ", ".join(repr(v) for v in pd.unique(s[unseen].astype(object))[:5])
        raise DataError(
            f"column {spec.name!r} has {int(unseen.sum())} values that were not seen when fitting (e.g. {examples}); "
            "fit the transformer on data that covers every category."
        )
    if missing.any():
        if not spec.has_missing:
            raise DataError(
                f"column {spec.name!r} has {int(missing.sum())} missing values, but had none when fitted; fill "
                "them, or refit on data that includes missing values."
            )
        codes = np.where(missing, len(spec.categories), codes)
    return codes.astype(np.int64)


def _inverse_categorical(spec: ColumnSpec, codes: np.ndarray) -> pd.Series:
    lookup = np.array([*spec.categories, None], dtype=object)
    return _restore(lookup[codes], spec)


def _restore(values: np.ndarray, spec: ColumnSpec) -> pd.Series:
    """Object array (None = missing) -> Series of the column's original dtype."""
    if spec.dtype == "category":
        return pd.Series(pd.Categorical(values, categories=spec.dtype_categories, ordered=spec.ordered))
    dtype = pd.api.types.pandas_dtype(spec.dtype)
    if ptypes.is_object_dtype(dtype):
        out = values.copy()
        out[pd.isna(out)] = np.nan
        return pd.Series(out, dtype=object)
    if ptypes.is_datetime64_any_dtype(dtype):
        return pd.Series(pd.to_datetime(values)).astype(dtype)
    if ptypes.is_float_dtype(dtype):
        return pd.Series(np.array([np.nan if v is None else v for v in values], dtype=np.float64)).astype(dtype)
    return pd.Series(values, dtype=object).astype(dtype)


def _one_hot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(codes), n), np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out

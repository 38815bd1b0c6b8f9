"""Tables (CSV / DataFrame) <-> model space for CTGAN-style GANs, and the conditional-vector sampler.

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

`ConditionSampler` is CTGAN's DataSampler with precomputed arrays (rows grouped by category, CSR-style), so a batch
of conditional vectors and matching real rows is drawn on device inside a jitted step from one key.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gan_jax.errors import ConfigError, DataError

Array = jax.Array

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime", "constant")
OVERRIDE_KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
NUMERIC_KINDS = ("continuous", "integer", "datetime")
DISCRETE_KINDS = ("categorical", "boolean")
# Field markers read as missing on top of pandas' defaults ("", "NA", "NaN", "null", ...): UCI files use "?".
DEFAULT_NA_VALUES = ("?",)
COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
STD_MULTIPLIER = 4.0  # CTGAN / RDT: (x - mu) / (4 sigma) lies in [-1, 1] for 99.99% of a mode's mass
SCALAR_CLIP = 0.99
FORMAT_VERSION = 1
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}$")
_NS_STEPS = (86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9, 10**6, 10**3, 1)  # day .. nanosecond


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing tables
# ----------------------------------------------------------------------------------------------------------------


def read_table(
    path: str | Path,
    *,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    min_rows: int = 2,
    sep: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV (or .tsv, optionally compressed) with a header row into a DataFrame, refusing files no model
    could learn from with a message that says what to fix.

    `na_values` are field values read as missing (on top of pandas' defaults; "?" for UCI files such as Adult).
    Lines starting with "#" above the header are skipped.
    The marker actually used in the file is kept in `df.attrs["na_rep"]`, so `write_table` writes missing values
    the way the source did. Spaces after a separator are skipped (the raw UCI files have them).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"table file not found: {path} (absolute: {path.resolve()}); check the path or data.root.")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a table file; point at the CSV file inside it.")
    if sep is None:
        sep = "\t" if ".tsv" in path.suffixes or ".tab" in path.suffixes else ","
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes): it has no header and no rows; re-export or re-download it.")
    try:
        skip = _leading_comment_lines(path, encoding)
        header = _read_header(path, sep, encoding, skip)
        df = pd.read_csv(
            path,
            sep=sep,
            skiprows=skip,
            na_values=list(na_values),
            skipinitialspace=True,
            encoding=encoding,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} has no header and no rows ({exc}); re-export or re-download it.") from exc
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path} is not a well-formed {'TSV' if sep == chr(9) else 'CSV'} ({exc}); a row has more fields "
            "than the header: check the separator, quoting, or fix that line."
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path} is not valid {encoding} text ({exc}); pass the file's encoding, e.g. encoding='latin-1'."
        ) from exc
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{path} has duplicate column names {duplicates}; rename them so every header is unique.")
    if len(df) < min_rows:
        what = "a header but no data rows" if len(df) == 0 else f"only {len(df)} data row(s)"
        raise DataError(
            f"{path} has {what}; a tabular model needs at least {min_rows} rows to learn from. "
            "Check that the file is complete and that its first line is the header."
        )
    df.attrs["na_rep"] = _used_na_marker(path, sep, encoding, na_values)
    df.attrs["source"] = str(path)
    return df


def write_table(df: pd.DataFrame, path: str | Path, *, na_rep: str | None = None) -> None:
    """Write a DataFrame as CSV the way `read_table` reads it back: header, no index, missing values as `na_rep`
    (default `df.attrs["na_rep"]`: the source file's marker, which `inverse_transform` carries over)."""
    na = df.attrs.get("na_rep", "") if na_rep is None else na_rep
    df.to_csv(Path(path).expanduser(), index=False, na_rep=na)


def _leading_comment_lines(path: Path, encoding: str) -> int:
    """Lines starting with '#' above the header (a source note, as in many published CSVs) are skipped."""
    if path.suffix in COMPRESSED:
        return 0
    count = 0
    with path.open("rt", encoding=encoding, newline="") as fh:
        for line in fh:
            if not line.lstrip().startswith("#"):
                break
            count += 1
    return count


def _read_header(path: Path, sep: str, encoding: str, skip: int = 0) -> list[str]:
    """The raw header fields (pandas renames duplicates to "a.1", hiding them); [] for compressed files."""
    if path.suffix in COMPRESSED:
        return []
    with path.open("rt", encoding=encoding, newline="") as fh:
        for _ in range(skip):
            fh.readline()
        row = next(csv.reader(fh, delimiter=sep, skipinitialspace=True), [])
    return [name.strip() for name in row]


def _used_na_marker(path: Path, sep: str, encoding: str, na_values: Sequence[str]) -> str:
    """The first explicit missing marker that occurs as a whole field (e.g. "?" in Adult), else ""."""
    if not na_values or path.suffix in COMPRESSED or path.stat().st_size > 256 * 2**20:
        return ""
    text = path.read_text(encoding=encoding, errors="replace")
    for marker in na_values:
        pattern = rf"(^|{re.escape(sep)})[ \t]*{re.escape(marker)}[ \t]*({re.escape(sep)}|\r?$)"
        if re.search(pattern, text, flags=re.MULTILINE):
            return marker
    return ""


# ----------------------------------------------------------------------------------------------------------------
# Column kinds
# ----------------------------------------------------------------------------------------------------------------


def load_kind_overrides(overrides: Mapping[str, Any] | str | Path | None) -> dict[str, dict[str, Any]]:
    """Normalise kind overrides to {column: {"kind": ..., ["datetime_format": ...]}}.

    Accepted: a dict {column: kind} or {column: {"kind": kind}}, optionally under a "columns" key; or the path of
    a metadata JSON holding either, or SDV-style metadata ({"columns": {c: {"sdtype": "numerical", ...}}}).
    """
    if overrides is None:
        return {}
    source = "kinds"
    if isinstance(overrides, str | Path):
        path = Path(overrides).expanduser()
        if not path.is_file():
            raise ConfigError(f"metadata file not found: {path}; pass an existing JSON file or a dict of kinds.")
        try:
            overrides = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"metadata file {path} is not valid JSON ({exc}); fix the file.") from exc
        source = str(path)
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"column kinds ({source}) must be a mapping of column -> kind, got {type(overrides)}.")
    if "tables" in overrides and isinstance(overrides["tables"], Mapping) and len(overrides["tables"]) == 1:
        overrides = next(iter(overrides["tables"].values()))
    if "columns" in overrides and isinstance(overrides["columns"], Mapping):
        overrides = overrides["columns"]
    out: dict[str, dict[str, Any]] = {}
    for column, entry in overrides.items():
        spec = dict(entry) if isinstance(entry, Mapping) else {"kind": entry}
        kind = spec.get("kind")
        if kind is None and "sdtype" in spec:
            kind = _kind_from_sdtype(column, spec, source)
        if kind not in OVERRIDE_KINDS:
            raise ConfigError(
                f"column {column!r}: kind {kind!r} ({source}) is not one of {', '.join(OVERRIDE_KINDS)}; "
                "fix the override (constant columns are detected, not set)."
            )
        out[column] = {"kind": kind, "datetime_format": spec.get("datetime_format")}
    return out


def _kind_from_sdtype(column: str, spec: Mapping[str, Any], source: str) -> str:
    sdtype = spec["sdtype"]
    if sdtype == "numerical":
        return "integer" if str(spec.get("computer_representation", "")).lower().startswith("int") else "continuous"
    if sdtype in ("categorical", "boolean", "datetime"):
        return sdtype
    raise ConfigError(
        f"column {column!r} has sdtype {sdtype!r} in {source}; tabular models support numerical, categorical, "
        "boolean and datetime columns: drop the column or mark it categorical."
    )


def detect_kinds(df: pd.DataFrame, overrides: Mapping[str, Any] | str | Path | None = None) -> dict[str, str]:
    """Kind of every column: continuous, integer, categorical, boolean, datetime or constant.

    Rules: one value (or none at all, all missing) -> constant; bool -> boolean; datetime64 or ISO date strings ->
    datetime; numbers with at most 2 distinct values -> categorical (0/1 codes); whole numbers -> integer; other
    numbers -> continuous; text -> categorical. A column that mixes numbers with text is refused (it is usually a
    missing-value marker pandas did not know). Overrides win, except that a constant stays constant.
    """
    parsed = load_kind_overrides(overrides)
    _check_override_columns(parsed, df)
    return {name: _column_kind(df[name], name, parsed.get(name, {}).get("kind")) for name in df.columns}


def _check_override_columns(parsed: Mapping[str, Any], df: pd.DataFrame) -> None:
    unknown = [c for c in parsed if c not in df.columns]
    if unknown:
        raise ConfigError(
            f"kind overrides name columns the table does not have: {unknown}; "
            f"the columns are: {', '.join(map(str, df.columns))}."
        )


def _column_kind(s: pd.Series, name: Any, override: str | None) -> str:
    values = s.dropna()
    if len(values) == 0 or (values.nunique() == 1 and len(values) == len(s)):
        return "constant"
    if override is not None:
        _check_override(values, name, override)
        return override
    dtype = s.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categorical"
    if ptypes.is_numeric_dtype(dtype):
        return _numeric_kind(values, name)
    # object / string columns
    if values.map(lambda v: isinstance(v, bool | np.bool_)).all():
        return "boolean"
    is_number = values.map(_is_number)
    if is_number.all():
        return _numeric_kind(pd.to_numeric(values), name)
    is_str = values.map(lambda v: isinstance(v, str))
    if is_str.all():
        texts = values.astype(str)
        if texts.str.match(_ISO_DATE).all() or texts.str.match(_ISO_DATETIME).all():
            return "datetime"
    parses = pd.to_numeric(values, errors="coerce").notna()
    if parses.mean() >= 0.5 and not (is_str.all() and parses.all()):
        bad = values[~parses] if not parses.all() else values[is_str]
        examples = ", ".join(repr(v) for v in pd.unique(bad)[:5])
        raise DataError(
            f"column {name!r} mixes numbers with text: {len(bad)} of {len(values)} values are not numbers "
            f"(e.g. {examples}). If these mark missing values, pass them to read_table(na_values=[...]); to "
            f"model the column as categories, override its kind: kinds={{{name!r}: 'categorical'}}; "
            "otherwise clean the column."
        )
    return "categorical"


def _numeric_kind(values: pd.Series, name: Any) -> str:
    x = values.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError(
            f"column {name!r} holds infinite values; replace them (e.g. with NaN, kept as missing) before fitting."
        )
    if values.nunique() <= 2:
        return "categorical"
    return "integer" if np.all(x == np.round(x)) else "continuous"


def _check_override(values: pd.Series, name: Any, kind: str) -> None:
    if kind in ("continuous", "integer"):
        bad = values[pd.to_numeric(values, errors="coerce").isna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in pd.unique(bad)[:5])
            raise DataError(
                f"column {name!r} is set to {kind} but {len(bad)} values are not numbers (e.g. {examples}); "
                "mark it categorical, or treat those values as missing with read_table(na_values=[...])."
            )
    elif kind == "boolean" and values.nunique() > 2:
        raise DataError(
            f"column {name!r} is set to boolean but has {values.nunique()} distinct values; mark it categorical."
        )
    elif kind == "datetime" and not ptypes.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if parsed.isna().any():
            examples = ", ".join(repr(v) for v in pd.unique(values[parsed.isna()])[:5])
            raise DataError(f"column {name!r} is set to datetime but some values are not dates (e.g. {examples}).")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)


# ----------------------------------------------------------------------------------------------------------------
# The transformer
# ----------------------------------------------------------------------------------------------------------------


class Span(NamedTuple):
    """One block of the model-space row: `dim` features with one output activation.

    `discrete` marks the one-hot of a categorical/boolean column: the spans the conditional vector is made of
    (in order) and that the generator's conditional cross-entropy looks at. Hashable, so a tuple of spans can be a
    static argument of a jitted function or a Flax module attribute.
    """

    dim: int
    activation: str  # "tanh" | "softmax"
    discrete: bool
    column: str


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


def sdmetrics_metadata(kinds: Mapping[Any, str]) -> dict:
    """SDMetrics single-table metadata from our column kinds."""
    sdtype = {
        "continuous": "numerical",
        "integer": "numerical",
        "datetime": "datetime",
        "categorical": "categorical",
        "boolean": "boolean",
        "constant": "categorical",
    }
    return {"columns": {str(name): {"sdtype": sdtype[kind]} for name, kind in kinds.items()}}


# ----------------------------------------------------------------------------------------------------------------
# Conditional vectors and training-by-sampling, on device
# ----------------------------------------------------------------------------------------------------------------


class CondArrays(NamedTuple):
    """Precomputed arrays for drawing conditional vectors and matching rows in JAX (a pytree: device_put it once
    and pass it to the jitted step like any dataset array). D = discrete columns, K = most categories in one,
    C = sum of categories (the cond width), N = rows.

    Rows are grouped by category CSR-style: `row_order[d]` lists the row indices sorted by column d's category,
    and category c (global index) owns `row_order[d, cat_start[c] : cat_start[c] + cat_count[c]]`. That is D x N
    int32 in all, where padded per-category tables would be C x (largest category).
    """

    col_offset: np.ndarray  # (D,) int32: where column d starts in the cond vector
    train_logits: np.ndarray  # (D, K) float32: log of log-frequency probabilities, -inf padding
    sample_logits: np.ndarray  # (D, K) float32: log of empirical frequencies, -inf padding
    row_order: np.ndarray  # (D, N) int32
    cat_start: np.ndarray  # (C,) int32
    cat_count: np.ndarray  # (C,) int32


class CondBatch(NamedTuple):
    cond: Array  # (B, C) one-hot of the chosen category (all zeros when the table has no discrete column)
    mask: Array  # (B, D) one-hot of the chosen column
    rows: Array  # (B,) int32: real rows having that category, to index the transformed data with


def sample_train_cond(arrays: CondArrays, key: Array, batch_size: int) -> CondBatch:
    """CTGAN's training-by-sampling: a discrete column uniformly, a category by log-frequency, and a real row with
    that category uniformly. Pure and jittable (`batch_size` static)."""
    k_col, k_cat, k_row = jax.random.split(key, 3)
    n_discrete, n_rows = arrays.row_order.shape
    cond_dim = arrays.cat_start.shape[0]
    if n_discrete == 0:
        rows = jax.random.randint(k_row, (batch_size,), 0, n_rows)
        return CondBatch(jnp.zeros((batch_size, 0)), jnp.zeros((batch_size, 0)), rows)
    if n_rows == 0:
        raise ConfigError("this ConditionSampler has no row tables (built from counts); build it with from_data.")
    col = jax.random.randint(k_col, (batch_size,), 0, n_discrete)
    cat = jax.random.categorical(k_cat, jnp.asarray(arrays.train_logits)[col])
    c = jnp.asarray(arrays.col_offset)[col] + cat
    count = jnp.asarray(arrays.cat_count)[c]
    within = jax.random.randint(k_row, (batch_size,), 0, jnp.maximum(count, 1))
    rows = jnp.asarray(arrays.row_order)[col, jnp.asarray(arrays.cat_start)[c] + within]
    cond = jax.nn.one_hot(c, cond_dim, dtype=jnp.float32)
    mask = jax.nn.one_hot(col, n_discrete, dtype=jnp.float32)
    return CondBatch(cond, mask, rows)


def sample_original_cond(arrays: CondArrays, key: Array, batch_size: int) -> Array:
    """Conditional vectors for generation: a discrete column uniformly, a category by its empirical frequency
    (CTGAN's sample_original_condvec, with the frequencies it intends). Pure and jittable."""
    k_col, k_cat = jax.random.split(key)
    n_discrete = arrays.col_offset.shape[0]
    cond_dim = arrays.cat_start.shape[0]
    if n_discrete == 0:
        return jnp.zeros((batch_size, 0))
    col = jax.random.randint(k_col, (batch_size,), 0, n_discrete)
    cat = jax.random.categorical(k_cat, jnp.asarray(arrays.sample_logits)[col])
    return jax.nn.one_hot(jnp.asarray(arrays.col_offset)[col] + cat, cond_dim, dtype=jnp.float32)


def fixed_cond(cond_dim: int, index: int | Array, batch_size: int) -> Array:
    """Every row conditioned on one category (`TableTransformer.cond_index(column, value)`)."""
    return jax.nn.one_hot(jnp.full((batch_size,), index), cond_dim, dtype=jnp.float32)


@dataclass(frozen=True, eq=False)
class ConditionSampler:
    """Host-side holder of `CondArrays` plus convenience methods; the pure functions above are what a jitted
    train step calls with `jax.device_put(sampler.arrays)`."""

    arrays: CondArrays
    sizes: tuple[int, ...] = field(default=())  # categories per discrete column

    @classmethod
    def from_data(cls, data: np.ndarray, output_info: Sequence[Span], log_frequency: bool = True) -> ConditionSampler:
        """From the transformed training matrix (one-hot discrete spans), as CTGAN's DataSampler."""
        data = np.asarray(data)
        if data.ndim != 2 or data.shape[1] != sum(s.dim for s in output_info):
            raise DataError(
                f"data of shape {data.shape} does not match output_info (width {sum(s.dim for s in output_info)}); "
                "pass the matrix TableTransformer.transform returned, with its output_info."
            )
        codes, sizes, start = [], [], 0
        for span in output_info:
            if span.discrete:
                codes.append(data[:, start : start + span.dim].argmax(axis=1))
                sizes.append(span.dim)
            start += span.dim
        codes_arr = np.stack(codes, axis=1) if codes else np.zeros((len(data), 0), np.int64)
        return cls.from_codes(codes_arr, sizes, log_frequency)

    @classmethod
    def from_codes(cls, codes: np.ndarray, sizes: Sequence[int], log_frequency: bool = True) -> ConditionSampler:
        """From category codes (N, D) of each discrete column and the number of categories of each."""
        codes = np.asarray(codes, np.int64)
        n_rows, n_discrete = codes.shape
        counts = [np.bincount(codes[:, d], minlength=sizes[d]) for d in range(n_discrete)]
        row_order = np.zeros((0, n_rows), np.int64)
        if n_discrete:
            row_order = np.stack([np.argsort(codes[:, d], kind="stable") for d in range(n_discrete)])
        return cls._build(counts, sizes, row_order, log_frequency)

    @classmethod
    def from_counts(cls, counts: Sequence[np.ndarray], log_frequency: bool = True) -> ConditionSampler:
        """For generation only (no row tables): from `TableTransformer.category_counts()`, e.g. after loading a
        saved transformer without the data."""
        sizes = [len(c) for c in counts]
        return cls._build([np.asarray(c) for c in counts], sizes, np.zeros((len(counts), 0), np.int64), log_frequency)

    @classmethod
    def _build(
        cls, counts: list[np.ndarray], sizes: Sequence[int], row_order: np.ndarray, log_frequency: bool
    ) -> ConditionSampler:
        n_discrete = len(sizes)
        width = max(sizes, default=1)
        train_logits = np.full((n_discrete, width), -np.inf, np.float32)
        sample_logits = np.full((n_discrete, width), -np.inf, np.float32)
        cat_start, cat_count = [], []
        for d, (count, size) in enumerate(zip(counts, sizes, strict=True)):
            count = count.astype(np.float64)
            weight = np.log1p(count) if log_frequency else count  # log(count + 1), as CTGAN
            with np.errstate(divide="ignore"):
                train_logits[d, :size] = np.log(weight / weight.sum())
                sample_logits[d, :size] = np.log(count / count.sum())
            cat_start.extend(np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64))
            cat_count.extend(count.astype(np.int64))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_discrete else np.zeros(0)
        arrays = CondArrays(
            col_offset=np.asarray(offsets, np.int32),
            train_logits=train_logits,
            sample_logits=sample_logits,
            row_order=row_order.astype(np.int32),
            cat_start=np.asarray(cat_start, np.int32),
            cat_count=np.asarray(cat_count, np.int32),
        )
        return cls(arrays, tuple(int(s) for s in sizes))

    @property
    def n_discrete(self) -> int:
        return len(self.sizes)

    @property
    def cond_dim(self) -> int:
        return int(sum(self.sizes))

    def train_probabilities(self) -> list[np.ndarray]:
        """Per discrete column, the probability training-by-sampling gives each category (for checks/logs)."""
        return [np.exp(self.arrays.train_logits[d, :size]) for d, size in enumerate(self.sizes)]

    def sample_train(self, key: Array, batch_size: int) -> CondBatch:
        return _sample_train_jit(self.arrays, key, batch_size)

    def sample_original(self, key: Array, batch_size: int) -> Array:
        return _sample_original_jit(self.arrays, key, batch_size)

    def fixed(self, index: int, batch_size: int) -> Array:
        if not 0 <= index < self.cond_dim:
            raise ConfigError(f"condition index {index} is outside the conditional vector (width {self.cond_dim}).")
        return fixed_cond(self.cond_dim, index, batch_size)


_sample_train_jit = jax.jit(sample_train_cond, static_argnums=2)
_sample_original_jit = jax.jit(sample_original_cond, static_argnums=2)

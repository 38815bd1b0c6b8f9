"""Reading and writing CSV tables, and the kind of each column: the file and metadata side of the tabular
pipeline for CTGAN-style GANs.

It is kept apart from the model-space transform (`table_transformer`) and the conditional-vector sampler
(`table_sampler`) so that code which only reads, writes or describes tables needs neither the mixture fits nor JAX.

- `read_table` / `write_table`: a CSV (or .tsv, optionally compressed) with a header row <-> DataFrame. Files no
  model could learn from are refused with a message that says what to fix; the missing-value marker the file used
  ("?" in UCI files) is kept in `df.attrs["na_rep"]`, so tables are written back the way the source wrote them.
- column kinds: continuous, integer, categorical, boolean, datetime or constant, detected from the values
  (`detect_kinds`) or overridden by a dict or a metadata JSON, SDV-style metadata included (`load_kind_overrides`).
  `sdmetrics_metadata` turns kinds into SDMetrics single-table metadata.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from gan_jax.errors import ConfigError, DataError

KINDS = ("continuous", "integer", "categorical", "boolean", "datetime", "constant")
OVERRIDE_KINDS = ("continuous", "integer", "categorical", "boolean", "datetime")
NUMERIC_KINDS = ("continuous", "integer", "datetime")
DISCRETE_KINDS = ("categorical", "boolean")
# Field markers read as missing on top of pandas' defaults ("", "NA", "NaN", "null", ...): UCI files use "?".
DEFAULT_NA_VALUES = ("?",)
COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}$")


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

"""Evaluation of synthetic tables: statistical quality, machine-learning efficacy, and privacy (copies).

- `quality_report`: SDMetrics' QualityReport (Column Shapes: KS / TV complements per column; Column Pair Trends:
  correlation / contingency similarity per pair), the score SDV and most tabular-GAN papers since 2022 report.
- `ml_efficacy`: the CTGAN paper's protocol (Xu et al. 2019, sec. 5; SDGym's evaluate.py of that time) for a
  classification target: fit AdaBoost(50), DecisionTree(depth 20), LogisticRegression and MLP on synthetic rows,
  score F1 on the real test set; the same fitted on the real training rows is the "identity" ceiling.
- `distance_to_closest_record`: share of synthetic rows that copy a training row exactly, and the distribution
  of distances to the closest training row on normalised features (with a real hold-out as the reference).

Everything takes DataFrames as `read_table` / `TableTransformer.inverse_transform` produce them, and returns plain
dicts of floats (plus a few labels) that a logger can store.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gan_jax.data.table_io import DISCRETE_KINDS, detect_kinds, sdmetrics_metadata
from gan_jax.data.table_transformer import TableTransformer
from gan_jax.errors import DataError

Metadata = TableTransformer | Mapping[str, Any] | None
CLASSIFIERS = ("adaboost", "decision_tree", "logistic_regression", "mlp")
MISSING = "<missing>"
MAX_TARGET_CLASSES = 50


def resolve_kinds(real_df: pd.DataFrame, metadata: Metadata = None) -> dict[Any, str]:
    """Column kinds from a fitted TableTransformer, a {column: kind} dict / metadata JSON (`detect_kinds`
    overrides), SDMetrics metadata ({"columns": {c: {"sdtype": ...}}}), or detected on `real_df` when None."""
    if isinstance(metadata, TableTransformer):
        return metadata.kinds
    return detect_kinds(real_df, metadata)


def _check_columns(real_df: pd.DataFrame, other: pd.DataFrame, name: str) -> None:
    if not isinstance(other, pd.DataFrame) or not isinstance(real_df, pd.DataFrame):
        raise DataError(f"tabular metrics take pandas DataFrames; got {type(other).__name__} for the {name} table.")
    missing = [c for c in real_df.columns if c not in other.columns]
    if missing:
        raise DataError(
            f"the {name} table lacks columns {missing} of the real table; sample with the transformer fitted on "
            "the real table (inverse_transform keeps its header)."
        )
    if len(other) == 0:
        raise DataError(f"the {name} table has no rows; sample at least one batch before evaluating.")


# ----------------------------------------------------------------------------------------------------------------
# SDMetrics quality report
# ----------------------------------------------------------------------------------------------------------------


def quality_report(real_df: pd.DataFrame, synth_df: pd.DataFrame, metadata: Metadata = None) -> dict[str, Any]:
    """SDMetrics QualityReport: overall score (mean of the two properties), Column Shapes, Column Pair Trends, and
    each column's shape score, all in [0, 1] (1 = indistinguishable marginals / pairwise trends)."""
    from sdmetrics.reports import QualityReport

    _check_columns(real_df, synth_df, "synthetic")
    kinds = resolve_kinds(real_df, metadata)
    real, synth = _for_sdmetrics(real_df, kinds), _for_sdmetrics(synth_df[list(real_df.columns)], kinds)
    table_md = sdmetrics_metadata(kinds)
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate({"table": real}, {"table": synth}, {"tables": {"table": table_md}}, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        shapes = report.get_details("Column Shapes", "table")
    return {
        "overall": float(report.get_score()),
        "column_shapes": float(props["Column Shapes"]),
        "column_pair_trends": float(props["Column Pair Trends"]),
        "column_shapes_by_column": {str(r["Column"]): float(r["Score"]) for _, r in shapes.iterrows()},
    }


def _for_sdmetrics(df: pd.DataFrame, kinds: Mapping[Any, str]) -> pd.DataFrame:
    """String column names; datetimes as datetime64 (SDMetrics would need a format for strings)."""
    out = df.copy()
    for name, kind in kinds.items():
        if kind == "datetime":
            out[name] = pd.to_datetime(out[name], errors="coerce", format="mixed")
    out.columns = [str(c) for c in out.columns]
    return out


# ----------------------------------------------------------------------------------------------------------------
# Machine-learning efficacy (CTGAN protocol)
# ----------------------------------------------------------------------------------------------------------------


def ml_efficacy(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    synth_df: pd.DataFrame | None,
    target: str,
    seed: int = 0,
    *,
    metadata: Metadata = None,
    positive_label: Any = None,
    identity: bool = True,
    max_rows: int = 50_000,
) -> dict[str, Any]:
    """F1 on the real test set of four classifiers fitted on synthetic rows ("synthetic") and on the real training
    rows ("identity", the ceiling), each with its per-classifier scores and their mean.

    Binary targets score the binary F1 of `positive_label` (default: the rarer class of the real training set,
    ">50K" for Adult); targets with more classes score macro F1. Features follow the CTGAN benchmark: a numeric
    column with min >= 0 and max >= 1000 becomes log(max(x, 0.01)), others (x - min) / (max - min) * 5 (real
    training range; missing -> the real median); a discrete column with at most 2 categories becomes its code,
    others a one-hot over the real training categories (missing is a category). Classifiers as SDGym ran them for
    the paper: AdaBoost(n_estimators=50), DecisionTree(max_depth=20), LogisticRegression(class_weight='balanced',
    max_iter=50), MLP(hidden (50,) for binary, (100,) for multiclass; max_iter=50); each sees at most `max_rows`
    rows (a seeded subsample, as SDGym's 50,000).
    """
    _check_columns(train_df, test_df, "test")
    if synth_df is not None:
        _check_columns(train_df, synth_df, "synthetic")
    if target not in train_df.columns:
        raise DataError(
            f"target column {target!r} is not in the table; pick one of: {', '.join(map(str, train_df.columns))}."
        )
    kinds = resolve_kinds(train_df, metadata)
    classes, positive = _target_classes(train_df[target], kinds[target], target, positive_label)
    task = "binary" if len(classes) == 2 else "multiclass"
    features = _FeatureMaker(train_df.drop(columns=[target]), {c: k for c, k in kinds.items() if c != target})
    x_test, y_test = _xy(features, test_df, target, classes)
    out: dict[str, Any] = {
        "target": target,
        "task": task,
        "f1_average": "binary" if task == "binary" else "macro",
        "positive_label": positive if task == "binary" else None,
    }
    sources = {"identity": train_df if identity else None, "synthetic": synth_df}
    pos_index = classes.index(positive) if positive is not None else None
    for name, df in sources.items():
        if df is None:
            continue
        if len(df) > max_rows:
            df = df.sample(n=max_rows, random_state=seed)
        x, y = _xy(features, df, target, classes)
        scores = _fit_and_score(x, y, x_test, y_test, task, pos_index, seed)
        out[name] = {"mean": float(np.mean(list(scores.values()))), **scores}
    return out


def _target_classes(y: pd.Series, kind: str, target: str, positive_label: Any) -> tuple[list[str], str | None]:
    counts = _as_text(y.dropna()).value_counts()
    if kind not in DISCRETE_KINDS and not (kind == "integer" and len(counts) <= MAX_TARGET_CLASSES):
        raise DataError(
            f"target {target!r} is {kind} with {len(counts)} distinct values; ml_efficacy evaluates classification "
            "(the CTGAN protocol's classification task): pick a categorical target column."
        )
    if len(counts) < 2:
        raise DataError(
            f"target {target!r} has {len(counts)} class(es) in the real training rows; a classifier needs at least 2: "
            "pick another target column."
        )
    classes = sorted(counts.index)
    if len(classes) != 2:
        return classes, None
    if positive_label is None:
        positive = str(counts.index[-1])  # the rarer class; value_counts sorts by frequency, descending
    else:
        positive = str(positive_label)
        if positive not in classes:
            raise DataError(f"positive_label {positive_label!r} is not a class of {target!r}: {classes}.")
    return classes, positive


class _FeatureMaker:
    """The CTGAN benchmark's features, with every statistic taken from the real training table."""

    def __init__(self, real: pd.DataFrame, kinds: Mapping[Any, str]) -> None:
        self.plan: list[tuple[Any, str, Any]] = []
        for name, kind in kinds.items():
            col = real[name]
            if kind in ("continuous", "integer", "datetime"):
                x = _numeric(col, kind)
                lo, hi, med = np.nanmin(x), np.nanmax(x), np.nanmedian(x)
                self.plan.append((name, "log" if lo >= 0 and hi >= 1e3 else "minmax", (kind, lo, hi, med)))
            else:
                cats = sorted(set(_as_text(col)))
                self.plan.append((name, "code" if len(cats) <= 2 else "onehot", cats))

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name, how, info in self.plan:
            if how in ("log", "minmax"):
                kind, lo, hi, med = info
                x = _numeric(df[name], kind)
                x = np.where(np.isnan(x), med, x)
                if how == "log":
                    blocks.append(np.log(np.maximum(x, 1e-2))[:, None])
                else:
                    blocks.append(((x - lo) / (hi - lo if hi > lo else 1.0) * 5.0)[:, None])
            else:
                index = pd.Index(info).get_indexer(_as_text(df[name]))
                if how == "code":
                    blocks.append(index.astype(np.float64)[:, None])
                else:
                    onehot = np.zeros((len(df), len(info)))
                    known = index >= 0
                    onehot[np.flatnonzero(known), index[known]] = 1.0
                    blocks.append(onehot)
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(df), 0))


def _numeric(col: pd.Series, kind: str) -> np.ndarray:
    if kind == "datetime":
        stamps = pd.to_datetime(col, errors="coerce", format="mixed")
        if getattr(stamps.dtype, "tz", None) is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        seconds = stamps.astype("datetime64[ns]").to_numpy().astype(np.int64) / 1e9
        return np.where(stamps.isna().to_numpy(), np.nan, seconds)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)


def _as_text(col: pd.Series) -> pd.Series:
    """Values as text with missing as a token; numbers canonical (1, 1.0 and True's 1 all read "1")."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        x = col.astype(np.float64)
        return x.map(lambda v: MISSING if np.isnan(v) else (str(int(v)) if float(v).is_integer() else repr(v)))
    return col.astype(object).where(col.notna(), MISSING).astype(str)


def _xy(features: _FeatureMaker, df: pd.DataFrame, target: str, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features and class indices; rows whose label is missing or not a real training class are dropped."""
    y = pd.Index(classes).get_indexer(_as_text(df[target]))
    keep = y >= 0
    return features(df.loc[keep]), y[keep]


def _classifiers(task: str, seed: int) -> dict[str, Any]:
    from sklearn.ensemble import AdaBoostClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.tree import DecisionTreeClassifier

    hidden = (50,) if task == "binary" else (100,)
    return {
        "adaboost": AdaBoostClassifier(n_estimators=50, random_state=seed),
        "decision_tree": DecisionTreeClassifier(max_depth=20, random_state=seed),
        "logistic_regression": LogisticRegression(
            solver="lbfgs", class_weight="balanced", max_iter=50, random_state=seed
        ),
        "mlp": MLPClassifier(hidden_layer_sizes=hidden, max_iter=50, random_state=seed),
    }


def _fit_and_score(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, task: str, positive: int | None, seed: int
) -> dict[str, float]:
    from sklearn.metrics import f1_score

    scores = {}
    for name, model in _classifiers(task, seed).items():
        if len(y) == 0:
            pred = np.full(len(y_test), -1)  # no usable rows: every prediction is wrong
        elif len(np.unique(y)) == 1:  # as SDGym: a one-class training set predicts that class
            pred = np.full(len(y_test), y[0])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # max_iter=50 is the protocol; convergence warnings are expected
                pred = model.fit(x, y).predict(x_test)
        if task == "binary":
            scores[name] = float(f1_score(y_test, pred, pos_label=positive, average="binary", zero_division=0))
        else:
            labels = np.unique(y_test)
            scores[name] = float(f1_score(y_test, pred, labels=labels, average="macro", zero_division=0))
    return scores


# ----------------------------------------------------------------------------------------------------------------
# Distance to closest record (privacy)
# ----------------------------------------------------------------------------------------------------------------


def distance_to_closest_record(
    train_df: pd.DataFrame,
    synth_df: pd.DataFrame,
    *,
    holdout_df: pd.DataFrame | None = None,
    metadata: Metadata = None,
    max_rows: int = 10_000,
    seed: int = 0,
) -> dict[str, float]:
    """How close synthetic rows sit to training rows.

    `exact_copy_share`: share of synthetic rows equal to some training row in every column (all rows checked).
    `dcr_*`: Euclidean distance to the closest training row on normalised features (numeric columns scaled by the
    training range to [0, 1]; a categorical mismatch counts 1; missing is its own value), over at most `max_rows`
    synthetic rows (seeded subsample). With `holdout_df` (real rows not trained on), the same numbers for it are
    the reference: real data has duplicates and near neighbours too (Adult's training set repeats 24 rows).
    """
    _check_columns(train_df, synth_df, "synthetic")
    kinds = resolve_kinds(train_df, metadata)
    columns = list(train_df.columns)
    encoder = _DistanceFeatures(train_df, kinds)
    train_keys = set(_row_keys(train_df[columns], kinds))
    train_x = encoder(train_df)
    out = _dcr_stats(synth_df[columns], train_x, train_keys, encoder, kinds, max_rows, seed, prefix="")
    if holdout_df is not None:
        _check_columns(train_df, holdout_df, "hold-out")
        out |= _dcr_stats(holdout_df[columns], train_x, train_keys, encoder, kinds, max_rows, seed, prefix="holdout_")
    return out


def _dcr_stats(
    df: pd.DataFrame,
    train_x: np.ndarray,
    train_keys: set,
    encoder: _DistanceFeatures,
    kinds: Mapping[Any, str],
    max_rows: int,
    seed: int,
    prefix: str,
) -> dict[str, float]:
    from sklearn.neighbors import NearestNeighbors

    copies = np.array([key in train_keys for key in _row_keys(df, kinds)])
    pick = np.arange(len(df))
    if len(df) > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(df), max_rows, replace=False))
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(train_x)
    dist = nn.kneighbors(encoder(df.iloc[pick]), return_distance=True)[0][:, 0]
    # Brute-force distances go through |a|^2 - 2ab + |b|^2, so an exact copy reads ~1e-8, not 0: use the hashes.
    dist = np.where(copies[pick], 0.0, dist)
    q05, q50, q95 = np.quantile(dist, [0.05, 0.5, 0.95])
    return {
        f"{prefix}exact_copy_share": float(copies.mean()),
        f"{prefix}dcr_zero_share": float(np.mean(dist == 0.0)),
        f"{prefix}dcr_q05": float(q05),
        f"{prefix}dcr_median": float(q50),
        f"{prefix}dcr_q95": float(q95),
        f"{prefix}dcr_mean": float(dist.mean()),
    }


def _row_keys(df: pd.DataFrame, kinds: Mapping[Any, str]) -> list[int]:
    """One hash per row over canonical values (numbers as float64, everything else as text, missing as a token),
    so 39 and 39.0 or int and float dtypes of the same value compare equal."""
    canon = {}
    for name in df.columns:
        col = df[name]
        if kinds.get(name) in ("continuous", "integer"):
            canon[name] = pd.to_numeric(col, errors="coerce").astype(np.float64).fillna(np.inf)
        else:
            canon[name] = _as_text(col)
    return pd.util.hash_pandas_object(pd.DataFrame(canon), index=False).tolist()


class _DistanceFeatures:
    def __init__(self, real: pd.DataFrame, kinds: Mapping[Any, str]) -> None:
        self.plan: list[tuple[Any, str, Any]] = []
        for name in real.columns:
            kind = kinds[name]
            if kind in ("continuous", "integer", "datetime"):
                x = _numeric(real[name], kind)
                lo, hi = np.nanmin(x), np.nanmax(x)
                self.plan.append((name, kind, (lo, hi - lo if hi > lo else 1.0)))
            else:
                self.plan.append((name, kind, sorted(set(_as_text(real[name])))))

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name, kind, info in self.plan:
            if kind in ("continuous", "integer", "datetime"):
                lo, span = info
                x = (_numeric(df[name], kind) - lo) / span
                missing = np.isnan(x)
                blocks += [np.where(missing, 0.0, x)[:, None], missing[:, None].astype(np.float64)]
            else:
                index = pd.Index(info).get_indexer(_as_text(df[name]))
                onehot = np.zeros((len(df), len(info)))
                known = index >= 0
                onehot[np.flatnonzero(known), index[known]] = np.sqrt(0.5)  # a mismatch is at distance 1
                blocks.append(onehot)
        return np.concatenate(blocks, axis=1)


# ----------------------------------------------------------------------------------------------------------------
# Pairwise associations (for the correlation-difference plot)
# ----------------------------------------------------------------------------------------------------------------


def association_matrix(df: pd.DataFrame, kinds: Mapping[Any, str]) -> pd.DataFrame:
    """Strength of association of every column pair, in [-1, 1] or [0, 1]: Pearson correlation for two numeric
    columns, the correlation ratio (eta) for a categorical and a numeric column, Cramer's V for two categorical
    columns (the usual mixed-type "correlation" of table-evaluator / dython). Missing values: numeric pairs use
    the rows where both are present; a missing category is a category. Constant columns get NaN."""
    names = [c for c in df.columns if kinds.get(c) != "constant"]
    numeric = {c: _numeric(df[c], kinds[c]) for c in names if kinds[c] in ("continuous", "integer", "datetime")}
    codes = {c: pd.factorize(_as_text(df[c]))[0] for c in names if c not in numeric}
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if a in numeric and b in numeric:
                value = _pearson(numeric[a], numeric[b])
            elif a in numeric or b in numeric:
                num, cat = (numeric[a], codes[b]) if a in numeric else (numeric[b], codes[a])
                value = _correlation_ratio(cat, num)
            else:
                value = _cramers_v(codes[a], codes[b])
            out.loc[a, b] = out.loc[b, a] = value
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 2 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _correlation_ratio(categories: np.ndarray, values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    cats, x = categories[ok], values[ok]
    if len(x) < 2 or np.var(x) == 0:
        return float("nan")
    counts = np.bincount(cats)
    means = np.bincount(cats, weights=x) / np.maximum(counts, 1)
    between = np.sum(counts * (means - x.mean()) ** 2)
    return float(np.sqrt(between / np.sum((x - x.mean()) ** 2)))


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    table = pd.crosstab(a, b).to_numpy(np.float64)
    n, (r, k) = table.sum(), table.shape
    if min(r, k) < 2:
        return float("nan")
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    chi2 = np.sum((table - expected) ** 2 / expected)
    return float(np.sqrt(chi2 / (n * (min(r, k) - 1))))

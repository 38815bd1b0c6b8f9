"""Tabular data: reading, kind detection, the CTGAN transformer's round trip, and the on-device cond sampler."""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import pytest
from conftest import adult_dir

from gan_jax.data.table_io import detect_kinds, read_table, write_table
from gan_jax.data.table_sampler import ConditionSampler, sample_original_cond, sample_train_cond
from gan_jax.data.table_transformer import TableTransformer
from gan_jax.errors import ConfigError, DataError

ADULT_TRAIN = adult_dir() / "adult_train.csv"
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
needs_adult = pytest.mark.skipif(not ADULT_TRAIN.is_file(), reason="shared Adult CSVs not present")


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    if not ADULT_TRAIN.is_file():
        pytest.skip("shared Adult CSVs not present")
    df = read_table(ADULT_TRAIN)
    out = df.iloc[:2000].reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out


@pytest.fixture(scope="module")
def adult_fit(adult):
    tr = TableTransformer(seed=0).fit(adult)
    return tr, tr.transform(adult)


def mixed_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Every kind the transformer handles, with missing values, a rare category, a constant and an empty column."""
    rng = np.random.default_rng(seed)
    price = np.round(np.concatenate([rng.normal(10, 1, n // 2), rng.normal(50, 5, n - n // 2)]), 2)
    count = rng.integers(0, 40, n).astype(np.float64)
    count[rng.random(n) < 0.1] = np.nan  # an integer column with missing values (pandas makes it float64)
    color = rng.choice(["red", "green", "blue"], n).astype(object)
    color[rng.random(n) < 0.1] = np.nan
    color[7] = "violet"  # a category that appears once
    days = pd.to_datetime("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame(
        {
            "price": price,
            "count": count,
            "color": color,
            "flag": rng.random(n) < 0.3,
            "when": days,
            "day": days.strftime("%Y-%m-%d"),
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L", "XL"], ordered=True),
            "code": rng.integers(0, 2, n),  # 0/1 integers: categorical
            "const": np.full(n, 7),
            "empty": np.full(n, np.nan),
        }
    )


# ---- reading ---------------------------------------------------------------------------------------------------


@needs_adult
def test_read_adult_marks_question_marks_missing(adult):
    assert list(adult.columns)[:3] == ["age", "workclass", "fnlwgt"] and adult.shape == (2000, 15)
    assert adult.attrs["na_rep"] == "?"
    assert adult["workclass"].isna().sum() > 0 and "?" not in set(adult["workclass"].dropna())
    assert all(adult[c].dtype == np.int64 for c in ADULT_NUMERIC)
    kinds = detect_kinds(adult)
    assert {c for c, k in kinds.items() if k == "integer"} == set(ADULT_NUMERIC)
    assert {c for c, k in kinds.items() if k == "categorical"} == set(adult.columns) - set(ADULT_NUMERIC)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty \(0 bytes\)"),
        ("a,b\n", "a header but no data rows"),
        ("a,b\n1,x\n", r"only 1 data row"),
        ("a,a\n1,2\n3,4\n", "duplicate column names"),
        ("a,b\n1,2\n3,4,5,6\n", "not a well-formed CSV"),
    ],
)
def test_bad_csv_files_are_refused(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_fit_refuses_a_single_row_and_an_empty_frame():
    with pytest.raises(DataError, match="at least 2 rows"):
        TableTransformer().fit(pd.DataFrame({"a": [1.5], "b": ["x"]}))
    with pytest.raises(DataError, match="no rows"):
        TableTransformer().fit(pd.DataFrame({"a": []}))


def test_mixed_types_are_refused_with_the_fixes(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("x,y\n" + "".join(f"{i},a\n" for i in range(20)) + "unknown,b\nn/a-ish,c\n")
    df = read_table(path)
    with pytest.raises(DataError, match=r"mixes numbers with text: 2 of 22 .*'unknown'.*na_values.*'categorical'"):
        detect_kinds(df)
    with pytest.raises(DataError, match="mixes numbers with text"):
        TableTransformer().fit(df)
    # Either suggested fix works: treat it as categories...
    tr = TableTransformer({"x": "categorical"}).fit(df)
    pd.testing.assert_frame_equal(tr.inverse_transform(tr.transform(df)), df)
    # ... or read the markers as missing.
    clean = read_table(path, na_values=["unknown", "n/a-ish"])
    assert detect_kinds(clean)["x"] == "integer"


# ---- kinds and overrides ---------------------------------------------------------------------------------------


def test_detected_kinds_of_a_mixed_frame():
    assert detect_kinds(mixed_frame()) == {
        "price": "continuous",
        "count": "integer",
        "color": "categorical",
        "flag": "boolean",
        "when": "datetime",
        "day": "datetime",
        "size": "categorical",
        "code": "categorical",
        "const": "constant",
        "empty": "constant",
    }


def test_overrides_from_dict_and_metadata_json(tmp_path):
    df = mixed_frame()
    assert detect_kinds(df, {"count": "categorical"})["count"] == "categorical"
    sdv = {
        "columns": {
            "price": {"sdtype": "numerical", "computer_representation": "Int64"},
            "code": {"sdtype": "numerical"},
        }
    }
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(sdv))
    kinds = detect_kinds(df, path)
    assert kinds["price"] == "integer" and kinds["code"] == "continuous"
    with pytest.raises(ConfigError, match=r"columns the table does not have: \['nope'\]"):
        detect_kinds(df, {"nope": "integer"})
    with pytest.raises(ConfigError, match="kind 'numberish'"):
        detect_kinds(df, {"price": "numberish"})
    with pytest.raises(DataError, match=r"set to continuous but .* not numbers"):
        detect_kinds(df, {"color": "continuous"})
    with pytest.raises(ConfigError, match="metadata file not found"):
        detect_kinds(df, tmp_path / "missing.json")


# ---- round trip ------------------------------------------------------------------------------------------------


@needs_adult
def test_adult_round_trip_is_exact(adult, adult_fit):
    tr, x = adult_fit
    assert x.dtype == np.float32 and x.shape == (len(adult), tr.output_dim)
    assert np.all(np.abs(x[:, [i for i, s in enumerate(_columns_of(tr)) if s == "tanh"]]) <= 0.99)
    back = tr.inverse_transform(x)
    pd.testing.assert_frame_equal(back, adult)  # header, order, dtypes, values (integers exactly), missing
    assert back.attrs["na_rep"] == "?"


def _columns_of(tr: TableTransformer) -> list[str]:
    return [span.activation for span in tr.output_info for _ in range(span.dim)]


def test_mixed_frame_round_trip():
    df = mixed_frame()
    tr = TableTransformer(seed=1).fit(df)
    back = tr.inverse_transform(tr.transform(df))
    assert list(back.columns) == list(df.columns)
    assert list(back.dtypes) == list(df.dtypes)
    for name in ["count", "color", "flag", "when", "day", "size", "code", "const", "empty"]:
        pd.testing.assert_series_equal(back[name], df[name], check_names=False)
    np.testing.assert_allclose(back["price"], df["price"], rtol=1e-9)  # continuous: within tolerance
    assert back["color"].isna().sum() == df["color"].isna().sum() > 0
    assert (back["color"] == "violet").sum() == 1


def test_output_info_spans_and_cond_layout():
    df = mixed_frame()
    tr = TableTransformer().fit(df)
    info = tr.output_info
    assert sum(s.dim for s in info) == tr.output_dim
    discrete = [s for s in info if s.discrete]
    assert [s.column for s in discrete] == ["color", "flag", "size", "code"] == tr.discrete_columns
    assert [s.dim for s in discrete] == [5, 2, 3, 2]  # blue green red violet + missing; categories seen only
    assert tr.cond_dim == 12
    count_spans = [s for s in info if s.column == "count"]  # scalar, modes, missing flag
    assert [s.activation for s in count_spans] == ["tanh", "softmax", "softmax"] and count_spans[2].dim == 2
    assert not any(s.column in ("const", "empty") for s in info)  # constants take no dimensions
    assert tr.cond_index("color", "red") == 2 and tr.cond_index("color", None) == 4
    assert tr.cond_index("flag", True) == 6 and tr.cond_index("code", 1) == 11
    with pytest.raises(ConfigError, match="'purple' is not a category of column 'color'"):
        tr.cond_index("color", "purple")
    with pytest.raises(ConfigError, match="only categorical/boolean columns"):
        tr.cond_index("price", 3.0)


def test_any_model_output_maps_back_inside_the_training_ranges(tmp_path):
    df = mixed_frame()
    tr = TableTransformer().fit(df)
    noise = np.random.default_rng(0).normal(0, 3, (3000, tr.output_dim))
    out = tr.inverse_transform(noise)
    assert list(out.columns) == list(df.columns) and list(out.dtypes) == list(df.dtypes)
    for name in ["price", "count", "when"]:
        assert out[name].min() >= df[name].min() and out[name].max() <= df[name].max()
    counts = out["count"].dropna()
    assert np.all(counts == np.round(counts)) and out["count"].isna().any()
    assert np.all(out["price"] == np.round(out["price"], 2))  # rounded to the decimals seen in training
    assert set(out["color"].dropna()) <= set(df["color"].dropna())
    assert set(out["day"]) <= set(pd.date_range("2020-01-01", "2020-12-31").strftime("%Y-%m-%d"))
    assert (out["const"] == 7).all() and out["empty"].isna().all()
    # Through a CSV and back: same header, dtypes and category sets (the sampled-CSV check of the issue).
    path = tmp_path / "synth.csv"
    write_table(out.drop(columns=["when", "size"]), path)
    again = read_table(path)
    assert list(again.columns) == [c for c in df.columns if c not in ("when", "size")]
    assert again["count"].dtype == df["count"].dtype and again["code"].dtype == df["code"].dtype


@needs_adult
def test_adult_samples_written_as_csv_match_the_source_format(adult, adult_fit, tmp_path):
    tr, _ = adult_fit
    out = tr.inverse_transform(np.random.default_rng(1).normal(0, 2, (500, tr.output_dim)))
    path = tmp_path / "adult_synth.csv"
    write_table(out, path)
    assert path.read_text().splitlines()[0] == ADULT_TRAIN.read_text().splitlines()[0]
    assert ",?," in path.read_text() or ",?\n" in path.read_text()  # missing written as the source's marker
    again = read_table(path)
    assert list(again.dtypes) == list(adult.dtypes)
    for name in adult.columns:
        if name in ADULT_NUMERIC:
            assert adult[name].min() <= again[name].min() and again[name].max() <= adult[name].max()
        else:
            assert set(again[name].dropna()) <= set(adult[name].dropna())


def test_fit_is_deterministic_and_serialises(tmp_path):
    df = mixed_frame()
    a, b = TableTransformer(seed=3).fit(df), TableTransformer(seed=3).fit(df)
    assert a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(a.transform(df), b.transform(df))
    path = tmp_path / "transformer.json"
    a.save(path)
    loaded = TableTransformer.load(path)
    assert loaded.output_info == a.output_info
    np.testing.assert_array_equal(loaded.transform(df), a.transform(df))
    noise = np.random.default_rng(0).normal(size=(50, a.output_dim))
    pd.testing.assert_frame_equal(loaded.inverse_transform(noise), a.inverse_transform(noise))
    with pytest.raises(DataError, match="not fitted"):
        _ = TableTransformer().output_info


# ---- sensible handling of awkward columns ----------------------------------------------------------------------


def test_constant_all_missing_and_single_occurrence_columns_are_kept():
    df = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 50),
            "same": ["k"] * 50,
            "nothing": np.full(50, np.nan, dtype=object),
            "rare": ["a"] * 49 + ["once"],
        }
    )
    tr = TableTransformer().fit(df)
    assert tr.kinds == {"x": "continuous", "same": "constant", "nothing": "constant", "rare": "categorical"}
    back = tr.inverse_transform(tr.transform(df))
    pd.testing.assert_frame_equal(back, df, check_exact=False)
    sampler = ConditionSampler.from_data(tr.transform(df), tr.output_info)
    probs = sampler.train_probabilities()[0]
    np.testing.assert_allclose(probs, np.log1p([49, 1]) / np.log1p([49, 1]).sum(), rtol=1e-6)
    batch = sampler.sample_train(jax.random.key(0), 4000)
    once = np.asarray(batch.cond)[:, 1] == 1
    assert 0.05 < once.mean() < 0.25 and np.all(np.asarray(batch.rows)[once] == 49)


def test_refusals_for_unusable_tables():
    with pytest.raises(DataError, match="every column of the table is constant"):
        TableTransformer().fit(pd.DataFrame({"a": [1, 1, 1], "b": [None, None, None]}))
    with pytest.raises(DataError, match="duplicate column names"):
        TableTransformer().fit(pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]))
    with pytest.raises(DataError, match=r"distinct values .* identifier"):
        TableTransformer(max_categories=10).fit(pd.DataFrame({"id": [f"u{i}" for i in range(30)], "v": range(30)}))
    tr = TableTransformer().fit(pd.DataFrame({"c": ["a", "b"] * 10, "v": np.arange(20.0)}))
    with pytest.raises(DataError, match=r"not seen when fitting \(e.g. 'z'\)"):
        tr.transform(pd.DataFrame({"c": ["a", "z"], "v": [1.0, 2.0]}))
    with pytest.raises(DataError, match=r"lacks columns \['v'\]"):
        tr.transform(pd.DataFrame({"c": ["a"]}))
    with pytest.raises(DataError, match=r"expects shape \(N, "):
        tr.inverse_transform(np.zeros((3, tr.output_dim + 1)))


# ---- conditional vectors and training-by-sampling --------------------------------------------------------------


@needs_adult
def test_train_cond_follows_log_frequency_and_matches_rows(adult, adult_fit):
    tr, x = adult_fit
    sampler = ConditionSampler.from_data(x, tr.output_info)
    assert sampler.cond_dim == tr.cond_dim and sampler.n_discrete == 9
    arrays = jax.device_put(sampler.arrays)
    draw = jax.jit(lambda key: sample_train_cond(arrays, key, 50_000))
    batch = jax.tree.map(np.asarray, draw(jax.random.key(0)))
    assert batch.cond.shape == (50_000, tr.cond_dim) and batch.mask.shape == (50_000, 9)
    assert np.all(batch.cond.sum(1) == 1) and np.all(batch.mask.sum(1) == 1)
    col = batch.mask.argmax(1)
    np.testing.assert_allclose(np.bincount(col, minlength=9) / 50_000, 1 / 9, atol=0.01)  # columns uniformly
    counts = tr.category_counts()
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in counts])])
    for d, count in enumerate(counts):
        chosen = batch.cond[col == d][:, offsets[d] : offsets[d + 1]].argmax(1)
        freq = np.bincount(chosen, minlength=len(count)) / len(chosen)
        expected = np.log1p(count) / np.log1p(count).sum()
        np.testing.assert_allclose(freq, expected, atol=0.02)
    # every row drawn has the conditioned category in the transformed data
    disc_cols = np.concatenate(
        [np.arange(s, s + sp.dim) for s, sp in zip(_starts(tr), tr.output_info, strict=True) if sp.discrete]
    )
    assert np.all((x[batch.rows][:, disc_cols] * batch.cond).sum(1) == 1)


def _starts(tr: TableTransformer) -> list[int]:
    return list(np.cumsum([0] + [s.dim for s in tr.output_info])[:-1])


@needs_adult
def test_generation_cond_follows_empirical_frequency(adult, adult_fit):
    tr, x = adult_fit
    for sampler in (ConditionSampler.from_data(x, tr.output_info), ConditionSampler.from_counts(tr.category_counts())):
        cond = np.asarray(sampler.sample_original(jax.random.key(1), 45_000))
        income = slice(tr.cond_index("income", "<=50K"), tr.cond_index("income", ">50K") + 1)
        picked = cond[:, income].sum(0)
        share = picked[1] / picked.sum()
        assert abs(share - (adult["income"] == ">50K").mean()) < 0.02
    fixed = np.asarray(sampler.fixed(tr.cond_index("sex", "Female"), 8))
    assert fixed.shape == (8, tr.cond_dim) and np.all(fixed[:, tr.cond_index("sex", "Female")] == 1)
    with pytest.raises(ConfigError, match="no row tables"):
        ConditionSampler.from_counts(tr.category_counts()).sample_train(jax.random.key(0), 10)


def test_sampler_without_discrete_columns_samples_rows_uniformly():
    df = pd.DataFrame({"a": np.linspace(0, 1, 40), "b": np.arange(40)})
    tr = TableTransformer().fit(df)
    sampler = ConditionSampler.from_data(tr.transform(df), tr.output_info)
    batch = sampler.sample_train(jax.random.key(0), 100)
    assert batch.cond.shape == (100, 0) and batch.mask.shape == (100, 0)
    assert int(batch.rows.min()) >= 0 and int(batch.rows.max()) < 40
    assert sample_original_cond(sampler.arrays, jax.random.key(0), 5).shape == (5, 0)

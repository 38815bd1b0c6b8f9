"""A CSV as a DataSource: rows in model space on device plus CTGAN's condition sampler (the tabular extra)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gan_jax.config import DataConfig
from gan_jax.data.source import Array, Batch, DataSource
from gan_jax.data.table_files import resolve_table_path
from gan_jax.data.table_io import read_table
from gan_jax.data.table_sampler import ConditionSampler, sample_train_cond
from gan_jax.data.table_transformer import TableTransformer
from gan_jax.errors import ConfigError


def _sample_table(arrays: dict[str, Array], key: Array, batch_size: int) -> Batch:
    """CTGAN's training-by-sampling: a condition (column, category by log-frequency), and for each a real row
    that has it. `y` carries the condition to G and D and the chosen column for G's conditional loss."""
    drawn = sample_train_cond(arrays["cond"], key, batch_size)
    return {"x": arrays["rows"][drawn.rows], "y": {"cond": drawn.cond, "mask": drawn.mask}}


def table_source(cfg: DataConfig, transformer: TableTransformer | None = None) -> DataSource:
    """A CSV in model space: rows transformed once (mode-specific normalisation, one-hots) and kept on device
    with the condition sampler's tables. `transformer`: a saved, fitted one (a run's transformer.json), so a
    restored run maps rows exactly as it was trained, without refitting."""
    path = resolve_table_path(cfg.path or "", cfg.root)
    df = read_table(path)
    if cfg.target is not None and cfg.target not in df.columns:
        raise ConfigError(
            f"data.target={cfg.target!r} is not a column of {path}; its columns are: {', '.join(map(str, df.columns))}"
        )
    if transformer is None:
        overrides = cfg.metadata or dict(cfg.columns) or None
        if cfg.metadata and cfg.columns:
            raise ConfigError("set data.columns or data.metadata, not both (both name column kinds)")
        transformer = TableTransformer(overrides).fit(df)
    rows = transformer.transform(df)
    sampler = ConditionSampler.from_data(rows, transformer.output_info)
    test_df = read_table(resolve_table_path(cfg.test_path, cfg.root)) if cfg.test_path else None
    arrays = {"rows": jnp.asarray(rows), "cond": jax.tree_util.tree_map(jnp.asarray, sampler.arrays)}
    info = {"transformer": transformer, "table": df, "test_table": test_df, "path": str(path)}
    return DataSource(path.stem, "table", arrays, _sample_table, (rows.shape[1],), None, info)


def saved_table_source(name: str, transformer: TableTransformer) -> DataSource:
    """What sampling a trained table run needs, without its CSV: the fitted transformer (model space, the
    category counts that conditions are drawn from). No training rows: `sample` would fail, and is not used."""
    sampler = ConditionSampler.from_counts(transformer.category_counts())
    arrays = {"cond": jax.tree_util.tree_map(jnp.asarray, sampler.arrays)}
    info = {"transformer": transformer, "table": None, "test_table": None, "path": None}
    return DataSource(name, "table", arrays, _sample_table, (transformer.output_dim,), None, info)

"""Table evaluation during training and in `gan-jax-eval`: sampled rows in, metric values and protocol out.

Metric names (`eval.metrics` for data=csv):

- `quality`: SDMetrics QualityReport: `quality` (overall), `quality_column_shapes`, `quality_pair_trends`.
- `ml_efficacy`: the CTGAN protocol's F1 on the real test set (`data.test_path`) of four classifiers fitted on
  the synthetic rows: `ml_f1` (mean) and `ml_f1_<classifier>`; the identity ceiling (fitted on the real training
  rows) is computed once and stored in the protocol. Needs `data.target` and `data.test_path`; it fits four
  scikit-learn models, so it is the slow one (about half a minute on Adult).
- `dcr`: distance to the closest training record: `exact_copy_share`, `dcr_median`, ... (with the test rows as
  the hold-out reference when there are some).

`auto` picks all three where they apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gan_jax.data.table_transformer import TableTransformer
from gan_jax.errors import ConfigError
from gan_jax.metrics.catalog import TABLE_METRICS
from gan_jax.metrics.tabular import distance_to_closest_record, ml_efficacy, quality_report


def table_metric_names(requested: list[str], target: str | None, has_test: bool) -> list[str]:
    """`eval.metrics` for a table, with `auto` resolved; refuses names that do not apply, naming the fix."""
    if requested == ["auto"]:
        return ["quality", *(["ml_efficacy"] if target and has_test else []), "dcr"]
    names = [n for n in requested if n != "none"]
    for name in names:
        if name not in TABLE_METRICS:
            raise ConfigError(f"eval.metrics: unknown table metric {name!r}; choose from {', '.join(TABLE_METRICS)}")
    if "ml_efficacy" in names and not (target and has_test):
        raise ConfigError(
            "eval.metrics: ml_efficacy needs data.target=<categorical column> and data.test_path=<held-out CSV>"
        )
    return names


@dataclass
class TableEvaluator:
    """Scores model-space rows (what the generator outputs) against the real table."""

    transformer: TableTransformer
    real: pd.DataFrame
    test: pd.DataFrame | None
    target: str | None
    metrics: list[str]
    seed: int = 0
    identity: dict[str, Any] | None = field(default=None, init=False)  # ML efficacy of the real rows (once)

    def __call__(self, rows: np.ndarray) -> tuple[dict[str, float], dict[str, Any]]:
        synth = self.transformer.inverse_transform(rows)
        values: dict[str, float] = {}
        if "quality" in self.metrics:
            q = quality_report(self.real, synth, self.transformer)
            values |= {
                "quality": q["overall"],
                "quality_column_shapes": q["column_shapes"],
                "quality_pair_trends": q["column_pair_trends"],
            }
        if "ml_efficacy" in self.metrics:
            assert self.target is not None and self.test is not None  # table_metric_names checked
            scores = ml_efficacy(
                self.real, self.test, synth, self.target, self.seed,
                metadata=self.transformer, identity=self.identity is None,
            )  # fmt: skip
            if self.identity is None:
                self.identity = scores["identity"]
            values["ml_f1"] = scores["synthetic"]["mean"]
            values |= {f"ml_f1_{k}": v for k, v in scores["synthetic"].items() if k != "mean"}
        if "dcr" in self.metrics:
            dcr = distance_to_closest_record(
                self.real, synth, holdout_df=self.test, metadata=self.transformer, seed=self.seed
            )
            values |= dcr
        return values, self.protocol(len(synth))

    def protocol(self, n_fake: int) -> dict[str, Any]:
        out: dict[str, Any] = {"n_real": len(self.real), "n_fake": n_fake, "metrics": list(self.metrics)}
        if self.test is not None:
            out["n_test"] = len(self.test)
        if self.identity is not None:
            out["ml_f1_identity"] = self.identity["mean"]
            out["ml_f1_identity_by_classifier"] = {k: v for k, v in self.identity.items() if k != "mean"}
            out["ml_target"] = self.target
        return out

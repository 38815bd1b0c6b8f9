"""The metric names `eval.metrics` may list, by the kind of data they score (toy | images | table).

Image metrics that need the digit classifier apply to digits, mnist and stacked_mnist, and with the same net trained
on Fashion-MNIST to fashion_mnist; fid / kid / prdc need the converted FID Inception weights, `is` the converted
IS Inception (`gan_jax.metrics.inception_is`). A plug-in registers
an image metric with its scorer, `METRICS.register("name", fn, kind="images")` where `fn(fake, real) -> {value name:
float}` takes uint8 NHWC arrays; `eval.metrics=[name]` then runs it at every evaluation and in gan-jax-eval.
"""

from __future__ import annotations

from gan_jax.registry import METRICS

CLASSIFIER_METRICS = (
    "classifier_fid",
    "classifier_kid",
    "classes",
    "class_accuracy",
    "stacked_modes",
    "duplicates",
    "memorization",
)
INCEPTION_METRICS = ("fid", "kid", "prdc")
INCEPTION_SCORE_METRICS = ("is",)
TABLE_METRICS = ("quality", "ml_efficacy", "dcr")

METRICS.register("mixture", "mixture", kind="toy")
for _name in CLASSIFIER_METRICS:
    METRICS.register(_name, _name, kind="images", needs="digit or Fashion-MNIST classifier")
for _name in INCEPTION_METRICS:
    METRICS.register(_name, _name, kind="images", needs="FID Inception weights")
METRICS.register("is", "is", kind="images", needs="the IS Inception (pt_inception-2015-12-05-6726825d.pth, converted)")
for _name in TABLE_METRICS:
    METRICS.register(_name, _name, kind="table")


def metric_names(kind: str) -> tuple[str, ...]:
    """The registered metric names for one kind of data."""
    return tuple(n for n in METRICS.names() if (METRICS.entry(n).info or {}).get("kind") == kind)

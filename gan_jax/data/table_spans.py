"""The layout of a table row in model space (`Span`), apart from the transformer that fits it: the CTGAN
networks and the condition sampler need only this, and it needs no pandas."""

from __future__ import annotations

from typing import NamedTuple


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

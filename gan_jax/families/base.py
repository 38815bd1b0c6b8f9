"""The family contract: what the loop, checkpoints, sharding, populations, the evaluator and the CLIs need from a
GAN family, and nothing else.

A family is a frozen (hashable, array-free) dataclass built once per run by its registered builder
`build(cfg, source) -> Family`. It owns:

* `init(seed) -> TrainState`: pure; its networks under `state.nets` by name, its extras in `state.extra`.
* `phases() -> tuple[Phase, ...]`: the updates of one train step, in order, each a pure function
  `(state, arrays, key) -> (state, metrics)`. A phase may repeat (`repeat=5`: five critic updates in a
  `lax.scan`) or run every k-th step (`every=16`: lazy regularisation, as stylegan2-ada's Gmain / Greg / Dmain /
  Dreg); the generic step (train/step.py) schedules them, so a family writes no `lax.cond` of its own for that.
* `finite_checks(metrics, state)`: one boolean per name of `nonfinite_quantities` (the divergence guard).
* `sampler(batch_size)`: a jitted function `(state, key, inputs) -> outputs` in evaluation mode.
* `evaluator(cfg, source)`: its default metrics (an object with `samples`, `metrics`, `plot`, `__call__`,
  `protocol`, `best_metric`).

Spreading over devices is the `layout` field: the sharding module replaces it (`with_layout`), and a family
calls `layout.split_batch` on every batch it draws and `layout.replica_mean` on gradients and metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import flax.linen as nn
import jax

from gan_jax.train.state import TrainState

Array = jax.Array
Metrics = dict[str, Array]
Update = Callable[[TrainState, dict[str, Array], Array], tuple[TrainState, Metrics]]


@dataclass(frozen=True)
class Layout:
    """How one replica's step spreads over devices (set by train.sharding; the defaults are one device)."""

    axis_name: str | None = None  # pmap: the device axis that gradients, metrics and batch norm average over
    batch_sharding: Any = None  # jit over a mesh: a NamedSharding that splits the batch axis across devices
    replicas: int = 1  # pmap: devices that each draw batch_size / replicas examples

    def split_batch(self, tree: Any) -> Any:
        """Under jit over a device mesh: lay the batch axis out across devices (one device: unchanged)."""
        return tree if self.batch_sharding is None else jax.lax.with_sharding_constraint(tree, self.batch_sharding)

    def replica_mean(self, tree: Any) -> Any:
        """Under pmap: the mean over devices, i.e. the value for the global batch (otherwise unchanged)."""
        return tree if self.axis_name is None else jax.lax.pmean(tree, self.axis_name)

    def device_key(self, key: Array) -> Array:
        """Under pmap each device draws its own part of the batch: fold in the device index."""
        return key if self.axis_name is None else jax.random.fold_in(key, jax.lax.axis_index(self.axis_name))

    def per_replica(self, batch_size: int) -> int:
        return batch_size // self.replicas

    def apply(self, module: nn.Module, *args: Any, **kwargs: Any) -> Any:
        """`module.apply(...)` with every BatchNorm averaging its statistics over pmap's device axis (any module:
        a Flax method interceptor sets `axis_name` on each BatchNorm it meets; no list of model classes)."""
        if self.axis_name is None:
            return module.apply(*args, **kwargs)
        with nn.intercept_methods(_sync_batch_norm(self.axis_name)):
            return module.apply(*args, **kwargs)


def _sync_batch_norm(axis_name: str) -> Callable[..., Any]:
    def interceptor(next_fun: Callable[..., Any], args: Any, kwargs: Any, context: Any) -> Any:
        module = context.module
        if isinstance(module, nn.BatchNorm) and context.method_name == "__call__" and module.axis_name is None:
            object.__setattr__(module, "axis_name", axis_name)  # a bound clone of the layer, made for this call
        return next_fun(*args, **kwargs)

    return interceptor


@dataclass(frozen=True)
class Phase:
    """One update of a train step. `repeat` > 0: that many updates in a lax.scan over split keys (their
    metrics: the last update's); `every` > 1: only at steps divisible by it (lazy regularisation)."""

    name: str
    update: Update
    repeat: int = 0
    every: int = 1


class Family:
    """Base of every family (see the module docstring); subclasses are frozen dataclasses with a `layout` field."""

    name: ClassVar[str] = "family"
    nonfinite_quantities: ClassVar[tuple[str, ...]] = ()
    layout: Layout
    on_nonfinite: str

    def init(self, seed: int) -> TrainState:
        raise NotImplementedError

    def phases(self) -> tuple[Phase, ...]:
        raise NotImplementedError

    def finite_checks(self, metrics: Metrics, state: TrainState) -> tuple[Array, ...]:
        raise NotImplementedError

    def sampler(self, batch_size: int) -> Callable[..., Any]:
        raise NotImplementedError

    def evaluator(self, cfg: Any, source: Any) -> Any:
        raise NotImplementedError

    def with_layout(self, layout: Layout) -> Family:
        return dataclasses.replace(self, layout=layout)  # type: ignore[type-var]

    def describe(self, state: TrainState) -> dict[str, Any]:
        """Facts for the run summary (parameter counts by network)."""
        from gan_jax.train.state import count_params

        return {f"{name}_params": count_params(net.params) for name, net in state.nets.items()}

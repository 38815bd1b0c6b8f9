"""The generic train step: a family's phases in order, then the divergence guard, as one pure function.

`train_steps(family, k)` fuses k steps with `lax.scan`, so per-step Python and host-device overhead is paid once
per k steps; batches are drawn inside the phases from device-resident arrays. Keys: the step key is
`fold_in(state.key, step)` (and under pmap `fold_in(that, device index)`); phase i gets `fold_in(step_key, i)`,
split into `repeat` keys for a repeated phase. This file names no family: it knows only `families.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.families.base import Family, Metrics, Phase
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.train.state import TrainState

Array = jax.Array
TrainFn = Callable[[TrainState, dict], tuple[TrainState, Metrics]]


def _run_phase(phase: Phase, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple[TrainState, Metrics]:
    """One phase: once, `repeat` times in a scan (metrics stacked), or only every `every`-th step."""

    def run(s: TrainState) -> tuple[TrainState, Metrics]:
        if phase.repeat:
            keys = jax.random.split(key, phase.repeat)
            return jax.lax.scan(lambda si, k: phase.update(si, arrays, k), s, keys)
        return phase.update(s, arrays, key)

    if phase.every <= 1:
        return run(state)
    shapes = jax.eval_shape(run, state)[1]

    def skip(s: TrainState) -> tuple[TrainState, Metrics]:
        return s, jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)

    return jax.lax.cond(state.step % phase.every == 0, run, skip, state)


def train_step(family: Family, state: TrainState, arrays: dict[str, Array]) -> tuple[TrainState, Metrics]:
    """One step of every phase, then the guard. Metrics: each phase's (a repeated phase: its last update's),
    plus `nonfinite`, the guard's bit mask."""
    step_key = family.layout.device_key(jax.random.fold_in(state.key, state.step))
    new, raw, last = state, {}, {}
    for i, phase in enumerate(family.phases()):
        new, metrics = _run_phase(phase, new, arrays, jax.random.fold_in(step_key, i))
        raw |= metrics
        last |= jax.tree_util.tree_map(lambda m: m[-1], metrics) if phase.repeat else metrics
    mask = nonfinite_mask(family.finite_checks(raw, new))
    return guard_nonfinite(family.on_nonfinite, state, new, mask), {**last, "nonfinite": mask}


def nonfinite_mask(checks: tuple[Array, ...]) -> Array:
    """A bit per entry of the family's nonfinite_quantities that holds a NaN or Inf (0: all finite)."""
    return sum(jnp.where(ok, 0, 1 << bit) for bit, ok in enumerate(checks)).astype(jnp.int32)


def describe_nonfinite(family: Family, mask: int) -> str:
    return ", ".join(name for bit, name in enumerate(family.nonfinite_quantities) if mask & (1 << bit))


def _select(pred: Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def guard_nonfinite(mode: str, old: TrainState, new: TrainState, mask: Array) -> TrainState:
    """The divergence guard. `skip`: a step with a non-finite value leaves the state as it was (but the step
    counter moves on, so the next step draws fresh keys) and is counted. `stop`: the first such step freezes
    the state at the last good values and records the step and what went wrong, for the host loop to report."""
    ok = mask == 0
    if mode == "skip":
        kept = _select(ok, new, old)
        return kept.replace(step=old.step + 1, nonfinite_skipped=old.nonfinite_skipped + (~ok).astype(jnp.int32))
    halted = old.nonfinite_step >= 0
    apply = ok & ~halted
    first_bad = ~ok & ~halted
    kept = _select(apply, new, old)
    return kept.replace(
        step=jnp.where(apply, old.step + 1, old.step),
        nonfinite_step=jnp.where(first_bad, old.step, old.nonfinite_step),
        nonfinite_what=jnp.where(first_bad, mask, old.nonfinite_what),
    )


def _mean_over_good_steps(metrics: Metrics, count_skipped: bool) -> Metrics:
    """Means over the fused steps whose values were finite (NaN when none was); optionally the skip count."""
    ok = metrics.pop("nonfinite") == 0
    n_ok = jnp.sum(ok)
    means = {
        k: jnp.where(n_ok > 0, jnp.sum(jnp.where(ok, m.astype(jnp.float32), 0.0)) / jnp.maximum(n_ok, 1), jnp.nan)
        for k, m in metrics.items()
    }
    if count_skipped:
        means["nonfinite_skipped"] = jnp.sum(~ok).astype(jnp.float32)
    return means


def train_steps(family: Family, steps: int) -> TrainFn:
    """`steps` train steps as one pure function (not jitted): what `make_train_fn` jits and the sharding and
    population modules map over devices or members. Returns the new state and metrics averaged over the steps;
    steps the divergence guard rejected are left out of the means (see `guard_nonfinite`)."""

    def run(state: TrainState, arrays: dict[str, Array]) -> tuple[TrainState, Metrics]:
        state, metrics = jax.lax.scan(lambda s, _: train_step(family, s, arrays), state, None, length=steps)
        return state, _mean_over_good_steps(metrics, count_skipped=family.on_nonfinite == "skip")

    return run


def make_train_fn(family: Family, steps: int) -> TrainFn:
    """`steps` train steps in one jitted dispatch (see `train_steps`).

    The input state is donated: its buffers are reused for the output, so call it as `state = fn(state, ...)`.
    """
    return jax.jit(train_steps(family, steps), donate_argnums=0, compiler_options=cpu_compiler_options())


def sample_generator(
    sample_fn: Callable[..., Array],
    state: TrainState,
    key: Array,
    n: int,
    labels: Any = None,
    batch_size: int | None = None,
) -> Array:
    """n samples from a family's sampler (`family.sampler(batch_size)`), batch by batch (the last is trimmed).

    `labels`: n int class labels for a class-conditional G, with the sampler's `batch_size`; each batch takes
    the next ones (the last is padded with label 0 and trimmed), so sample i is drawn for labels[i]."""
    if labels is not None and batch_size is None:
        raise ValueError("sample_generator: pass the sampler's batch_size together with labels")
    labels = None if labels is None else np.asarray(labels, np.int32)
    chunks, total = [], 0
    while total < n:
        k = jax.random.fold_in(key, len(chunks))
        if labels is None:
            chunks.append(sample_fn(state, k))
        else:
            part = labels[total : total + batch_size]
            chunks.append(sample_fn(state, k, jnp.asarray(np.pad(part, (0, batch_size - len(part))))))
        total += chunks[-1].shape[0]
    return jnp.concatenate(chunks)[:n]

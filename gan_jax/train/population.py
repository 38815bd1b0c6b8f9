"""Populations (`train.population=N`): N independent runs as one state with a leading member axis, trained by
one vmapped program. Member i has its own seed and its own values of any numeric config key
(`population.vary={optim.g.lr: [...], loss.gp_weight: [...]}`): the family is rebuilt inside the vmapped
function from a config whose varied keys hold the member's traced values, so no key needs code of its own.
Per-member loggers write members/<i>/metrics.jsonl as the single run would; per-member evaluators score each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config, population_values, replace_key
from gan_jax.errors import ConfigError, warn
from gan_jax.train.state import TrainState


def member_seeds(cfg: Config) -> list[int]:
    """Seeds of the population members: `population.seeds`, or seed, seed + 1, ..."""
    return list(cfg.population.seeds) or [cfg.seed + i for i in range(cfg.train.population)]


def member_values(cfg: Config) -> dict[str, np.ndarray]:
    """The per-member values by dotted config key, as arrays [population] of the key's type (int32 / float32)."""
    out = {}
    for key, values in population_values(cfg).items():
        current = cfg
        for part in key.split("."):
            current = getattr(current, part)
        out[key] = np.asarray(values, np.int32 if isinstance(current, int) else np.float32)
    return out


def with_member_values(cfg: Config, values: Mapping[str, Any]) -> Config:
    """`cfg` with each varied key set to a member's (traced) value."""
    for key, value in values.items():
        cfg = replace_key(cfg, key, value)
    return cfg


def structural_keys_error(keys: Sequence[str], err: Exception) -> ConfigError:
    return ConfigError(
        f"population.vary: {', '.join(keys)} cannot vary across members: the value shapes the compiled program "
        f"({type(err).__name__}); vary learning rates, loss weights or decay rates, or run a Hydra sweep "
        "(-m) for structural keys"
    )


def stack_states(states: Sequence[TrainState]) -> TrainState:
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)


def population_state(family: Any, cfg: Config) -> TrainState:
    """The initial state of a run: one member's, or every member's (its seed) stacked along a leading axis."""
    if cfg.train.population == 1:
        return family.init(cfg.seed)
    return stack_states([family.init(seed) for seed in member_seeds(cfg)])


def member_state(state: TrainState, i: int) -> TrainState:
    """Member i of a stacked population state."""
    return jax.tree_util.tree_map(lambda x: x[i], state)


def member_dirs(run_dir: Path, size: int) -> list[Path]:
    return [run_dir / "members" / str(i) for i in range(size)]


class PopulationEvaluator:
    """The Evaluator interface over a population: each member is sampled and scored like a single run, its
    plots go to members/<i>/plots; values come back as per-member lists."""

    def __init__(self, evaluators: list[Any], plots_dirs: list[Path]) -> None:
        self.evaluators, self.plots_dirs = evaluators, plots_dirs

    @property
    def protocol(self) -> Any:
        return getattr(self.evaluators[0], "protocol", {})

    def __call__(self, state: TrainState, plots_dir: Path, title: str) -> tuple[dict[str, list], list[Path]]:
        del plots_dir  # per member, below
        values: dict[str, list] = {}
        pngs = []
        for i, evaluator in enumerate(self.evaluators):
            metrics, png = evaluator(member_state(state, i), self.plots_dirs[i], f"{title}, member {i}")
            for key, value in metrics.items():
                values.setdefault(key, [float("nan")] * len(self.evaluators))[i] = value
            pngs.append(png)
        return values, pngs


def _split(values: Mapping[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-member dicts from values that are per-member lists (length n) or shared by all members."""

    def pick(v: Any, i: int) -> Any:
        return v[i] if isinstance(v, list | tuple | np.ndarray) and len(v) == n else v

    return [{k: pick(v, i) for k, v in values.items()} for i in range(n)]


class PopulationLogger:
    """The Logger interface over a population. Member i's values go to members/<i>/metrics.jsonl (the same lines
    a single run with its seed and hyperparameters writes) and its summary.json; the run's own metrics.jsonl
    and W&B run get every member's values as `m<i>/<name>`; timing stays run-level."""

    def __init__(self, top: Any, members: list[Any], member_dirs: list[Path], info: list[dict[str, Any]]) -> None:
        self.top, self.members, self.member_dirs, self.info = top, members, member_dirs, info

    @property
    def run_id(self) -> str | None:
        return self.top.run_id

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        per_member = _split(metrics, len(self.members))
        for logger, values in zip(self.members, per_member, strict=True):
            logger.log(step, values)
        self.top.log(step, {f"m{i}/{k}": v for i, values in enumerate(per_member) for k, v in values.items()})

    def log_timing(self, step: int, values: Mapping[str, float]) -> None:
        self.top.log_timing(step, values)

    def log_image(self, step: int, key: str, png: Any) -> None:
        for i, path in enumerate(png if isinstance(png, list) else [png]):
            self.top.log_image(step, f"m{i}/{key}", path)

    def advance(self, step: int) -> None:
        self.top.advance(step)

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Each member's summary.json (with its seed and hyperparameters) and loss plot; the run's summary.json
        lists them under `members`."""
        from gan_jax import plots
        from gan_jax.logging import METRICS_FILE, read_metrics

        per_member = [
            {**values, **info} for values, info in zip(_split(summary, len(self.members)), self.info, strict=True)
        ]
        for logger, directory, values in zip(self.members, self.member_dirs, per_member, strict=True):
            if (directory / METRICS_FILE).is_file():
                title = f"member {values['member']} (seed {values['seed']}): step {values.get('step')}"
                plots.plot_losses(read_metrics(directory / METRICS_FILE), directory / "plots" / "losses.png", title)
            logger.finish(values)
        shared = {k: v for k, v in summary.items() if not isinstance(v, list)}
        self.top.finish({**shared, "population": len(self.members), "members": per_member})

    def close(self, exit_code: int = 0, preempted: bool = False) -> None:
        for logger in self.members:
            logger.close(exit_code=exit_code)
        self.top.close(exit_code=exit_code, preempted=preempted)


def warn_member_stopped(i: int, step: int, what: str) -> None:
    warn(
        f"population member {i}: non-finite {what} at step {step}; this member stopped (train.on_nonfinite=stop) "
        "and keeps its last good weights while the others train on"
    )

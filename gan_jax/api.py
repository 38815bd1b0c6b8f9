"""The Python API, for notebooks and scripts that do not use Hydra's command line:

    import gan_jax
    cfg = gan_jax.config("toy_ring", "train.steps=2000")   # exactly what `gan-jax-train experiment=toy_ring ...` runs
    summary = gan_jax.train(cfg, "runs/ring")
    gen = gan_jax.load("runs/ring", checkpoint="best")
    x = gen.sample(1000, seed=0)                            # numpy: 2-D points, images in [-1, 1], model-space rows

For a loop of your own, the Flax-example building blocks: `create_state(cfg)` gives (family, state, source) and
`train_step(family)` the jitted pure step `state, metrics = step(state, source.arrays)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gan_jax.config import Config
from gan_jax.errors import ConfigError


def config(experiment: str | None = None, *overrides: str, plugins: Sequence[str] = ()) -> Config:
    """The typed config `gan-jax-train [experiment=NAME] OVERRIDES...` composes (the same files and defaults).
    `plugins`: modules to import first (or pass "plugins=[...]" among the overrides, as on the command line)."""
    from hydra import compose, initialize_config_dir

    from gan_jax.cli.common import CONFIG_DIR, expand_dict_overrides, prepare
    from gan_jax.config import one_line, to_config

    args = expand_dict_overrides(([f"experiment={experiment}"] if experiment else []) + list(overrides))
    if plugins:
        args.append(f"plugins=[{','.join(plugins)}]")
    prepare(args)
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            composed = compose("config", overrides=args)
    except Exception as err:  # Hydra composition errors: one line, as the CLI prints them
        from gan_jax.cli.common import describe_config_error

        raise ConfigError(describe_config_error(err, args) or one_line(err)) from err
    return to_config(composed)


def train(cfg: Config, out_dir: str | Path) -> dict[str, Any]:
    """Trains into `out_dir` (as gan-jax-train with hydra.run.dir=out_dir); returns the run summary."""
    from gan_jax.train.loop import train as train_run

    return train_run(cfg, out_dir)


@dataclass
class Generator:
    """A trained run's sampler: `sample(n, seed)` as `gan-jax-sample` draws (the EMA weights when the run kept
    them). `labels` picks the classes of a class-conditional run."""

    run_dir: Path
    cfg: Config
    family: Any
    state: Any
    source: Any

    @property
    def step(self) -> int:
        return int(self.state.step)

    def sample(self, n: int, seed: int = 0, labels: Sequence[int] | None = None) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        from gan_jax.train.step import sample_generator

        if hasattr(self.family, "translator"):
            raise ConfigError(f"{self.run_dir} is a translation run: use .translate(images, 'a2b')")
        batch = min(n, 500)
        fn = self.family.sampler(batch)
        key = jax.random.PRNGKey(seed)
        if self.source.kind == "table":
            cond, index = self.source.arrays["cond"], jnp.asarray(-1)
            return np.asarray(sample_generator(lambda s, k: fn(s, k, cond, index), self.state, key, n))
        return np.asarray(sample_generator(fn, self.state, key, n, labels, batch if labels is not None else None))

    def translate(self, images: np.ndarray, direction: str = "a2b") -> tuple[np.ndarray, np.ndarray]:
        """A translation run's (translations, reconstructions) of uint8 or [-1, 1] NHWC images in the run's
        resolution and channels (`gan-jax-sample direction=... input=...` resizes files for you)."""
        if not hasattr(self.family, "translator"):
            raise ConfigError(f"{self.run_dir} is not a translation run; use .sample(n, seed)")
        if direction not in ("a2b", "b2a"):
            raise ConfigError(f"direction={direction!r} must be a2b or b2a")
        from gan_jax.families.cyclegan_eval import translate_all

        return translate_all(self.family, self.state, direction, np.asarray(images))


def load(run_dir: str | Path, checkpoint: str = "latest", member: int | None = None) -> Generator:
    """A run's generator at a checkpoint (latest valid, best, or a step number); `member` for populations."""
    from gan_jax.train.runs import restore_run

    cfg, source, family, state = restore_run(run_dir, str(checkpoint), member, need_data=False)
    return Generator(Path(run_dir), cfg, family, state, source)


def create_state(cfg: Config, seed: int | None = None) -> tuple[Any, Any, Any]:
    """(family, initial state, data source) for a config: the pieces of a hand-written training loop."""
    from gan_jax.data.source import build_source
    from gan_jax.families.catalog import build_family

    source = build_source(cfg.data)
    family = build_family(cfg, source)
    return family, family.init(cfg.seed if seed is None else seed), source


def train_step(family: Any, steps: int = 1) -> Any:
    """The jitted pure train function: `state, metrics = fn(state, source.arrays)` runs `steps` steps (the
    input state is donated: rebind it)."""
    from gan_jax.train.step import make_train_fn

    return make_train_fn(family, steps)

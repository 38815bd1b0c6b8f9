"""A run directory: its saved config, its data and its checkpoints, read back for resuming, sampling and
evaluation (`restore_run`), for any family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from gan_jax.config import Config, ModelConfig, member_config, to_config
from gan_jax.data.source import DataSource, source_for_run
from gan_jax.errors import ConfigError
from gan_jax.families.catalog import build_family
from gan_jax.registry import MODELS, load_plugins
from gan_jax.train.checkpoint import Checkpointer
from gan_jax.train.population import member_state, population_state
from gan_jax.train.state import TrainState


def config_dict(cfg: Config) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)  # type: ignore[return-value]


def save_config(cfg: Config, run_dir: Path) -> None:
    """The resolved config beside the outputs: what `gan-jax-sample` and a resume rebuild the run from."""
    OmegaConf.save(OmegaConf.structured(cfg), run_dir / "config.yaml", resolve=True)


def load_config(run_dir: str | Path) -> Config:
    """A run's config.yaml as the typed Config: its plug-ins imported first, its model's own schema applied."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{path} not found: is {run_dir} a gan_jax run directory (made by gan-jax-train)?")
    saved = OmegaConf.load(path)
    load_plugins(list(saved.get("plugins") or []))
    model_name = str(OmegaConf.select(saved, "model.name", default=ModelConfig().name))
    schema = MODELS.entry(model_name).config
    base = OmegaConf.structured(Config(model=schema()) if schema is not None else Config)
    return to_config(OmegaConf.merge(base, saved))


def locate_checkpoint(path: str | Path, checkpoint: str = "latest") -> tuple[Path, str]:
    """The run directory and the checkpoint that `path` names: a run directory (then `checkpoint` says which),
    its `checkpoints/` (latest), a step directory `checkpoints/N` (step N), or `checkpoints/best[/N]` (best).
    A path that names a checkpoint and a `checkpoint=` that names another one are refused, not guessed between."""
    where = Path(path)
    if (where / "config.yaml").is_file():
        return where, str(checkpoint)
    parent = where.parent
    if where.name == "checkpoints":
        run_dir, named = parent, "latest"
    elif where.name == "best" and parent.name == "checkpoints":
        run_dir, named = parent.parent, "best"
    elif where.name.isdigit() and parent.name == "best" and parent.parent.name == "checkpoints":
        run_dir, named = parent.parent.parent, "best"
    elif where.name.isdigit() and parent.name == "checkpoints":
        run_dir, named = parent.parent, str(int(where.name))
    else:
        return where, str(checkpoint)  # load_config names what is missing
    if str(checkpoint) not in ("latest", named):
        raise ConfigError(f"{path} is checkpoint {named} but checkpoint={checkpoint} was also given; drop one of them")
    return run_dir, named


def restore_run(
    run_dir: str | Path, checkpoint: str = "latest", member: int | None = None, *, need_data: bool = True
) -> tuple[Config, DataSource, Any, TrainState]:
    """A trained run's config, data, family and the state of one checkpoint (latest valid, best, or a step).
    A population run needs `member`: its state and config are then that member's (as if it were a single run).
    `need_data=False`: a run whose dataset fitted something (a table) is rebuilt from that alone.
    `run_dir` may also be a checkpoint's own path (see `locate_checkpoint`)."""
    run_dir, checkpoint = locate_checkpoint(run_dir, checkpoint)
    cfg = load_config(run_dir)
    source = source_for_run(cfg.data, run_dir, reuse_fitted=True, need_data=need_data)
    family = build_family(cfg, source)
    ckpt = Checkpointer(Path(run_dir) / "checkpoints")
    try:
        template = population_state(family, cfg)
        state = ckpt.restore(template, checkpoint, config=config_dict(cfg), read_only=True).state
    finally:
        ckpt.close()
    size = cfg.train.population
    if size > 1:
        if member is None or not 0 <= member < size:
            raise ConfigError(
                f"{run_dir} trained a population of {size} GANs; pick one with member=I (0 to {size - 1})"
            )
        mcfg = member_config(cfg, member)
        return mcfg, source, build_family(mcfg, source), member_state(state, member)
    if member not in (None, 0):
        raise ConfigError(f"member={member} applies to population runs; {run_dir} trained one GAN (drop member=)")
    return cfg, source, family, state

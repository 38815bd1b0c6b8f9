"""What both console scripts share: where configs live and how a bad config becomes one line, not a traceback."""

from __future__ import annotations

import difflib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from gan_jax.config import Config, ModelConfig, one_line, register_configs
from gan_jax.errors import GanJaxError


def _config_dir() -> str:
    """The YAML configs: `configs/` beside the package in a checkout, `gan_jax/configs` in an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "configs"
    installed = Path(__file__).resolve().parents[1] / "configs"
    return str(installed if (installed / "config.yaml").is_file() else checkout)


CONFIG_DIR = _config_dir()


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    # A save that failed mid-way (disk full) leaves orbax coroutines that are collected at exit; their "never
    # awaited" RuntimeWarning would follow, and bury, the one line that says what happened.
    warnings.filterwarnings("ignore", message=r"coroutine .* was never awaited", category=RuntimeWarning)
    sys.exit(2)


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def _plain_overrides(argv: Sequence[str]) -> list[str] | None:
    """The key=value overrides of a single run, with a user's `--config-dir DIR` and `hydra.searchpath=[...]`
    as search-path overrides (their experiments compose like ours); None for sweeps and Hydra's other flags."""
    overrides, extra_dirs, args = [], [], list(argv)
    while args:
        arg = args.pop(0)
        flag, sep, value = arg.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            extra_dirs.append(value if sep else (args.pop(0) if args else ""))
        elif arg in ("-m", "--multirun") or arg.startswith("-"):
            return None
        elif flag == "hydra.searchpath" or not arg.startswith(("hydra.", "hydra/", "+hydra", "~hydra")):
            overrides.append(arg)
    if extra_dirs:  # Hydra puts --config-dir before the package's own configs
        paths = ",".join(f"file://{Path(d).expanduser().absolute()}" for d in extra_dirs)
        overrides = [o for o in overrides if not o.startswith("hydra.searchpath=")] + [f"hydra.searchpath=[{paths}]"]
    return overrides


def plugins_from_overrides(overrides: Sequence[str]) -> list[str]:
    """The modules a `plugins=[a.b,c.py]` override names (read before composition: they register the models
    and configs that the rest of the overrides may choose)."""
    for arg in overrides:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "plugins":
            value = value.strip()
            items = value[1:-1].split(",") if value.startswith("[") and value.endswith("]") else [value]
            return [item.strip().strip("'\"") for item in items if item.strip()]
    return []


# Dict-valued keys whose entries are new keys (dotted config paths): Hydra's struct mode refuses to add keys to a
# dict with `key={...}`, so such an override is passed on as `++key={...}` (add or override).
DICT_KEYS = ("population.vary",)


def expand_dict_overrides(args: Sequence[str]) -> list[str]:
    """`population.vary={optim.g.lr:[1e-4,2e-4]}` -> `++population.vary={...}` (what Hydra accepts)."""
    return [f"++{a}" if a.partition("=")[0] in DICT_KEYS else a for a in args]


def prepare(overrides: Sequence[str]) -> None:
    """Imports the plug-ins the overrides name, then stores every schema in Hydra's ConfigStore."""
    from gan_jax.registry import load_plugins

    load_plugins(plugins_from_overrides(overrides))
    register_configs()


def _valid_keys(full_key: str, overrides: Sequence[str] = ()) -> list[str]:
    """Keys that exist beside `full_key` in the schema (for 'did you mean' hints); under `model.` the chosen
    model's own schema."""
    node = OmegaConf.structured(Config)
    if full_key.startswith("model."):
        from gan_jax.registry import MODELS

        chosen = next((a.partition("=")[2] for a in overrides if a.startswith("model=")), ModelConfig().name)
        schema = MODELS.entry(chosen).config if chosen in MODELS else None
        node = OmegaConf.structured(Config(model=schema())) if schema is not None else node
    parent, _, _ = full_key.rpartition(".")
    sub = OmegaConf.select(node, parent) if parent else node
    return [str(k) for k in sub] if OmegaConf.is_dict(sub) else []


def describe_config_error(err: BaseException, overrides: Sequence[str] = ()) -> str:
    """One line that names the bad key or option and what would be valid."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options:
        group, _, option = err.missing_cfg_file.rpartition("/")
        return f"{group}={option} is not a config option; choose one of: {', '.join(err.options)}"
    cause = err.__cause__ or err.__context__  # a key in a config file (e.g. a user's experiment): the context
    while cause is not None and not isinstance(cause, ConfigAttributeError | ConfigKeyError | ValidationError):
        cause = cause.__cause__ or cause.__context__
    where = str(err).split("'")[1] + ": " if str(err).startswith("In '") else ""  # "In 'experiment/x': ..."
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.full_key:
        key = str(cause.full_key)
        valid = _valid_keys(key, overrides)
        prefix = key.rpartition(".")[0]
        names = [f"{prefix}.{k}" if prefix else k for k in valid]
        hint = difflib.get_close_matches(key, names, n=1)
        guess = f" (did you mean {hint[0]}?)" if hint else ""
        return f"{where}unknown config key '{key}'{guess}; valid keys here: {', '.join(names)}"
    if isinstance(cause, ValidationError) and cause.full_key:
        first = str(cause).splitlines()[0]
        return f"{where}bad value for '{cause.full_key}': {first}"
    return one_line(err)


def precheck(prog: str, config_name: str, validate: Callable[[object], object]) -> None:
    """Composes the config once before Hydra runs it, so that a bad key, option or type exits with one line.

    Hydra would report the same problems over several lines (or with a traceback for schema errors).
    """
    sys.argv[1:] = expand_dict_overrides(sys.argv[1:])  # before Hydra's own parse reads them too
    try:
        prepare(sys.argv[1:])
    except GanJaxError as err:
        fail(prog, str(err))
    overrides = _plain_overrides(sys.argv[1:])
    if overrides is None:
        return
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            validate(compose(config_name, overrides=overrides))
    except GanJaxError as err:
        fail(prog, str(err))
    except Exception as err:  # Hydra/OmegaConf composition errors: unknown key, option or wrong type
        fail(prog, describe_config_error(err, overrides))


def run_reporting_errors(prog: str, fn: Callable[[], object]) -> object:
    """Runs a job and returns its result; project errors (bad data, missing checkpoint, divergence, ...) end it
    with one line and exit code 2."""
    for name in ("absl", "orbax", "jax"):  # Hydra sets the root logger to INFO; orbax then logs every file op
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return fn()
    except GanJaxError as err:
        fail(prog, str(err))

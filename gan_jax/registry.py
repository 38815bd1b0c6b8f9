"""Name -> object lookups for everything a config picks: families, models, datasets, losses, optimizers, metrics.

A registry is the one list of valid names: config validation, `did you mean` hints and error messages read it, so
nothing keeps a copy of the names by hand. Built-ins register when their module is imported (`load_builtins`);
a researcher's own code registers the same way from a module named in the config's `plugins` list, e.g.

    from gan_jax.registry import MODELS

    @MODELS.register("my_mlp", config=MyMLPConfig)
    def build_my_mlp(cfg, source):
        return MyGenerator(...), MyCritic(...)
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from gan_jax.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: the object, its own config schema (a dataclass, or None) and free-form facts."""

    name: str
    obj: T
    config: type | None = None
    info: dict[str, Any] | None = None


class Registry(Generic[T]):
    """Names of one kind (`what`), chosen by the config key `key` (e.g. `model.name`)."""

    def __init__(self, what: str, key: str) -> None:
        self.what, self.key = what, key
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, obj: T | None = None, *, config: type | None = None, **info: Any
    ) -> Callable[[T], T] | T:
        """`REG.register("name", obj)` or as a decorator `@REG.register("name")`. Registering a name twice with
        another object is an error (two plug-ins claiming one name); re-importing the same module is not."""

        def add(value: T) -> T:
            old = self._entries.get(name)
            if old is not None and _origin(old.obj) != _origin(value):
                raise ConfigError(
                    f"{self.what} {name!r} is registered twice ({_origin(old.obj)} and {_origin(value)}); "
                    "rename one of them"
                )
            self._entries[name] = Entry(name, value, config, info or None)
            return value

        return add if obj is None else add(obj)

    def entry(self, name: str) -> Entry[T]:
        load_builtins()
        if name not in self._entries:
            raise ConfigError(self.unknown(name))
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def names(self) -> tuple[str, ...]:
        load_builtins()
        return tuple(sorted(self._entries))

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self):
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        load_builtins()
        return name in self._entries

    def unknown(self, name: str) -> str:
        """The one-line error for a name nobody registered."""
        names = self.names()
        hint = difflib.get_close_matches(str(name), names, n=1)
        guess = f" (did you mean {hint[0]}?)" if hint else ""
        return (
            f"{self.key}={name!r} is not a known {self.what}{guess}; choose one of: {', '.join(names)}, "
            "or register your own (plugins=[your.module], see the README's 'Your own model')"
        )


def _origin(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


FAMILIES: Registry[Any] = Registry("family", "family")
MODELS: Registry[Any] = Registry("model", "model.name")
DATASETS: Registry[Any] = Registry("dataset", "data.name")
LOSSES: Registry[Any] = Registry("loss", "loss.name")
OPTIMIZERS: Registry[Any] = Registry("optimizer", "optim.*.name")
METRICS: Registry[Any] = Registry("metric", "eval.metrics")

# Modules whose import registers the built-ins (kept light: configs validate without importing the networks).
BUILTIN_MODULES = (
    "gan_jax.losses",
    "gan_jax.optimizers",
    "gan_jax.data.catalog",
    "gan_jax.models.catalog",
    "gan_jax.families.catalog",
    "gan_jax.metrics.catalog",
)
_loaded = False


def load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def load_plugins(modules: Iterable[str]) -> None:
    """Imports each plug-in module (a dotted name, or a path to a .py file) so that its decorators register it.
    A dotted name is looked up on sys.path and in the current directory."""
    for module in modules:
        if module.endswith(".py") or "/" in module:
            _import_file(Path(module))
            continue
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and module.startswith(err.name):
                raise ConfigError(
                    f"plugins: cannot import {module!r} (no module {err.name!r} on the Python path); put its folder "
                    "on PYTHONPATH, run from that folder, or give the file's path (plugins=[path/to/file.py])"
                ) from err
            raise


def _import_file(path: Path) -> None:
    import importlib.util

    path = path.expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"plugins: {path} does not exist; give the path of a .py file or a dotted module name")
    name = f"gan_jax_plugin_{path.stem}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)

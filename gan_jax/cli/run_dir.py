"""Before Hydra opens `train.log` and writes `.hydra/` in the run directory: a directory that cannot be written
(a read-only file system, no permission) is one line naming it and the run's last sealed checkpoint, not Hydra's
logging traceback; a directory a live run holds is refused without touching its files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

MANIFEST = "gan_jax_manifest.json"  # as gan_jax.train.checkpoint (not imported: it pulls in JAX and orbax)


def explicit_run_dir(argv: Sequence[str]) -> Path | None:
    """The `hydra.run.dir=` of a single run (None for sweeps and Hydra's dated default)."""
    if any(a in ("-m", "--multirun") for a in argv):
        return None
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "hydra.run.dir" and "${" not in value:
            return Path(value).expanduser()
    return None


def last_sealed_step(run_dir: Path) -> int | None:
    """The newest step directory with a manifest (not hash-checked: that is the resume's job)."""
    folder = run_dir / "checkpoints"
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    sealed = [s for s in steps if (folder / str(s) / MANIFEST).is_file()]
    return max(sealed) if sealed else None


def unwritable_problem(argv: Sequence[str]) -> str | None:
    """Why the run directory (or the first existing folder above it) cannot be written, or None."""
    run_dir = explicit_run_dir(argv) or Path.cwd()
    existing = next((p for p in (run_dir, *run_dir.absolute().parents) if p.exists()), None)
    if existing is None or os.access(existing, os.W_OK):
        return None
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    why = "the file system is read-only" if read_only else "permission denied"
    step = last_sealed_step(run_dir)
    last = f"; the last good checkpoint is step {step} ({run_dir / 'checkpoints' / str(step)})" if step else ""
    return f"{why}: cannot write to {existing}{last}. Fix the directory (or choose another hydra.run.dir)"


def live_run_problem(argv: Sequence[str]) -> str | None:
    """A live run on this host holds the explicit run directory: refused before Hydra rewrites its `.hydra/`."""
    run_dir = explicit_run_dir(argv)
    if run_dir is None:
        return None
    from gan_jax.train.run_lock import live_holder_message  # no JAX import: it needs only the standard library

    return live_holder_message(run_dir)

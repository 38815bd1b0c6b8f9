"""Orbax checkpoints of the whole TrainState, with integrity checks orbax does not make on its own.

Layout of a run's `checkpoints/` directory:

    <step>/                 latest `train.keep_checkpoints` saves (orbax step directories)
    <step>/gan_jax_manifest.json   size + sha256 of every file in the step, written once the save is complete
    best/<step>/            the best save by the chosen metric (its own store: never rotated away by new saves)
    damaged/<step>-<time>/  saves found damaged on resume, moved aside (kept for inspection, never read)

Why manifests: orbax restores bytes overwritten inside a data file as silently wrong values and still lists a
half-written or damaged step as the latest. A step counts as valid only when its manifest exists and every file
matches it. Saves are asynchronous (training goes on while orbax writes); a save is *sealed* (manifest written,
older steps rotated away) only after it has completed, so the last valid checkpoint is never removed before the
next one is whole.

Multi-process runs (jax.distributed) save and restore collectively: every process calls the same methods in the
same order, orbax writes each array once, and process 0 alone writes manifests and moves damaged saves, with a
barrier before the others look at them. The directory must be one the processes share.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from gan_jax.errors import CheckpointError, SaveError, warn
from gan_jax.train.disk import disk_problem, quiet_disk_errors_in_logs
from gan_jax.train.distributed import barrier, is_primary
from gan_jax.train.state import STATE_FORMAT_VERSION, TrainState

MANIFEST = "gan_jax_manifest.json"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Restored:
    state: TrainState
    meta: dict[str, Any]
    step: int


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(step_dir: Path) -> None:
    """Record size and sha256 of every file of a completed save (atomically: a torn manifest never exists)."""
    files = {str(p.relative_to(step_dir)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _files(step_dir)}
    tmp = step_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"files": files, "sealed_at": time.time()}, indent=1), encoding="utf-8")
    os.replace(tmp, step_dir / MANIFEST)


def manifest_problem(step_dir: Path) -> str | None:
    """Why a step directory cannot be trusted (None when every file matches its manifest)."""
    path = step_dir / MANIFEST
    if not path.is_file():
        return "no manifest: the save never completed (killed while writing?)"
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (ValueError, KeyError, TypeError):
        return f"its manifest {MANIFEST} is unreadable"
    for rel, want in files.items():
        file = step_dir / rel
        if not file.is_file():
            return f"file {rel} is missing"
        size = file.stat().st_size
        if size != want["size"]:
            return f"file {rel} has {size} bytes, {want['size']} were written (truncated or overwritten)"
        if _sha256(file) != want["sha256"]:
            return f"file {rel} does not match its checksum (its bytes were changed after saving)"
    return None


def tree_differences(template: Any, saved: Any, limit: int = 8) -> list[str]:
    """Leaves whose path, shape or dtype differ between a state and a checkpoint's metadata tree."""

    def name(entry: Any) -> str:  # orbax metadata turns attributes and named tuples into dict keys
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)

    def leaves(tree: Any) -> dict[str, tuple]:
        flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))
        return {"/".join(map(name, path)): (tuple(x.shape), str(x.dtype)) for path, x in flat if hasattr(x, "shape")}

    ours, theirs = leaves(template), leaves(saved)
    diffs = [f"{k}: checkpoint has nothing, this config makes {ours[k][0]}" for k in ours if k not in theirs]
    diffs += [f"{k}: checkpoint has {theirs[k][0]}, this config has nothing" for k in theirs if k not in ours]
    diffs += [
        f"{k}: checkpoint {theirs[k][0]} {theirs[k][1]}, this config {ours[k][0]} {ours[k][1]}"
        for k in ours
        if k in theirs and ours[k] != theirs[k]
    ]
    return diffs[:limit] + ([f"... and {len(diffs) - limit} more"] if len(diffs) > limit else [])


class CheckpointStore:
    """One orbax CheckpointManager plus manifests, sealing, rotation and damage detection."""

    def __init__(
        self, directory: str | Path, keep: int | None, name: str, last_good: Callable[[], str] | None = None
    ) -> None:
        self.directory = Path(directory).absolute()
        self.keep = keep
        self.name = name
        self._last_good = last_good  # how a failed save names the run's last good checkpoint (default: own newest)
        quiet_disk_errors_in_logs()  # a full disk is reported once, by us (see _fail)
        # Orbax names its cross-process barriers after the step directory ("async_commit_complete.20"): two stores
        # saving the same step at once (latest and best) would share a barrier and fail in multi-process runs,
        # so each store prefixes its barriers with its own name.
        multiprocessing = ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=f"gan_jax_{name}")
        # Rotation is ours (max_to_keep=None): orbax would delete old steps before we know the new one is whole.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None, enable_async_checkpointing=True, create=True, multiprocessing_options=multiprocessing
        )
        handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        self._pending: int | None = None
        self._failed = False  # a save met a full disk (or a read-only directory): nothing more is written

    def steps(self) -> list[int]:
        """Steps orbax lists, newest first (valid or not)."""
        self._manager.reload()
        return sorted(self._manager.all_steps(), reverse=True)

    def save(self, step: int, state: TrainState, meta: dict[str, Any]) -> bool:
        """Start an asynchronous save; the previous one is sealed first. False when the step already exists."""
        self.seal()
        if step in self._manager.all_steps():
            return False  # already saved (e.g. the end of a run that had just checkpointed)
        meta = {"format_version": STATE_FORMAT_VERSION, **meta}  # what layout the state tree has (train/state.py)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        # force: we decide when to save; orbax's own policy (preemption sync points, saves in flight) could decide
        # differently in different processes of one run, and a save is collective.
        try:
            self._manager.save(step, args=args, force=True)
        except Exception as err:
            self._fail(step, err)
        self._pending = step
        return True

    def seal(self) -> None:
        """Wait for the running save, write its manifest, then rotate away steps beyond `keep`."""
        if self._failed:
            return
        try:
            self._manager.wait_until_finished()
            if self._pending is None:
                return
            if is_primary():
                write_manifest(self.directory / str(self._pending))
        except Exception as err:
            self._fail(self._pending, err)
        barrier(f"gan_jax_{self.name}_seal_{self._pending}")  # every process sees the manifest before rotating
        if self.keep:
            valid = [s for s in self.steps() if (self.directory / str(s) / MANIFEST).is_file()]
            # Orbax's delete removes the files on process 0 at once: a process still listing would then miss a
            # manifest, skip the (collective) delete and leave the others waiting. Everyone lists first.
            barrier(f"gan_jax_{self.name}_rotate_{self._pending}")
            for old in valid[self.keep :]:
                self._manager.delete(old)
        self._pending = None

    def _fail(self, step: int | None, err: Exception) -> None:
        """A save that could not be written: a full disk or a forbidden directory becomes one line naming the
        last good checkpoint (the unsealed attempt is removed, which frees its space); other errors pass on."""
        problem = disk_problem(err)
        if problem is None:
            raise err
        self._failed, self._pending = True, None
        if step is not None and is_primary():
            for attempt in (self.directory / f"{step}.orbax-checkpoint-tmp", self.directory / str(step)):
                if attempt.is_dir() and not (attempt / MANIFEST).is_file():
                    shutil.rmtree(attempt, ignore_errors=True)
        if self._last_good is not None:
            last = self._last_good()
        else:
            good, _ = self.newest_valid()
            last = f"step {good} ({self.directory / str(good)})" if good is not None else "none yet"
        what = f"step {step}" if step is not None else "a checkpoint"
        raise SaveError(
            f"{problem} while saving {what} to {self.directory}; the last good checkpoint is {last}. "
            "Free space (or fix the directory), then resume with train.resume=true"
        ) from err

    def problem(self, step: int) -> str | None:
        return manifest_problem(self.directory / str(step))

    def saved_tree(self, step: int) -> Any:
        """Shapes and dtypes of the state saved at `step` (read from orbax metadata, no array data)."""
        return self._manager.item_metadata(step)["state"].tree

    def restore(self, template: TrainState, step: int) -> Restored:
        """Restores `step` into `template`'s structure; a version-1 save (the GAN-only layout) is converted."""
        version = self.format_version(step)
        tree = v1_layout(template) if version == 1 else template
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        state = from_v1_layout(template, restored.state) if version == 1 else restored.state
        return Restored(state, dict(restored.meta), step)

    def format_version(self, step: int) -> int:
        """The layout version a save recorded (saves before versioning: 1)."""
        return int(self.read_meta(step).get("format_version", 1))

    def read_meta(self, step: int) -> dict[str, Any]:
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored.meta)

    def move_aside(self, step: int, damaged_dir: Path) -> Path:
        """Take a damaged step out of orbax's view (so it is neither listed nor re-saved over) but keep it."""
        target = damaged_dir / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
        barrier(f"gan_jax_{self.name}_move_aside_{step}")  # no process is still reading it
        if is_primary():
            damaged_dir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(step)), target)
        barrier(f"gan_jax_{self.name}_moved_aside_{step}")
        self._manager.reload()
        return target

    def newest_valid(self) -> tuple[int | None, dict[int, str]]:
        """The newest step whose files match its manifest, and the problems of the newer ones."""
        problems: dict[int, str] = {}
        for step in self.steps():
            problem = self.problem(step)
            if problem is None:
                return step, problems
            problems[step] = problem
        return None, problems

    def close(self) -> None:
        if self._failed:  # the failed save has been reported; closing must not raise it a second time
            try:
                self._manager.close()
            except Exception as err:
                if disk_problem(err) is None:
                    raise
            return
        self.seal()
        self._manager.close()


class Checkpointer:
    """A run's checkpoints: the latest `keep` under `checkpoints/`, the best one under `checkpoints/best/`."""

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory).absolute()
        self.latest = CheckpointStore(self.directory, keep, "latest")
        self.best = CheckpointStore(self.directory / "best", 1, "best", last_good=self.last_good)
        self.damaged_dir = self.directory / "damaged"

    def save(self, step: int, state: TrainState, meta: dict[str, Any]) -> bool:
        return self.latest.save(step, state, meta)

    def save_best(self, step: int, state: TrainState, meta: dict[str, Any]) -> bool:
        return self.best.save(step, state, meta)

    def latest_step(self) -> int | None:
        """The newest step on disk, valid or not, in `checkpoints/` or `best/` (whether a run directory already
        holds a run: after a resume from best/ moved every damaged latest save aside, best/ alone may)."""
        steps = self.latest.steps() + self.best.steps()
        return max(steps) if steps else None

    def restore(
        self,
        template: TrainState,
        step: int | str | None = None,
        config: dict[str, Any] | None = None,
        *,
        read_only: bool = False,
    ) -> Restored:
        """Restore `step` ('latest' / None: the newest valid one; 'best': the best one) into `template`'s
        structure. Damaged newer steps are reported and moved aside; a shape mismatch is a clear error that
        lists the differing arrays and, given the current `config` (a plain dict), the differing config keys.

        `read_only`: for readers (sampling, evaluation) that may run while the run is still training: a newer
        step without a manifest may be a save in progress, so it is skipped and left where it is."""
        if step == "best":
            return self._restore_exact(self.best, template, None, "best", config)
        if step not in (None, "latest"):
            return self._restore_exact(self.latest, template, int(step), str(step), config)
        return self._restore_newest_valid(template, config, read_only)

    def _restore_exact(
        self, store: CheckpointStore, template: TrainState, step: int | None, what: str, config: dict[str, Any] | None
    ) -> Restored:
        steps = store.steps()
        if step is None:
            if not steps:
                raise CheckpointError(f"no {what} checkpoint in {store.directory}; train with evaluation first")
            step = steps[0]
        if step not in steps:
            raise CheckpointError(f"no checkpoint for step {step} in {store.directory}; it has steps {steps}")
        problem = store.problem(step)
        if problem is not None:
            raise CheckpointError(f"checkpoint step {step} in {store.directory} is damaged: {problem}")
        check_fits(store, template, step, config)
        return store.restore(template, step)

    def _candidates(self) -> list[tuple[CheckpointStore, int]]:
        """Every save of the state, newest first; at one step the latest save before best/'s copy of it."""
        saves = [(step, 0, self.latest) for step in self.latest.steps()]
        saves += [(step, 1, self.best) for step in self.best.steps()]
        return [(store, step) for step, _, store in sorted(saves, key=lambda s: (-s[0], s[1]))]

    def _label(self, store: CheckpointStore, step: int) -> str:
        """How messages name a save: `step 3000`, or `step 3000 of checkpoints/best`."""
        return f"step {step}" + ("" if store is self.latest else f" of {self.directory.name}/{store.directory.name}")

    def _restore_newest_valid(self, template: TrainState, config: dict[str, Any] | None, read_only: bool) -> Restored:
        """The newest save whose files match its manifest. best/ counts too: when the newest latest saves are
        damaged, its copy of the state may be the newest intact one."""
        problems: list[tuple[CheckpointStore, int, str]] = []
        for store, step in self._candidates():
            problem = store.problem(step)
            if problem is None:
                check_fits(store, template, step, config)
                try:
                    restored = store.restore(template, step)
                except Exception as err:  # orbax's own errors on damage are long and often misleading
                    problem = f"orbax could not read it ({type(err).__name__})"
                else:
                    self._report_passed_over(problems, store, step, read_only)
                    return restored
            problems.append((store, step, problem))
        if not problems:
            raise CheckpointError(
                f"no checkpoint found in {self.directory}; train first, or drop train.resume=true to start fresh"
            )
        listing = "; ".join(f"{self._label(store, s)}: {why}" for store, s, why in problems)
        raise CheckpointError(
            f"no valid checkpoint in {self.directory} ({listing}). Nothing was changed; start a new run directory, "
            "or restore the checkpoints from a backup."
        )

    def _report_passed_over(
        self, problems: list[tuple[CheckpointStore, int, str]], store: CheckpointStore, step: int, read_only: bool
    ) -> None:
        """One warning per newer save not used (a damaged latest one is moved aside unless `read_only`: for a
        reader it may be a save in progress), and one when the state comes from best/ with nothing to report."""
        source = self._label(store, step) + ("" if store is self.latest else " (the newest valid copy of the state)")
        for bad_store, bad, why in problems:
            name = f"checkpoint {self._label(bad_store, bad)}"
            if read_only:
                warn(f"{name} is not readable ({why}; a save in progress?); using {source}")
            elif bad_store is self.latest:
                where = self.latest.move_aside(bad, self.damaged_dir)
                warn(f"{name} is damaged ({why}); moved to {where}, resuming from {source}")
            else:
                warn(f"{name} is damaged ({why}); left in place, resuming from {source}")
        if store is self.best and not problems:
            older = self.latest.steps()
            latest = f"the newest in {self.directory.name}/ is step {older[0]}" if older else "no other save is left"
            warn(f"{'using' if read_only else 'resuming from'} {source}; {latest}")

    def read_meta(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        in_best = step not in self.latest.steps() and step in self.best.steps()
        return (self.best if in_best else self.latest).read_meta(step)

    def wait(self) -> None:
        self.latest.seal()
        self.best.seal()

    def close(self) -> None:
        try:
            self.latest.close()
        finally:
            self.best.close()

    def drop_unfinished(self) -> None:
        """A writer starting on this directory removes the temporary folders of saves that never finished (a run
        killed mid-save, or whose peer died): orbax never reads them, and they only take space. Readers must not:
        in a live run's directory such a folder is the save in progress."""
        if is_primary():
            for store in (self.latest, self.best):
                for attempt in sorted(store.directory.glob("*.orbax-checkpoint-tmp")):
                    shutil.rmtree(attempt, ignore_errors=True)
                    warn(f"removed {attempt.name} in {store.directory}: a save that an interrupted run never finished")
        barrier("gan_jax_drop_unfinished")

    def last_good(self) -> str:
        """The newest sealed step, for messages about a run that stopped (e.g. `step 2000 (.../2000)`)."""
        good, _ = self.latest.newest_valid()
        return f"step {good} ({self.directory / str(good)})" if good is not None else "none yet"


V1_NETS = {"G": "g", "D": "d"}  # version 1 named the two networks' fields g_* and d_*


def v1_layout(template: TrainState) -> dict[str, Any]:
    """`template` in the version-1 layout (GANState: g_params, g_stats, g_opt, g_ema, d_params, ...)."""
    tree: dict[str, Any] = {
        k: getattr(template, k) for k in ("step", "key", "nonfinite_skipped", "nonfinite_step", "nonfinite_what")
    }
    for name, prefix in V1_NETS.items():
        net = template.nets[name]
        tree |= {f"{prefix}_params": net.params, f"{prefix}_stats": net.stats, f"{prefix}_opt": net.opt}
    tree["g_ema"] = template.nets["G"].ema
    return tree


def from_v1_layout(template: TrainState, tree: dict[str, Any]) -> TrainState:
    nets = {
        name: template.nets[name].replace(
            params=tree[f"{p}_params"], stats=tree[f"{p}_stats"], opt=tree[f"{p}_opt"], ema=tree.get(f"{p}_ema")
        )
        for name, p in V1_NETS.items()
    }
    plain = ("step", "key", "nonfinite_skipped", "nonfinite_step", "nonfinite_what")
    return template.replace(nets=nets, **{k: tree[k] for k in plain})


def check_version(store: CheckpointStore, template: TrainState, step: int) -> int:
    """The save's layout version, when this code can read it: the current one, or version 1 for a family with
    exactly the networks G and D and no extras (converted on restore). Anything else stops here, in one line."""
    version = store.format_version(step)
    if version == STATE_FORMAT_VERSION:
        return version
    if version == 1 and set(template.nets) == set(V1_NETS) and not template.extra:
        return version
    raise CheckpointError(
        f"checkpoint step {step} in {store.directory} has state format version {version}, but this gan_jax reads "
        f"version {STATE_FORMAT_VERSION}"
        + (" (and converts version 1 for one-G-one-critic families)" if version == 1 else "")
        + "; resume it with the gan_jax release that wrote it, or start a new run directory"
    )


def check_fits(store: CheckpointStore, template: TrainState, step: int, config: dict[str, Any] | None) -> None:
    """Refuse, before any training step, a checkpoint whose state tree differs from what the config builds
    (or whose layout version this code cannot read)."""
    version = check_version(store, template, step)
    diffs = tree_differences(v1_layout(template) if version == 1 else template, store.saved_tree(step))
    if not diffs:
        return
    config_diff = ""
    saved_config = store.read_meta(step).get("config")
    if saved_config is not None and config is not None:
        changed = config_differences(saved_config, config) or ["nothing (the code changed since the save?)"]
        config_diff = " Config keys that differ (checkpoint -> now): " + "; ".join(changed) + "."
    raise CheckpointError(
        f"checkpoint step {step} in {store.directory} does not fit this config: "
        + "; ".join(diffs)
        + "."
        + config_diff
        + " Resume with the run's own config (its config.yaml), or start a new run directory."
    )


def config_differences(
    old: dict[str, Any],
    new: dict[str, Any],
    groups: tuple[str, ...] = ("model", "optim", "data", "loss", "train", "population"),
    *,
    shared_only: bool = False,
) -> list[str]:
    """`group.key: old -> new` for every differing leaf under the given groups. `shared_only`: only keys both
    configs have (a key one schema lacks, such as another model's, changes nothing in the other run)."""

    def flat(tree: Any, prefix: str) -> dict[str, Any]:
        if isinstance(tree, dict):
            out: dict[str, Any] = {}
            for k, v in tree.items():
                out |= flat(v, f"{prefix}.{k}" if prefix else str(k))
            return out
        return {prefix: tree}

    a = {k: v for g in groups for k, v in flat(old.get(g, {}), g).items()}
    b = {k: v for g in groups for k, v in flat(new.get(g, {}), g).items()}
    keys = (a.keys() & b.keys()) if shared_only else (a.keys() | b.keys())
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(keys) if a.get(k) != b.get(k)]

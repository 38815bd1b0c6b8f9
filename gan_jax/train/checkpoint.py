"""Orbax checkpoints of the whole GANState plus a small JSON record (W&B run id, config, metrics so far).

Saves are asynchronous: training continues while orbax writes, and `close()` waits for the last write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from gan_jax.errors import CheckpointError
from gan_jax.train.state import GANState


class Checkpointer:
    """Latest-k checkpoints of one run under `<run_dir>/checkpoints/<step>/`."""

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: GANState, meta: dict[str, Any]) -> None:
        if step in self._manager.all_steps():
            return  # already saved at this step (e.g. the end of a run that just checkpointed)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        self._manager.save(step, args=args)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, template: GANState, step: int | None = None) -> tuple[GANState, dict[str, Any]]:
        """Restores into the structure, shapes and dtypes of `template` (a freshly initialised state)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(
                f"no checkpoint found in {self.directory}; train first, or drop train.resume=true to start fresh"
            )
        if step not in self._manager.all_steps():
            have = list(self._manager.all_steps())
            raise CheckpointError(f"no checkpoint for step {step} in {self.directory}; it has steps {have}")
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, template)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return restored.state, dict(restored.meta)

    def read_meta(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint found in {self.directory}")
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored.meta)

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

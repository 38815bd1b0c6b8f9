"""A multi-process run whose peer dies or hangs: every survivor stops within a bounded time, with one line that
names the lost process and the last sealed checkpoint, and an exit code a scheduler can requeue on.

What happens without this (shared/NOTES-jax-stack.md): a SIGKILLed peer makes the next collective fail at once
(gloo: "Connection reset by peer"), but the clean-up after it (orbax's barriers, jax.distributed's shutdown)
waits for the dead peer until JAX's heartbeat timeout, and then the process aborts from C++ (SIGABRT). A stopped
(SIGSTOP) or hung peer makes the collectives wait that long, then the same abort. So a lost peer is reported and
the process ends with `os._exit`, skipping the clean-up that cannot finish; a watchdog bounds the wait for a peer
that hangs. Saves that were still being written are removed (process 0), so the relaunched processes resume
from the last sealed checkpoint, bit-exactly as any resume.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

EXIT_PEER_LOST = 75  # EX_TEMPFAIL: a temporary failure; relaunching every process with train.resume=true resumes
MANIFEST = "gan_jax_manifest.json"
_PEER_TEXTS = (
    "gloo",
    "connection reset",
    "connection closed",
    "connection refused",
    "broken pipe",
    "heartbeat",
    "barrier failed",
    "unavailable:",
    "deadline_exceeded",
    "task is set to error",
    "nccl",
)
WATCH_FACTOR = 5  # a collective may take this many times the slowest one seen before the peer counts as hung


def is_peer_loss(err: BaseException) -> bool:
    """Whether an error raised in a multi-process run says that another process is gone (its cause chain
    mentions the collective transport or the coordination service)."""
    seen: BaseException | None = err
    while seen is not None:
        text = str(seen).lower()
        if any(marker in text for marker in _PEER_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def lost_process(text: str, num_processes: int, me: int) -> str:
    """'process 1' where the message or the process count tells which one, else 'another process'."""
    match = re.search(r"task[ :/]*(\d+)\b", text, flags=re.IGNORECASE)
    if match and int(match.group(1)) != me:
        return f"process {match.group(1)}"
    return f"process {1 - me}" if num_processes == 2 else f"another of the {num_processes} processes"


def _sealed_steps(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file())


def drop_unsealed_saves(checkpoints: Path) -> int | None:
    """Removes saves that were being written (no manifest) and returns the newest sealed step (None if none)."""
    if not checkpoints.is_dir():
        return None
    for folder in (checkpoints, checkpoints / "best"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            unsealed = entry.name.endswith(".orbax-checkpoint-tmp") or (
                entry.name.isdigit() and not (entry / MANIFEST).is_file()
            )
            if entry.is_dir() and unsealed:
                shutil.rmtree(entry, ignore_errors=True)
    sealed = _sealed_steps(checkpoints)
    return sealed[-1] if sealed else None


def exit_peer_lost(what: str, step: int, checkpoints: Path, is_primary: bool) -> NoReturn:
    """One line on stderr, then `os._exit(EXIT_PEER_LOST)`: the clean-up a dead peer would block is skipped."""
    sealed = drop_unsealed_saves(checkpoints) if is_primary else _newest_sealed(checkpoints)
    where = f"step {sealed} ({checkpoints / str(sealed)})" if sealed is not None else "none yet"
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "gan_jax"
    print(
        f"{prog}: error: {what} at step {step}; the last sealed checkpoint is {where}. Relaunch every process "
        f"with train.resume=true (exit code {EXIT_PEER_LOST})",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(EXIT_PEER_LOST)


def _newest_sealed(checkpoints: Path) -> int | None:
    sealed = _sealed_steps(checkpoints) if checkpoints.is_dir() else []
    return sealed[-1] if sealed else None


class PeerWatch:
    """A watchdog over the run's per-chunk collectives: if one waits longer than `timeout_s` (or `WATCH_FACTOR`
    times the slowest completed one, whichever is longer), a peer is taken to be hung and the process ends."""

    def __init__(self, timeout_s: float, on_hang: callable) -> None:  # type: ignore[valid-type]
        self.timeout_s, self.on_hang = timeout_s, on_hang
        self.slowest = 0.0
        self._since: float | None = None
        self._step = 0
        self._thread = threading.Thread(target=self._watch, name="gan_jax_peer_watch", daemon=True)
        self._thread.start()

    @contextmanager
    def collective(self, step: int, watched: bool = True) -> Iterator[None]:
        """Times one collective; `watched=False` (the first after a compile, whose wait is the peers' compile
        skew, often longer than the timeout on a loaded machine) neither fires nor counts as the slowest."""
        if not watched:
            yield
            return
        self._step, self._since = step, time.monotonic()
        try:
            yield
        finally:
            self.slowest = max(self.slowest, time.monotonic() - self._since)
            self._since = None

    def _watch(self) -> None:
        while True:
            time.sleep(0.5)
            since = self._since
            limit = max(self.timeout_s, WATCH_FACTOR * self.slowest)
            if since is not None and time.monotonic() - since > limit:
                self.on_hang(self._step, limit)

"""Preemption: SIGTERM / SIGINT / SIGUSR1 / SIGUSR2 become a request the loop reads between dispatches.

Cluster schedulers (SLURM, Kubernetes, TPU maintenance) send SIGTERM some seconds before they kill a job, and
SLURM can send SIGUSR1 earlier still (`--signal=USR1@120`; submitit's jobs get SIGUSR2). The loop finishes the
step in flight, writes a checkpoint, closes the W&B run and exits 0 so the scheduler can requeue the job, which
then resumes. A second signal while stopping gives up on the orderly stop (KeyboardInterrupt), for a user who
presses Ctrl-C twice.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType

# SIGUSR2: what hydra-submitit-launcher's SLURM jobs get before a time limit or preemption (gan_jax.cli.train
# then hands the job back to submitit, which requeues it).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


class StopRequests:
    """Context manager: while active, the stop signals set `requested` (the signal's name) instead of killing."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # Python only lets the main thread set handlers
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt(f"second stop signal ({signal.Signals(signum).name}) while stopping")
        self.requested = signal.Signals(signum).name

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

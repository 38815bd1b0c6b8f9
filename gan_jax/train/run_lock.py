"""One run per directory: `<run_dir>/.gan_jax.lock` names the live run that writes there, so a second
`gan-jax-train` into the same directory is refused instead of moving the live run's half-written save aside.

The file holds JSON {pid, host, started, argv}. It is made with an atomic create (O_CREAT | O_EXCL) and kept
`flock`ed for the run's lifetime; the kernel drops an flock when its process dies, however it dies. So a lock
file that nobody holds is one a killed run left behind, and it is taken over with a warning:

* same host: exact. Held flock: the run is alive (refused). Free flock: stale. Where the filesystem has no
  flock at all, the pid decides (`os.kill(pid, 0)`).
* another host (a shared filesystem): an flock held there is refused at once where the filesystem shares locks
  between hosts (NFS does); but some shared filesystems keep flocks per host (Lustre `localflock`), so a free
  flock proves nothing there. The holder therefore refreshes the file's mtime every HEARTBEAT_S seconds, and a
  lock of another host counts as stale only when its mtime has not moved for WATCH_S seconds (a SLURM requeue
  onto another node after a hard kill waits that long once, then goes on by itself).

Released (file removed, then flock dropped) on every exit: normal end, exception, preemption stop. Readers
(gan-jax-sample, gan-jax-eval, gan_jax.load) take no lock: their restores are read-only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gan_jax.errors import RunInUseError, warn

LOCK_NAME = ".gan_jax.lock"
HEARTBEAT_S = 30.0  # how often the holder touches its lock file (seen from other hosts)
WATCH_S = 120.0  # how long another host's lock must stay untouched to count as stale
_PATIENCE_S = 2.0  # a lock file is empty for microseconds while it is made; unreadable for longer: left broken
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


def holder_record(host: str | None = None) -> dict[str, Any]:
    """What the lock file says about its run (for the refusal message of the next one)."""
    return {"pid": os.getpid(), "host": host or socket.gethostname(), "started": time.time(), "argv": sys.argv}


def _flock(fd: int) -> str:
    """'ours' (now held by us), 'held' (by a live process) or 'unsupported' (the filesystem has no flock)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    except OSError as err:
        if err.errno in _NO_FLOCK:
            return "unsupported"
        raise
    return "ours"


def _same_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (a released lock is unlinked while we look at it)."""
    try:
        now, held = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def _read(fd: int) -> dict[str, Any] | None:
    try:
        record = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    ok = isinstance(record, dict) and isinstance(record.get("pid"), int) and isinstance(record.get("host"), str)
    return record if ok else None


def _read_soon(fd: int, tries: int = 10) -> dict[str, Any] | None:
    """The record of a lock being written right now (its maker has just created or taken it)."""
    for _ in range(tries):
        if (record := _read(fd)) is not None:
            return record
        time.sleep(0.05)
    return None


def _write(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _mtime(path: Path) -> int | None:
    """The lock file's mtime, through a fresh open (NFS revalidates attributes on open, not on stat)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)


def _heartbeat_moves(path: Path, holder: dict[str, Any], watch_s: float) -> bool:
    """Whether another host's holder still touches its lock file within `watch_s` seconds."""
    warn(
        f"{path.parent} is locked by pid {holder['pid']} on host {holder['host']} (another host): watching its "
        f"heartbeat for up to {watch_s:.0f} s to tell whether that run is still alive"
    )
    first, end = _mtime(path), time.monotonic() + watch_s
    while time.monotonic() < end:
        time.sleep(min(1.0, watch_s / 20))
        now = _mtime(path)
        if now is None:
            return False  # released meanwhile: the caller sees the file gone and starts over
        if now != first:
            return True
    return False


def _since(holder: dict[str, Any]) -> str:
    started = holder.get("started")
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if isinstance(started, int | float) else "?"


def refusal(run_dir: Path, holder: dict[str, Any] | None, exact: bool = True) -> str:
    """The one line a second run into a live run's directory gets."""
    if holder is None:
        who = "its lock file is being written"
    else:
        who = f"pid {holder['pid']} on host {holder['host']}, since {_since(holder)}"
    hint = "" if exact else f"; if that run is gone, delete {run_dir / LOCK_NAME}"
    return f"{run_dir} is in use by a live run ({who}); wait for it, or choose another hydra.run.dir{hint}"


def _stale_reason(path: Path, holder: dict[str, Any], mode: str, me: dict[str, Any], watch_s: float) -> str | None:
    """Why a lock whose flock is not held elsewhere is stale, or None when its run is alive."""
    if holder["host"] == me["host"]:
        return "not running" if mode == "ours" or not _pid_alive(holder["pid"]) else None
    return None if _heartbeat_moves(path, holder, watch_s) else f"no heartbeat for {watch_s:.0f} s"


def _take_existing(path: Path, fd: int, me: dict[str, Any], watch_s: float, patient_until: float) -> bool:
    """True when the existing lock file open as `fd` is now ours; False to look again; RunInUseError when its
    run is alive."""
    mode = _flock(fd)
    if mode == "ours" and not _same_file(fd, path):
        return False  # released (unlinked) after we opened it
    holder = _read(fd)
    if mode == "held":
        raise RunInUseError(refusal(path.parent, holder or _read_soon(fd)))
    if holder is None:
        if time.monotonic() < patient_until:
            return False  # being written; look again
        what = f"the unreadable lock file {path}"
    else:
        reason = _stale_reason(path, holder, mode, me, watch_s)
        if reason is None:
            raise RunInUseError(refusal(path.parent, holder, exact=False))
        what = f"the stale lock of pid {holder['pid']} on {holder['host']} ({reason})"
    if not _same_file(fd, path):
        return False
    warn(f"{path.parent} was not released by the run that held it: taking over {what}")
    _write(fd, me)
    return True


class RunLock:
    """A held lock file; `release()` (or leaving the `with`) removes it. A thread refreshes its mtime."""

    def __init__(self, path: Path, fd: int, record: dict[str, Any], heartbeat_s: float) -> None:
        self.path, self.record, self._fd = path, record, fd
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), name="gan_jax_lock", daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            with contextlib.suppress(OSError):
                os.utime(self._fd)

    def release(self) -> None:
        """Remove the file while still holding its flock (a run that opened it meanwhile sees it gone)."""
        if self._fd is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            if _same_file(self._fd, self.path):
                self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _create(path: Path, me: dict[str, Any], patient_until: float) -> int | None:
    """A new lock file, flocked and filled in; None when one exists already."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return None
    try:
        while (mode := _flock(fd)) == "held" and time.monotonic() < patient_until:
            time.sleep(0.01)  # another run is looking at the empty file for a moment
        if mode == "held":
            raise RunInUseError(refusal(path.parent, _read(fd)))
        _write(fd, me)
    except BaseException as err:
        if not isinstance(err, RunInUseError):  # e.g. a full disk: leave no empty lock file behind
            with contextlib.suppress(OSError):
                path.unlink()
        os.close(fd)
        raise
    return fd


def acquire(
    run_dir: str | Path, *, heartbeat_s: float = HEARTBEAT_S, watch_s: float = WATCH_S, host: str | None = None
) -> RunLock:
    """The run directory's lock for this process; RunInUseError (one line naming the holder) when a live run
    holds it; a stale lock is taken over with a warning."""
    path = Path(run_dir).absolute() / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    me = holder_record(host)
    patient_until = time.monotonic() + _PATIENCE_S
    while True:
        fd = _create(path, me, patient_until)
        if fd is not None:
            return RunLock(path, fd, me, heartbeat_s)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # released between our two calls
        try:
            taken = _take_existing(path, fd, me, watch_s, patient_until)
        except BaseException:
            os.close(fd)
            raise
        if taken:
            return RunLock(path, fd, me, heartbeat_s)
        os.close(fd)
        time.sleep(0.05)


@contextlib.contextmanager
def hold_run_dir(
    run_dir: str | Path, *, is_main: bool = True, any_process: Callable[[bool], bool] = bool
) -> Iterator[RunLock | None]:
    """The run's lock for the body of the `with`. In a multi-process run (one shared directory) process 0 alone
    takes it, and every process learns whether it could, so that none goes on to touch the checkpoints."""
    lock, failure = None, None
    if is_main:
        try:
            lock = acquire(run_dir)
        except Exception as err:  # the other processes must hear of it, not wait in a collective
            failure = err
    try:
        if any_process(failure is not None):
            raise failure or RunInUseError(f"{run_dir}: process 0 could not take the run's lock (see its message)")
        yield lock
    finally:
        if lock is not None:
            lock.release()


def live_holder_message(run_dir: Path) -> str | None:
    """Before Hydra writes `.hydra/` into a run directory: the refusal line when a live run on this host holds
    it (its flock is held), else None. Only a look: the lock itself is taken later, by `hold_run_dir`."""
    path = Path(run_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        if _flock(fd) != "held":
            return None  # free (stale, or just released) or no flock here: hold_run_dir decides
        return refusal(Path(run_dir), _read_soon(fd))
    finally:
        os.close(fd)  # closing drops an flock we may have just taken

"""Recognising a write that failed for want of space or permission, from Python's OSError or from the text of
orbax/tensorstore's errors (they arrive as ValueError `RESOURCE_EXHAUSTED ... [OS error 28: No space left ...]`),
so the run can stop with one line that says what happened and what survives."""

from __future__ import annotations

import errno
import logging
import re

# errno -> how the message names it
DISK_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "a file exceeds the allowed file size (ulimit -f)",
}
_TEXTS = {
    "no space left on device": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "permission denied": errno.EACCES,
    "file too large": errno.EFBIG,
}


def disk_problem(err: BaseException) -> str | None:
    """What kept a write from the disk (e.g. 'no space left on device'), or None for any other error. Follows
    the exception's causes: orbax re-raises the writer thread's error inside its own."""
    seen: BaseException | None = err
    while seen is not None:
        code = getattr(seen, "errno", None)
        if isinstance(seen, OSError) and code in DISK_ERRNOS:
            return DISK_ERRNOS[code]
        text = str(seen).lower()
        match = re.search(r"os error (\d+)", text)
        if match and int(match.group(1)) in DISK_ERRNOS:
            return DISK_ERRNOS[int(match.group(1))]
        for phrase, number in _TEXTS.items():
            if phrase in text:
                return DISK_ERRNOS[number]
        seen = seen.__cause__ or seen.__context__
    return None


class _DropDiskErrors(logging.Filter):
    """Orbax's writer threads log a full disk at ERROR with three tracebacks; the run reports it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        return disk_problem(Exception(text)) is None


_FILTER = _DropDiskErrors()


def _is_writer_noise(exc: BaseException | None) -> bool:
    """tensorstore's write callbacks into an event loop orbax has already closed (after a failed or abandoned
    save) each print a traceback ending in asyncio's `_check_closed`; nothing is lost by dropping them."""
    if not (isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_name == "_check_closed"


def quiet_disk_errors_in_logs() -> None:
    """Idempotent. A full or read-only disk is reported once, by the run's own line: orbax's records of it
    (absl, asyncio loggers) and the closed-event-loop tracebacks of its writer callbacks are dropped."""
    import sys

    for name in ("absl", "asyncio"):
        if _FILTER not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(_FILTER)
    if getattr(sys.excepthook, "_gan_jax", False):
        return
    previous_hook, previous_unraisable = sys.excepthook, sys.unraisablehook

    def excepthook(kind, value, tb):  # type: ignore[no-untyped-def]
        if not _is_writer_noise(value):
            previous_hook(kind, value, tb)

    def unraisablehook(info):  # type: ignore[no-untyped-def]
        if not _is_writer_noise(info.exc_value):
            previous_unraisable(info)

    excepthook._gan_jax = True  # type: ignore[attr-defined]
    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook

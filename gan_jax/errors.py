"""The one exception type users see: every message names the problem and the fix."""


class GanJaxError(Exception):
    """A user-facing error (bad config, missing file, corrupt data). The CLI prints it as one line."""


class ConfigError(GanJaxError):
    """The config names something that does not exist or has the wrong type."""


class DataError(GanJaxError):
    """A dataset file is missing, corrupt, or holds values the model cannot use."""


class CheckpointError(GanJaxError):
    """A checkpoint is missing, damaged, or does not match the config."""


class DivergenceError(GanJaxError):
    """Training produced a non-finite loss, gradient or parameter."""


class RunInUseError(GanJaxError):
    """The run directory is held by another live run: two writers would break each other's checkpoints."""


def warn(message: str) -> None:
    """A warning for the person running the job: one line on stderr, no stack or module path."""
    import sys

    print(f"gan_jax: warning: {message}", file=sys.stderr, flush=True)


class SaveError(GanJaxError):
    """A checkpoint or log could not be written (full disk, read-only or forbidden directory); the earlier sealed
    checkpoints are intact and the run can resume from them."""

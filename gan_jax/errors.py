"""The one exception type users see: every message names the problem and the fix."""


class GanJaxError(Exception):
    """A user-facing error (bad config, missing file, corrupt data). The CLI prints it as one line."""


class ConfigError(GanJaxError):
    """The config names something that does not exist or has the wrong type."""


class DataError(GanJaxError):
    """A dataset file is missing, corrupt, or holds values the model cannot use."""


class CheckpointError(GanJaxError):
    """A checkpoint is missing, damaged, or does not match the config."""

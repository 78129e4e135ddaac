"""Errors a user can cause. Each message says what was wrong and what to do."""


class VisionlabError(Exception):
    """Base class: the CLI prints these as one line, never as a traceback."""


class ConfigError(VisionlabError, ValueError):
    """A bad option or an unknown registry name."""


class DataError(VisionlabError):
    """A missing path, a wrong folder layout or an unusable data set."""


class ModelError(VisionlabError):
    """A run folder without a model, weights that cannot be found or loaded."""

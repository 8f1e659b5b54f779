"""Exception types raised for bad user input.

Every error a user can cause derives from :class:`VisionforgeError`; the CLI
prints its message on one line and exits with status 2 instead of a traceback.
"""

from __future__ import annotations


class VisionforgeError(Exception):
    """Base class for errors caused by user input (files, names, config)."""


class ConfigError(VisionforgeError, ValueError):
    """A configuration key or value is invalid."""


class UnknownNameError(ConfigError):
    """A name (model, dataset, exporter, ...) is not in its registry."""


class ModelArgumentError(ConfigError, TypeError):
    """A model's constructor rejected an argument (bad value or unknown name).

    Both a ``ValueError`` and a ``TypeError``, so code that caught what the
    model's own constructor raised keeps working.
    """


class DataError(VisionforgeError, ValueError):
    """A data file or folder is missing, unreadable or inconsistent."""


class WeightsError(VisionforgeError, RuntimeError):
    """Pretrained or saved weights cannot be obtained or loaded."""

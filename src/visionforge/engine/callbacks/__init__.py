"""Engine callbacks, one per file; Lightning's built-ins are used where they exist."""

from visionforge.engine.callbacks.checkpointing import best_checkpoint, last_checkpoints
from visionforge.engine.callbacks.data_state import LoaderStateRestorer
from visionforge.engine.callbacks.ema import ema_callback, swa_callback
from visionforge.engine.callbacks.history import HistoryRecorder
from visionforge.engine.callbacks.nan_guard import NonFiniteLossError, NonFiniteLossGuard
from visionforge.engine.callbacks.resizing import ProgressiveResizing
from visionforge.engine.callbacks.standard import STANDARD, build_callback, standard_callbacks

__all__ = [
    "HistoryRecorder",
    "LoaderStateRestorer",
    "NonFiniteLossGuard",
    "NonFiniteLossError",
    "ProgressiveResizing",
    "best_checkpoint",
    "last_checkpoints",
    "ema_callback",
    "swa_callback",
    "STANDARD",
    "build_callback",
    "standard_callbacks",
]

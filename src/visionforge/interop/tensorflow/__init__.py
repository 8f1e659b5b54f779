"""Optional TensorFlow/Keras 3 backend: Keras models mirroring ours, weight transfer, TFLite.

Importing this package does not import TensorFlow; :func:`require_tensorflow` does,
and raises a clear error when the ``[tf]`` extra is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from visionforge.errors import VisionforgeError

__all__ = ["TensorFlowMissingError", "tensorflow_available", "require_tensorflow", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "visionforge[tf]"'


class TensorFlowMissingError(VisionforgeError, ImportError):
    """TensorFlow/Keras is needed for this call but is not installed."""


def tensorflow_available() -> bool:
    """True when both ``tensorflow`` and ``keras`` (3.x) can be imported."""
    return (
        importlib.util.find_spec("tensorflow") is not None
        and importlib.util.find_spec("keras") is not None
    )


def _preload_torch_dynamo() -> None:
    # Importing torch._dynamo *after* TensorFlow segfaults (torch 2.14 + TF 2.21: clashing
    # native symbols); torchvision, timm and Lightning all import it. Loading it first is safe.
    if importlib.util.find_spec("torch") is not None:
        importlib.import_module("torch._dynamo")


def require_tensorflow(what: str = "this call") -> tuple[Any, Any]:
    """Import and return ``(tensorflow, keras)``, or raise :class:`TensorFlowMissingError`."""
    # Keras 3 picks its backend at import; ours is TensorFlow.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _preload_torch_dynamo()
    try:
        tf = importlib.import_module("tensorflow")
        keras = importlib.import_module("keras")
    except ImportError as exc:
        raise TensorFlowMissingError(
            f"{what} needs TensorFlow and Keras 3, which are not installed ({exc}). "
            f"Install the extra: {INSTALL_HINT}"
        ) from None
    if not str(getattr(keras, "__version__", "0")).startswith("3"):
        raise TensorFlowMissingError(
            f"{what} needs Keras 3, found keras {keras.__version__}. Install the extra: {INSTALL_HINT}"
        )
    if keras.backend.backend() != "tensorflow":
        raise TensorFlowMissingError(
            f"{what} needs Keras' TensorFlow backend, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras"
        )
    return tf, keras

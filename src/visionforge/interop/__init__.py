"""Framework interop: the Keras-compatible adapter, ``model_call``, the optional
TensorFlow/Keras backend and weight transfer between the two frameworks.

Everything that needs TensorFlow is imported on first use, so this package
works without it; TF-only calls then raise an error saying how to install the
``[tf]`` extra.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported eagerly (the module is light: no torch/TF at import time) because the function
# shares its module's name: a lazy attribute would be shadowed by the submodule once imported.
from visionforge.interop.model_call import available_models as available_models
from visionforge.interop.model_call import load_model as load_model
from visionforge.interop.model_call import model_call as model_call

_LAZY = {
    "KerasAdapter": "visionforge.interop.adapter",
    "LayerView": "visionforge.interop.adapter",
    "torch_to_keras": "visionforge.interop.tensorflow.weights",
    "keras_to_torch": "visionforge.interop.tensorflow.weights",
    "export_tflite": "visionforge.interop.tensorflow.tflite",
    "Callback": "visionforge.interop.keras_callbacks",
    "History": "visionforge.interop.keras_callbacks",
    "EarlyStopping": "visionforge.interop.keras_callbacks",
    "ModelCheckpoint": "visionforge.interop.keras_callbacks",
    "ReduceLROnPlateau": "visionforge.interop.keras_callbacks",
    "CSVLogger": "visionforge.interop.keras_callbacks",
    "LearningRateScheduler": "visionforge.interop.keras_callbacks",
    "TerminateOnNaN": "visionforge.interop.keras_callbacks",
    "LambdaCallback": "visionforge.interop.keras_callbacks",
    "CategoricalCrossentropy": "visionforge.interop.keras_losses",
    "SparseCategoricalCrossentropy": "visionforge.interop.keras_losses",
    "BinaryCrossentropy": "visionforge.interop.keras_losses",
    "MeanSquaredError": "visionforge.interop.keras_losses",
    "tensorflow_available": "visionforge.interop.tensorflow",
    "require_tensorflow": "visionforge.interop.tensorflow",
}

__all__ = sorted([*_LAZY, "available_models", "load_model", "model_call"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'visionforge.interop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""TFLite export of Keras models with TensorFlow's converter, checked with the TFLite interpreter."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import VisionforgeError
from visionforge.interop.tensorflow import require_tensorflow
from visionforge.io import atomic_write_bytes

__all__ = ["export_tflite", "run_tflite", "TFLiteCheckError"]


class TFLiteCheckError(VisionforgeError, RuntimeError):
    """The converted TFLite model does not reproduce the Keras model's outputs."""


def _interpreter(tf: Any, model_path: str) -> Any:
    # ai_edge_litert is TFLite's successor; tf.lite.Interpreter still ships with TF 2.x.
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter(model_path=model_path)
    except ImportError:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=model_path)


def run_tflite(path: str | os.PathLike[str], x: np.ndarray) -> np.ndarray:
    """Run a ``.tflite`` file on ``x`` (one call per sample batch) and return its output."""
    tf, _ = require_tensorflow("running a TFLite model")
    interp = _interpreter(tf, str(path))
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != tuple(x.shape):
        interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x.astype(inp["dtype"]))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"]))


def export_tflite(
    keras_model: Any,
    path: str | os.PathLike[str],
    *,
    check: bool = True,
    sample: np.ndarray | None = None,
    atol: float = 1e-4,
    optimize: bool = False,
) -> Path:
    """Convert ``keras_model`` to ``path`` (``.tflite``) and, with ``check``, compare the
    interpreter's output with Keras' on ``sample`` (random input of the model's shape by default).

    Raises :class:`TFLiteCheckError` when the outputs differ by more than ``atol``.
    """
    tf, _ = require_tensorflow("TFLite export")
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if optimize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    out = Path(path)
    atomic_write_bytes(out, converter.convert())
    if check:
        if sample is None:
            shape = [1 if d is None else int(d) for d in keras_model.input_shape]
            sample = np.random.default_rng(0).random(shape, dtype=np.float32)
        expected = np.asarray(keras_model(sample, training=False))
        got = run_tflite(out, np.asarray(sample, dtype=np.float32))
        diff = float(np.max(np.abs(expected - got)))
        if not optimize and diff > atol:
            raise TFLiteCheckError(
                f"{out}: TFLite output differs from Keras by {diff:.3g} (> {atol})"
            )
    return out

"""TFLite (LiteRT) export, run with the LiteRT/TFLite interpreter.

Two routes, tried in order:

1. ``litert-torch`` (Google's maintained PyTorch -> LiteRT converter), for any model;
2. for the models that have a layer-for-layer Keras twin in
   :mod:`visionforge.interop.tensorflow` (``deeplabv3plus_codavision``, ``unet`` with a
   ResNet encoder, ``deepepicnn``): the weights are transferred to the Keras model and
   TensorFlow's own TFLite converter writes the file. This route needs only the ``[tf]``
   extra, which shares our environment, while ``litert-torch`` currently does not.

Either way the ``.tflite`` file is run by the interpreter and compared with PyTorch.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import torch

from visionforge.export.base import (
    SKIPPED,
    ExportContext,
    ExportResult,
    check_artifact,
    register_exporter,
)
from visionforge.io import atomic_write

TOLERANCE = 1e-3
# Why litert-torch may be missing: measured with `pip install --dry-run litert-torch` (0.10.0).
NOT_INSTALLED = (
    "skipped: litert-torch is not installed. It cannot share this environment: its dependency "
    "litert-converter pins xdsl==0.28.0, which needs typing-extensions<4.13 and so would "
    "downgrade pydantic (FastAPI) and anyio; install it in a separate environment "
    "(pip install litert-torch) to export TFLite"
)


def _interpreter_cls():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # older installs ship the interpreter in TensorFlow only
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter


KERAS_TWINS = ("deeplabv3plus_codavision", "unet", "deepepicnn")


def _keras_twin(ctx: ExportContext) -> Any | None:
    """The Keras twin of the model with its weights, or ``None`` when there is none."""
    from visionforge.interop.tensorflow import tensorflow_available

    name, kwargs = ctx.meta.get("name"), dict(ctx.meta.get("kwargs") or {})
    if name not in KERAS_TWINS or not tensorflow_available():
        return None
    from visionforge.interop.tensorflow.models import (
        build_deepepicnn,
        build_deeplabv3plus,
        build_unet,
    )
    from visionforge.interop.tensorflow.weights import torch_to_keras

    shape = ctx.sample_shape
    if name == "deeplabv3plus_codavision":
        keras_model = build_deeplabv3plus(shape[1:], kwargs.get("num_classes", 5))
    elif name == "unet":
        backbone = str(kwargs.get("backbone", "resnet18"))
        if not backbone.lower().startswith("resnet") or kwargs.get("encoder_kwargs"):
            return None
        keras_model = build_unet(
            shape[1:],
            kwargs.get("num_classes", 2),
            in_chans=kwargs.get("in_chans", 3),
            backbone=backbone,
            decoder_channels=kwargs.get("decoder_channels"),
        )
    else:
        keras_model = build_deepepicnn(
            kwargs.get("num_classes", 2),
            length=shape[-1],
            in_chans=kwargs.get("in_chans", 1),
            dropout=kwargs.get("drop_rate", 0.025),
            conv_dropout=kwargs.get("conv_drop_rate", 0.0),
        )
    torch_to_keras(ctx.model, keras_model)
    return keras_model


def _export_via_keras(ctx: ExportContext, result: ExportResult, keras_model: Any) -> ExportResult:
    from visionforge.interop.tensorflow.tflite import export_tflite as keras_tflite
    from visionforge.interop.tensorflow.tflite import run_tflite

    path = keras_tflite(keras_model, ctx.out_dir / "model.tflite", check=False)
    result.set_file(path)
    # Keras works channels-last: NCHW -> NHWC ([B, C, L] -> [B, L, C]) and back for the outputs.
    to_last = (0, 2, 3, 1) if ctx.inputs.ndim == 4 else (0, 2, 1)
    x = np.ascontiguousarray(ctx.inputs.transpose(to_last))

    def run() -> list[np.ndarray]:
        out = run_tflite(path, x)
        return [out.transpose(0, 3, 1, 2) if out.ndim == 4 else out]

    check_artifact(result, ctx, run, TOLERANCE)
    result.extra.update(
        {
            "batch": int(ctx.inputs.shape[0]),
            "route": "keras twin + TF converter",
            "input_layout": "NHWC" if ctx.inputs.ndim == 4 else "NLC",
        }
    )
    return result


@register_exporter("tflite", order=60, description="TFLite/LiteRT via litert-torch or a Keras twin")
def export_tflite(ctx: ExportContext) -> ExportResult:
    """Write ``model.tflite`` and check it with the interpreter (<= 1e-3 max abs difference)."""
    result = ExportResult("tflite")
    if importlib.util.find_spec("litert_torch") is None:
        keras_model = _keras_twin(ctx)
        if keras_model is not None:
            return _export_via_keras(ctx, result, keras_model)
        result.status = SKIPPED
        result.reason = NOT_INSTALLED + (
            f"; models {', '.join(KERAS_TWINS)} export through their Keras twins with the "
            "[tf] extra instead"
        )
        return result
    import litert_torch

    wrapped = ctx.wrapped_model()
    sample = (torch.from_numpy(ctx.inputs),)
    edge = litert_torch.convert(wrapped, sample)
    path = ctx.out_dir / "model.tflite"
    with atomic_write(path) as tmp:
        edge.export(str(tmp))
    result.set_file(path)
    interp = _interpreter_cls()(model_path=str(path))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs_d = interp.get_output_details()

    def run() -> list[np.ndarray]:
        interp.set_tensor(inp["index"], ctx.inputs)
        interp.invoke()
        return [interp.get_tensor(o["index"]) for o in outs_d]

    check_artifact(result, ctx, run, TOLERANCE)
    result.extra["batch"] = int(ctx.inputs.shape[0])
    return result

"""TFLite (LiteRT) export through ``litert-torch``, run with the LiteRT interpreter."""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from visionforge.export.base import (
    SKIPPED,
    ExportContext,
    ExportResult,
    OutputTuple,
    median_latency_ms,
    parity_result,
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


@register_exporter("tflite", order=60, description="TFLite/LiteRT via litert-torch")
def export_tflite(ctx: ExportContext) -> ExportResult:
    """Convert with ``litert_torch.convert`` to ``model.tflite`` and check it (<= 1e-3)."""
    result = ExportResult("tflite")
    if importlib.util.find_spec("litert_torch") is None:
        result.status, result.reason = SKIPPED, NOT_INSTALLED
        return result
    import litert_torch

    wrapped = OutputTuple(ctx.model, ctx.output_names if len(ctx.reference) > 1 else None).eval()
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

    parity_result(result, ctx.reference, run(), TOLERANCE)
    result.latency_ms = median_latency_ms(run)
    result.extra["batch"] = int(ctx.inputs.shape[0])
    return result

"""INT8 post-training quantisation for OpenVINO with NNCF (``export quantize=int8-nncf``).

The fp32 ONNX export is read by OpenVINO, quantised by ``nncf.quantize`` on the calibration
images (already in the model's input contract: :class:`~visionforge.export.quantize.
Int8Evaluation` prepares them exactly as for ONNX Runtime's static INT8) and saved as an
OpenVINO IR (``model.int8-nncf.xml`` + ``.bin``) beside the other exports. Its accuracy is
measured like the ONNX Runtime INT8 files (against labels when validation data has them,
else as disagreement with fp32) and recorded in ``int8.json`` as ``openvino-int8-nncf``,
which ``Predictor(backend="auto")`` considers under the same one-point rule.

Scopes (export option ``nncf_scope``):

* ``all``: NNCF's default placement (convolutions, element-wise adds and multiplies,
  pooling, interpolation, concatenation...);
* ``conv``: only the inputs of convolutions are quantised, everything else stays fp32;
  a fallback when full quantisation costs too much accuracy.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, DataError
from visionforge.export.base import ExportContext, ExportResult

__all__ = ["SCOPES", "DEFAULT_SCOPE", "NAME", "quantize_openvino", "nncf_results"]

#: Where NNCF may put quantisers (export option ``nncf_scope``).
SCOPES = ("all", "conv")
#: Chosen by measurement on the trained IHC DeepLabV3+ at 512x512 (docs/performance.md):
#: ``all`` ran 3.62x OpenVINO fp32 with mIoU -0.25 points (no loss), ``conv`` 2.43x with 0.00.
DEFAULT_SCOPE = "all"
#: Report row and ``int8.json`` entry name (also the ``Predictor`` variant name).
NAME = "openvino-int8-nncf"

# OpenVINO op types NNCF would otherwise quantise; ignored in the ``conv`` scope so that only
# convolution inputs get quantisers (names absent from a graph are fine: validate=False).
_NON_CONV_TYPES = [
    "Add", "Multiply", "Subtract", "Divide", "MatMul", "AvgPool", "MaxPool", "ReduceMean",
    "ReduceMax", "ReduceSum", "ReduceL2", "Interpolate", "Concat", "Maximum", "Minimum",
    "Power", "SquaredDifference", "MVN", "NormalizeL2", "Equal", "Less", "LessEqual",
    "Greater", "GreaterEqual", "LogicalAnd", "LogicalOr", "LogicalNot", "LogicalXor",
]


def _check_scope(scope: str) -> str:
    """``scope`` normalised; ConfigError naming the key and the choices otherwise."""
    scope = str(scope).strip().lower()
    if scope not in SCOPES:
        raise ConfigError(f"nncf_scope must be one of {list(SCOPES)}, got {scope!r}")
    return scope


def quantize_openvino(
    fp32_onnx: str | os.PathLike[str],
    out_xml: str | os.PathLike[str],
    calibration: np.ndarray,
    scope: str = DEFAULT_SCOPE,
) -> Path:
    """Quantise ``fp32_onnx`` with NNCF on ``calibration`` (model inputs, ``[N, ...]``) and
    write the OpenVINO IR ``out_xml`` (+ ``.bin``); returns ``out_xml``.

    The IR is written in a temporary folder beside ``out_xml`` and moved into place (the
    ``.bin`` first, then the ``.xml`` that names it), so a reader never sees a half file.
    """
    scope = _check_scope(scope)
    if calibration is None or len(calibration) == 0:
        raise DataError("NNCF INT8 quantisation needs calibration_data (samples from the dataset)")
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32_onnx))
    # one sample per step, as ONNX Runtime's calibration reader does
    dataset = nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))])
    kwargs: dict[str, Any] = {"subset_size": len(calibration)}
    if scope == "conv":
        kwargs["ignored_scope"] = nncf.IgnoredScope(types=_NON_CONV_TYPES, validate=False)
    # NNCF logs one INFO line per skipped operation (hundreds in the conv scope): keep quiet
    level = nncf.nncf_logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        quantized = nncf.quantize(
            model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE, **kwargs
        )
    finally:
        nncf.nncf_logger.setLevel(level)
    out = Path(out_xml)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vf_nncf_", dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(staged, out)
    return out


def nncf_results(
    ctx: ExportContext,
    fp32_onnx: Path,
    calibration_data: Any = None,
    validation_data: Any = None,
) -> list[ExportResult]:
    """The ``openvino-int8-nncf`` report row: the IR written, its speed against OpenVINO fp32
    on the same ONNX file, its agreement with fp32 and its metric drop."""
    from visionforge.export.quantize import Int8Evaluation, failure_reason
    from visionforge.export.runtimes import available, openvino_runner

    scope = _check_scope(ctx.options.get("nncf_scope", DEFAULT_SCOPE))
    result = ExportResult(NAME)
    missing = [m for m in ("nncf", "openvino") if not available(m)]
    if missing:
        result.status = "skipped"
        result.reason = f"skipped: {', '.join(missing)} not installed (pip install 'visionforge[openvino]')"
        return [result]
    if calibration_data is None:
        result.status = "skipped"
        result.reason = "skipped: NNCF INT8 needs calibration_data"
        return [result]
    try:
        ev = Int8Evaluation(ctx, openvino_runner(fp32_onnx), calibration_data, validation_data)
        assert ev.calib is not None
        path = quantize_openvino(fp32_onnx, ctx.out_dir / "model.int8-nncf.xml", ev.calib, scope)
        result.set_file(path)
        result.size_bytes = path.stat().st_size + path.with_suffix(".bin").stat().st_size
        ev.measure(result, openvino_runner(path), "nncf")
        result.extra.update({"runtime": "openvino", "scope": scope, "fp32_runtime": "openvino"})
    except Exception as exc:
        result.status = "failed"
        result.reason = failure_reason(exc)
    return [result]

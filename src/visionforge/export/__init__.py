"""Export a model dir to deployment formats, each checked in its own runtime.

>>> from visionforge.export import export_model          # doctest: +SKIP
>>> report = export_model("runs/digits/model", formats=["onnx", "torchscript"])  # doctest: +SKIP
>>> print(report.table())                               # doctest: +SKIP

Formats (registered in :data:`visionforge.registry.EXPORTERS`): ``pytorch``,
``torchscript``, ``onnx``, ``tensorrt``, ``coreml``, ``tflite``, ``executorch``;
``quantize="int8"`` adds ONNX Runtime INT8 models (dynamic, and static with
calibration data). A failure in one format is recorded and the others still run.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError
from visionforge.export import (  # noqa: F401  (imports register the exporters)
    coreml,
    executorch,
    onnx,
    pytorch,
    tensorrt,
    tflite,
    torchscript,
)
from visionforge.export.base import ExportContext, ExportResult
from visionforge.export.contract import flatten_outputs, real_sample_inputs
from visionforge.export.report import ExportReport
from visionforge.registry import EXPORTERS

__all__ = ["export_model", "list_exporters", "default_formats", "ExportReport", "ExportResult"]

_log = logging.getLogger(__name__)


def list_exporters() -> list[str]:
    """Registered export formats in report order."""
    return sorted(EXPORTERS.list(), key=lambda n: EXPORTERS.entry(n).metadata.get("order", 99))


def default_formats(meta: dict[str, Any]) -> list[str]:
    """Formats exported when none are named: all, with ExecuTorch only for 1-D signal models."""
    fmts = list_exporters()
    if meta.get("task") != "signal" and meta.get("input_layout") != "NCL":
        fmts = [f for f in fmts if f != "executorch"]
    return fmts


def _parse_formats(formats: str | Sequence[str] | None, meta: dict[str, Any]) -> list[str]:
    if formats is None or formats == "all" or formats == ["all"]:
        return default_formats(meta)
    if isinstance(formats, str):
        formats = [f for f in formats.split(",") if f.strip()]
    out = []
    for f in formats:
        name = EXPORTERS.canonical(f.strip())  # raises UnknownNameError with suggestions
        if name not in out:
            out.append(name)
    order = {n: i for i, n in enumerate(list_exporters())}
    return sorted(out, key=order.__getitem__)


def export_model(
    model_dir: str | os.PathLike[str],
    formats: str | Sequence[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    quantize: str | None = None,
    calibration_data: Any = None,
    *,
    validation_data: Any = None,
    batch_size: int = 2,
    options: dict[str, Any] | None = None,
    print_table: bool = False,
) -> ExportReport:
    """Export ``model_dir`` to ``formats`` under ``out_dir`` (default ``<model_dir>/export``).

    Args:
        formats: names or a comma-separated string (``"onnx,torchscript"``); None/``"all"``
            exports every registered format (ExecuTorch only for signal models).
        quantize: ``"int8"`` adds INT8 ONNX models (dynamic; static when
            ``calibration_data`` is given); needs the ``onnx`` format (added if missing).
        calibration_data: samples in the model's input range (not normalised): an array
            ``[N, C, H, W]``, a dataset of ``{"image", "label"|"mask"}`` dicts or ``(x, y)`` tuples.
        validation_data: same forms, with labels/masks, to measure the INT8 metric drop.
        batch_size: size of the smoke batch every artifact is checked on.
        options: exporter options (``opset``, ``onnx_exporter``, ``max_batch``, ...).

    Returns:
        An :class:`ExportReport`; ``export_report.json`` is written to ``out_dir``.
    """
    import torch

    from visionforge.models.model_dir import load_model

    mdir = Path(model_dir)
    model = load_model(mdir)  # raises WeightsError naming the dir if it is not a model dir
    meta = dict(model.visionforge_meta)
    names = _parse_formats(formats, meta)
    if quantize is not None:
        if str(quantize).lower() != "int8":
            raise ConfigError(f"quantize must be 'int8' (or None), got {quantize!r}")
        if "onnx" not in names:
            names = _parse_formats([*names, "onnx"], meta)
    out = Path(out_dir) if out_dir is not None else mdir / "export"
    out.mkdir(parents=True, exist_ok=True)

    inputs = None
    if calibration_data is not None:
        from visionforge.export.quantize import as_model_inputs

        calib, _ = as_model_inputs(calibration_data, meta, limit=batch_size)
        if len(calib) == batch_size:
            inputs = calib
    if inputs is None:
        inputs = real_sample_inputs(meta, batch_size)
    with torch.inference_mode():
        reference = [
            (n, v.float().numpy()) for n, v in flatten_outputs(model(torch.from_numpy(inputs)))
        ]
    ctx = ExportContext(
        model=model,
        meta=meta,
        model_dir=mdir,
        out_dir=out,
        inputs=inputs,
        reference=reference,
        options=dict(options or {}),
    )
    report = ExportReport(
        model_dir=str(mdir),
        out_dir=str(out),
        meta={k: meta.get(k) for k in ("name", "task", "class_names", "input_size")},
    )
    for name in names:
        report.results.append(_run_one(name, ctx))
        if name == "onnx" and quantize is not None:
            if "onnx" in ctx.artifacts:
                from visionforge.export.quantize import quantization_results

                report.results.extend(
                    quantization_results(
                        ctx, ctx.artifacts["onnx"], calibration_data, validation_data
                    )
                )
            else:
                report.results.append(
                    ExportResult("onnx-int8", status="failed", reason="the fp32 ONNX export failed")
                )
    report.save()
    if print_table:
        print(report.table())
    return report


def _run_one(name: str, ctx: ExportContext) -> ExportResult:
    fn = EXPORTERS.get(name)
    try:
        result = fn(ctx)
    except Exception as exc:  # one format failing must not stop the others
        _log.debug("exporter %s failed:\n%s", name, traceback.format_exc())
        detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        result = ExportResult(name, status="failed", reason=f"{type(exc).__name__}: {detail}")
    if (
        result.status == "ok"
        and result.parity_error is not None
        and not np.isfinite(result.parity_error)
    ):
        result.status = "failed"
    _log.info("export %s: %s %s", name, result.status, result.reason)
    return result

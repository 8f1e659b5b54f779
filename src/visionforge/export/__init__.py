"""Export a model dir to deployment formats, each checked in its own runtime.

>>> from visionforge.export import export_model          # doctest: +SKIP
>>> report = export_model("runs/digits/model", formats=["onnx", "torchscript"])  # doctest: +SKIP
>>> print(report.table())                               # doctest: +SKIP

Formats (registered in :data:`visionforge.registry.EXPORTERS`): ``pytorch``,
``torchscript``, ``onnx``, ``tensorrt``, ``coreml``, ``tflite``, ``executorch``;
``quantize="int8"`` adds ONNX Runtime INT8 models (dynamic, and static with
calibration data), ``quantize="int8-nncf"`` an OpenVINO INT8 IR quantised by NNCF
(``"int8,int8-nncf"``: both). A failure in one format is recorded and the others still run.
"""

from __future__ import annotations

import importlib
import logging
import os
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError
from visionforge.export.base import ExportContext, ExportResult
from visionforge.export.contract import flatten_outputs, real_sample_inputs
from visionforge.export.report import ExportReport
from visionforge.models.contract import contract_from_meta
from visionforge.registry import EXPORTERS

__all__ = ["export_model", "list_exporters", "default_formats", "ExportReport", "ExportResult"]

_log = logging.getLogger(__name__)

#: Modules whose import registers an exporter in EXPORTERS.
FORMAT_MODULES = ("pytorch", "torchscript", "onnx", "tensorrt", "coreml", "tflite", "executorch")
for _module in FORMAT_MODULES:
    importlib.import_module(f"{__name__}.{_module}")


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


def _resolve_formats(
    formats: str | Sequence[str] | None, quantize: str | None, meta: dict[str, Any]
) -> list[str]:
    """The formats to export, with ``onnx`` added when INT8 quantisation needs it."""
    names = _parse_formats(formats, meta)
    if not parse_quantize(quantize):
        return names
    return names if "onnx" in names else _parse_formats([*names, "onnx"], meta)


#: ``quantize`` values: ONNX Runtime INT8 (dynamic/static QDQ) and OpenVINO INT8 via NNCF.
QUANTIZE_KINDS = ("int8", "int8-nncf")


def parse_quantize(quantize: str | Sequence[str] | None) -> list[str]:
    """``"int8"``, ``"int8-nncf"`` or both (comma list) as a list; raises ConfigError otherwise."""
    if quantize is None:
        return []
    items = quantize.split(",") if isinstance(quantize, str) else list(quantize)
    kinds = [str(q).strip().lower() for q in items if str(q).strip()]
    bad = [q for q in kinds if q not in QUANTIZE_KINDS]
    if bad or not kinds:
        raise ConfigError(
            f"quantize must be {' or '.join(QUANTIZE_KINDS)} or both comma-separated "
            f"(e.g. quantize=int8,int8-nncf), got {quantize!r}"
        )
    return list(dict.fromkeys(kinds))


def _smoke_inputs(meta: dict[str, Any], calibration_data: Any, batch_size: int) -> np.ndarray:
    """The batch every artifact is checked on: calibration samples if there are enough, else
    real sample images/signals; either way in the model's input contract."""
    if calibration_data is not None:
        from visionforge.export.quantize import as_model_inputs

        calib, _ = as_model_inputs(calibration_data, meta, limit=batch_size)
        if len(calib) == batch_size:
            return calib
    return real_sample_inputs(meta, batch_size)


def _reference_outputs(model: Any, inputs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The PyTorch model's named outputs on ``inputs`` (what each artifact must reproduce)."""
    import torch

    with torch.inference_mode():
        out = model(torch.from_numpy(inputs))
    return [(n, v.float().numpy()) for n, v in flatten_outputs(out)]


def _quantized_results(
    ctx: ExportContext, kinds: list[str], calibration_data: Any, validation_data: Any
) -> list[ExportResult]:
    """INT8 rows of the report, made from the fp32 ONNX artifact."""
    if "onnx" not in ctx.artifacts:
        return [ExportResult("onnx-int8", status="failed", reason="the fp32 ONNX export failed")]
    from visionforge.export.quantize import quantization_results

    results: list[ExportResult] = []
    if "int8" in kinds:
        modes = ctx.options.get("int8_modes")  # e.g. "static": skip the slow dynamic INT8 pass
        if isinstance(modes, str):
            modes = tuple(m.strip() for m in modes.split(",") if m.strip())
        results += quantization_results(
            ctx,
            ctx.artifacts["onnx"],
            calibration_data,
            validation_data,
            **({"modes": modes} if modes else {}),
        )
    if "int8-nncf" in kinds:
        from visionforge.export.nncf_quant import nncf_results

        results += nncf_results(ctx, ctx.artifacts["onnx"], calibration_data, validation_data)
    return results


def _record_int8(mdir: Path, meta: dict[str, Any], results: list[ExportResult]) -> None:
    """Note the INT8 files and their accuracy drop in the model dir (read by ``Predictor``)."""
    from visionforge.export.quantize import record_int8

    record_int8(mdir, meta.get("task", "classification"), results)


def _report_for(mdir: Path, out: Path, meta: dict[str, Any]) -> ExportReport:
    """An empty report naming the model and the input contract every artifact expects."""
    summary = {k: meta.get(k) for k in ("name", "task", "class_names", "input_size")}
    summary["preprocessing"] = contract_from_meta(meta).to_dict()
    return ExportReport(model_dir=str(mdir), out_dir=str(out), meta=summary)


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
            ``calibration_data`` is given); ``"int8-nncf"`` an OpenVINO INT8 IR made by NNCF
            from the calibration data (option ``nncf_scope``: ``all`` | ``conv``);
            ``"int8,int8-nncf"`` both. Needs the ``onnx`` format (added if missing).
        calibration_data: RGB samples in the model's input range (not normalised): an array
            ``[N, C, H, W]``, a dataset of ``{"image", "label"|"mask"}`` dicts or ``(x, y)`` tuples.
        validation_data: same forms, with labels/masks, to measure the INT8 metric drop.
        batch_size: size of the smoke batch every artifact is checked on.
        options: exporter options (``opset``, ``onnx_exporter``, ``max_batch``, ...).

    Returns:
        An :class:`ExportReport`; ``export_report.json`` is written to ``out_dir``. Artifacts
        take the tensor the PyTorch model takes: the report's ``model.preprocessing`` (the
        input contract of ``model.json``) says how to make it from an image.
    """
    from visionforge.models.model_dir import load_model, model_dir_path
    from visionforge.models.spec import model_meta

    mdir = model_dir_path(model_dir)  # a file (checkpoint, pickle) is refused with what to pass
    model = load_model(mdir)  # raises WeightsError naming the dir if it is not a model dir
    meta = dict(model_meta(model))
    names = _resolve_formats(formats, quantize, meta)
    if "int8-nncf" in parse_quantize(quantize):  # a bad scope is a config error, not a failed row
        from visionforge.export.nncf_quant import DEFAULT_SCOPE, _check_scope

        _check_scope((options or {}).get("nncf_scope", DEFAULT_SCOPE))
    out = Path(out_dir) if out_dir is not None else mdir / "export"
    out.mkdir(parents=True, exist_ok=True)
    if meta.get("task") == "detection":
        return _export_detector(model, meta, mdir, out, names, print_table)
    inputs = _smoke_inputs(meta, calibration_data, batch_size)
    ctx = ExportContext(
        model=model,
        meta=meta,
        model_dir=mdir,
        out_dir=out,
        inputs=inputs,
        reference=_reference_outputs(model, inputs),
        options=dict(options or {}),
    )
    report = _report_for(mdir, out, meta)
    for name in names:
        report.results.append(_run_one(name, ctx))
        if name == "onnx" and quantize is not None:
            int8 = _quantized_results(
                ctx, parse_quantize(quantize), calibration_data, validation_data
            )
            report.results.extend(int8)
            _record_int8(mdir, meta, int8)
    report.save()
    if print_table:
        print(report.table())
    return report


def _export_detector(model: Any, meta: dict[str, Any], mdir: Path, out: Path, names: list[str],
                     print_table: bool) -> ExportReport:
    """Detection model dirs: ONNX (traced, ORT parity on boxes and scores); others skipped."""
    from visionforge.export.detection import export_detection_onnx_result, skipped_detection

    report = _report_for(mdir, out, meta)
    for name in names:
        if name != "onnx":
            report.results.append(skipped_detection(name))
            continue
        try:
            report.results.append(export_detection_onnx_result(model, meta, out))
        except Exception as exc:  # reported, as for the other formats
            report.results.append(ExportResult("onnx", status="failed",
                                               reason=f"{type(exc).__name__}: {exc}"[:300]))
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

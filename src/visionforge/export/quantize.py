"""INT8 quantisation of the ONNX model with ONNX Runtime (dynamic and static) and its cost.

Static quantisation calibrates activation ranges on real samples (``calibration_data``);
dynamic quantisation needs none. Each INT8 model is compared with the fp32 ONNX model on
validation data: accuracy (classification/signal) or mIoU (segmentation) when labels are
given, else agreement with the fp32 model's own predictions.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.export.base import OK, ExportContext, ExportResult, median_latency_ms
from visionforge.export.contract import input_shape, normalize

__all__ = [
    "as_model_inputs",
    "quantize_onnx",
    "quantization_results",
    "score",
    "MODES",
    "INT8_RECORD",
    "record_int8",
    "weights_digest",
]

_log = logging.getLogger(__name__)
MODES = ("dynamic", "static")


def as_model_inputs(
    data: Any, meta: dict[str, Any], *, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn samples into ``(inputs, targets)``: inputs finished per ``model.json``'s contract.

    ``data`` may be an RGB array/tensor ``[N, C, H, W]`` (or ``[N, C, L]``) in the model's input
    range (not yet normalised), a pair ``(inputs, targets)``, or a sequence of dataset samples
    (``{"image", "label"|"mask"}`` dicts or ``(x, y, ...)`` tuples).
    """
    import torch

    def arr(v: Any) -> np.ndarray:
        return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)

    targets = None
    batch_ndim = len(input_shape(meta)) + 1
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and isinstance(data[0], np.ndarray | torch.Tensor)
        and data[0].ndim == batch_ndim
    ):
        x, targets = arr(data[0]), arr(data[1])
    elif isinstance(data, np.ndarray | torch.Tensor):
        x = arr(data)
    elif isinstance(data, Iterable):
        xs, ys = [], []
        for i, s in enumerate(data):
            if limit is not None and i >= limit:
                break
            if isinstance(s, dict):
                xs.append(arr(s["image"] if "image" in s else s["x"]))
                y = s.get("mask", s.get("label"))
            else:
                xs.append(arr(s[0]))
                y = s[1] if len(s) > 1 else None
            if y is not None:
                ys.append(arr(y))
        if not xs:
            raise DataError("calibration/validation data is empty")
        x = np.stack(xs)
        targets = np.stack(ys) if len(ys) == len(xs) else None
    else:
        raise DataError(f"cannot use {type(data).__name__} as calibration/validation data")
    if limit is not None:
        x = x[:limit]
        targets = targets[:limit] if targets is not None else None
    expected = input_shape(meta)
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"calibration/validation samples have shape {list(x.shape[1:])}, the model expects "
            f"{list(expected)} (model.json input_size); resize them first"
        )
    return normalize(x.astype(np.float32), meta), targets


class _Reader:
    """ONNX Runtime calibration reader over a batch array (one sample per call)."""

    def __init__(self, name: str, x: np.ndarray) -> None:
        self.name, self.x, self.i = name, x, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {self.name: self.x[self.i - 1 : self.i]}

    def rewind(self) -> None:
        self.i = 0


def quantize_onnx(
    fp32_path: str | Path, out_path: str | Path, mode: str, calibration: np.ndarray | None = None
) -> Path:
    """Write an INT8 copy of ``fp32_path``: ``dynamic`` (weights) or ``static`` (QDQ, calibrated)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from visionforge.io import atomic_write

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(prefix="vf_quant_") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:  # folds constants and infers shapes so more ops get quantised
            quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        except Exception as exc:
            _log.info("quant_pre_process failed (%s); quantising the raw graph", exc)
            pre = Path(fp32_path)
        staged = Path(tmp) / "int8.onnx"
        if mode == "dynamic":
            quantize_dynamic(str(pre), str(staged), weight_type=QuantType.QInt8, per_channel=False)
        elif mode == "static":
            if calibration is None or len(calibration) == 0:
                raise DataError(
                    "static INT8 quantisation needs calibration_data (samples from the dataset)"
                )
            import onnx

            name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
            quantize_static(
                str(pre),
                str(staged),
                _Reader(name, calibration),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        else:
            raise ValueError(f"mode must be one of {MODES}")
        with atomic_write(out_path) as dst:
            dst.write_bytes(staged.read_bytes())
    return out_path


def score(task: str, outputs: np.ndarray, targets: np.ndarray, num_classes: int) -> float:
    """Accuracy (classification/signal, percent) or mean IoU over present classes (percent)."""
    pred = outputs.argmax(1)
    if task == "segmentation":
        ious = []
        for c in range(num_classes):
            p, t = pred == c, targets == c
            union = np.logical_or(p, t).sum()
            if union:
                ious.append(np.logical_and(p, t).sum() / union)
        return float(100 * np.mean(ious)) if ious else float("nan")
    return float(100 * np.mean(pred == targets))


def quantization_results(
    ctx: ExportContext,
    fp32_onnx: Path,
    calibration_data: Any = None,
    validation_data: Any = None,
    modes: tuple[str, ...] = MODES,
) -> list[ExportResult]:
    """Quantise ``fp32_onnx`` in each mode; report size, latency, agreement and metric drop."""
    from visionforge.export.onnx import ort_session, run_session

    calib = None
    if calibration_data is not None:
        calib, _ = as_model_inputs(
            calibration_data, ctx.meta, limit=int(ctx.options.get("calibration_samples", 64))
        )
    if validation_data is not None:
        val_x, val_y = as_model_inputs(validation_data, ctx.meta)
    else:
        val_x, val_y = (calib if calib is not None else ctx.inputs), None
    task = ctx.meta.get("task", "classification")
    fp32 = ort_session(fp32_onnx)

    def predict(sess: Any) -> np.ndarray:
        bs = 8
        return np.concatenate(
            [run_session(sess, val_x[i : i + bs])[0] for i in range(0, len(val_x), bs)]
        )

    ref = predict(fp32)
    n_cls = int(ref.shape[1])
    fp32_latency = median_latency_ms(lambda: run_session(fp32, ctx.inputs))
    results = []
    for mode in modes:
        result = ExportResult(f"onnx-int8-{mode}")
        try:
            if mode == "static" and calib is None:
                result.status = "skipped"
                result.reason = "skipped: static INT8 needs calibration_data"
                results.append(result)
                continue
            path = quantize_onnx(fp32_onnx, ctx.out_dir / f"model.int8-{mode}.onnx", mode, calib)
            result.set_file(path)
            sess = ort_session(path)
            out = predict(sess)
            if not np.all(np.isfinite(out)):
                raise ValueError("INT8 outputs contain NaN or Inf")
            result.parity_error = float(np.max(np.abs(out - ref)))
            result.latency_ms = median_latency_ms(lambda s=sess: run_session(s, ctx.inputs))
            metric = "miou" if task == "segmentation" else "accuracy"
            agree = score(task, out, ref.argmax(1), n_cls)
            info: dict[str, Any] = {
                "mode": mode,
                "n_validation": int(len(val_x)),
                f"agreement_with_fp32_{metric}": agree,
                "fp32_latency_ms": fp32_latency,
                "speedup_vs_fp32": fp32_latency / result.latency_ms if result.latency_ms else None,
            }
            if val_y is not None:
                f, q = score(task, ref, val_y, n_cls), score(task, out, val_y, n_cls)
                info.update({f"fp32_{metric}": f, f"int8_{metric}": q, f"{metric}_drop": f - q})
            else:
                info["note"] = (
                    "no labelled validation_data: the drop is measured as disagreement with fp32 "
                    f"({metric} of INT8 against fp32 predictions)"
                )
                info[f"{metric}_drop"] = 100.0 - agree
            result.extra.update(info)
            result.status = OK
        except Exception as exc:
            result.status = "failed"
            result.reason = (
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            )
        results.append(result)
    return results


#: Written into the model dir by ``export quantize=int8``: the INT8 files and their measured cost.
INT8_RECORD = "int8.json"


def weights_digest(model_dir: str | Path) -> str:
    """SHA-256 (16 hex) of the model dir's weights: ties an INT8 record to the weights it came from."""
    import hashlib

    from visionforge.models.model_dir import WEIGHTS_FILE

    h = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def record_int8(model_dir: str | Path, task: str, results: list[ExportResult]) -> Path | None:
    """Write ``<model_dir>/int8.json`` listing each INT8 file with its measured metric drop.

    ``Predictor(backend="auto")`` reads it and considers the INT8 files whose drop is at most
    one point. The drop is against labels when validation data had them, else it is the
    disagreement with the fp32 model (``basis`` says which). A read-only model dir is skipped.
    """
    from visionforge.io import atomic_write_json

    mdir = Path(model_dir)
    metric = "miou" if task == "segmentation" else "accuracy"
    entries = []
    for r in results:
        if r.status != OK or not r.file or f"{metric}_drop" not in r.extra:
            continue
        path = Path(r.file).resolve()
        try:
            rel = str(path.relative_to(mdir.resolve()))
        except ValueError:
            rel = str(path)
        labelled = f"fp32_{metric}" in r.extra
        entries.append(
            {
                "name": r.format,
                "file": rel,
                "mode": r.extra.get("mode"),
                "metric": metric,
                "drop": float(r.extra[f"{metric}_drop"]),
                "basis": "labelled validation data" if labelled else "agreement with fp32",
                "n_validation": r.extra.get("n_validation"),
                "fp32": r.extra.get(f"fp32_{metric}"),
                "int8": r.extra.get(f"int8_{metric}"),
                "speedup_vs_fp32_at_export": r.extra.get("speedup_vs_fp32"),
            }
        )
    if not entries:
        return None
    record = {"weights": weights_digest(mdir), "metric": metric, "models": entries}
    try:
        return atomic_write_json(mdir / INT8_RECORD, record)
    except OSError as exc:
        _log.info("could not write %s in %s: %s", INT8_RECORD, mdir, exc)
        return None

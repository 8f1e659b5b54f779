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
    "Int8Evaluation",
    "as_model_inputs",
    "failure_reason",
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


class Int8Evaluation:
    """Validation batch, fp32 reference outputs and fp32 latency that every INT8 file of one
    export is measured against (ONNX Runtime static/dynamic and OpenVINO NNCF alike)."""

    def __init__(
        self,
        ctx: ExportContext,
        fp32_run: Any,
        calibration_data: Any = None,
        validation_data: Any = None,
    ) -> None:
        #: calibration inputs in the model's contract (None without calibration data)
        self.calib: np.ndarray | None = None
        if calibration_data is not None:
            self.calib, _ = as_model_inputs(
                calibration_data, ctx.meta, limit=int(ctx.options.get("calibration_samples", 64))
            )
        if validation_data is not None:
            self.val_x, self.val_y = as_model_inputs(validation_data, ctx.meta)
        else:
            self.val_x = self.calib if self.calib is not None else ctx.inputs
            self.val_y = None
        self.task = ctx.meta.get("task", "classification")
        self.metric = "miou" if self.task == "segmentation" else "accuracy"
        self.inputs = ctx.inputs
        self.ref = self.predict(fp32_run)
        self.n_cls = int(self.ref.shape[1])
        self.fp32_latency = median_latency_ms(lambda: fp32_run(ctx.inputs))

    def predict(self, run: Any, bs: int = 8) -> np.ndarray:
        """First output of ``run`` over the validation batch, in chunks of ``bs``."""
        return np.concatenate(
            [run(self.val_x[i : i + bs])[0] for i in range(0, len(self.val_x), bs)]
        )

    def measure(self, result: ExportResult, run: Any, mode: str) -> None:
        """Fill ``result`` with parity, latency, agreement and the metric drop of ``run``."""
        out = self.predict(run)
        if not np.all(np.isfinite(out)):
            raise ValueError("INT8 outputs contain NaN or Inf")
        result.parity_error = float(np.max(np.abs(out - self.ref)))
        result.latency_ms = median_latency_ms(lambda: run(self.inputs))
        metric = self.metric
        agree = score(self.task, out, self.ref.argmax(1), self.n_cls)
        info: dict[str, Any] = {
            "mode": mode,
            "n_validation": int(len(self.val_x)),
            f"agreement_with_fp32_{metric}": agree,
            "fp32_latency_ms": self.fp32_latency,
            "speedup_vs_fp32": (
                self.fp32_latency / result.latency_ms if result.latency_ms else None
            ),
        }
        if self.val_y is not None:
            f = score(self.task, self.ref, self.val_y, self.n_cls)
            q = score(self.task, out, self.val_y, self.n_cls)
            info.update({f"fp32_{metric}": f, f"int8_{metric}": q, f"{metric}_drop": f - q})
        else:
            info["note"] = (
                "no labelled validation_data: the drop is measured as disagreement with fp32 "
                f"({metric} of INT8 against fp32 predictions)"
            )
            info[f"{metric}_drop"] = 100.0 - agree
        result.extra.update(info)
        result.status = OK


def failure_reason(exc: Exception) -> str:
    """One line naming an exception, for a report row."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


def quantization_results(
    ctx: ExportContext,
    fp32_onnx: Path,
    calibration_data: Any = None,
    validation_data: Any = None,
    modes: tuple[str, ...] = MODES,
) -> list[ExportResult]:
    """Quantise ``fp32_onnx`` in each mode; report size, latency, agreement and metric drop."""
    from visionforge.export.onnx import ort_session, run_session

    fp32 = ort_session(fp32_onnx)
    ev = Int8Evaluation(ctx, lambda x: run_session(fp32, x), calibration_data, validation_data)
    results = []
    for mode in modes:
        result = ExportResult(f"onnx-int8-{mode}")
        try:
            if mode == "static" and ev.calib is None:
                result.status = "skipped"
                result.reason = "skipped: static INT8 needs calibration_data"
                results.append(result)
                continue
            path = quantize_onnx(fp32_onnx, ctx.out_dir / f"model.int8-{mode}.onnx", mode, ev.calib)
            result.set_file(path)
            sess = ort_session(path)
            ev.measure(result, lambda x, s=sess: run_session(s, x), mode)
        except Exception as exc:
            result.status = "failed"
            result.reason = failure_reason(exc)
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


def _kept_entries(path: Path, digest: str, redone: set[str]) -> list[dict[str, Any]]:
    """Entries of the record at ``path`` for the same weights that are not in ``redone``."""
    import json

    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(old, dict) or old.get("weights") != digest:
        return []
    return [e for e in old.get("models", []) if isinstance(e, dict) and e.get("name") not in redone]


def record_int8(model_dir: str | Path, task: str, results: list[ExportResult]) -> Path | None:
    """Write ``<model_dir>/int8.json`` listing each INT8 file with its measured metric drop.

    ``Predictor(backend="auto")`` reads it and considers the INT8 files whose drop is at most
    one point. The drop is against labels when validation data had them, else it is the
    disagreement with the fp32 model (``basis`` says which). Entries of an existing record
    for the same weights that this export did not redo are kept (so ``quantize=int8`` and
    ``quantize=int8-nncf`` can run one after the other). A read-only model dir is skipped.
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
                # the runtime that can run the file (None: any, e.g. a QDQ ONNX file)
                "runtime": r.extra.get("runtime"),
                **({"scope": r.extra["scope"]} if "scope" in r.extra else {}),
            }
        )
    if not entries:
        return None
    digest = weights_digest(mdir)
    entries += _kept_entries(mdir / INT8_RECORD, digest, {e["name"] for e in entries})
    record = {"weights": digest, "metric": metric, "models": entries}
    try:
        return atomic_write_json(mdir / INT8_RECORD, record)
    except OSError as exc:
        _log.info("could not write %s in %s: %s", INT8_RECORD, mdir, exc)
        return None

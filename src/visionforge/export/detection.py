"""Detector export: ONNX through torch's TorchScript-based exporter (the path torchvision
supports for FCOS / RetinaNet / Faster R-CNN, NMS included), checked with ONNX Runtime.

The graph is traced at one image size (the model dir's ``input_size``): anchors and the
post-processing are specialised to it, so the artifact takes one ``[3, H, W]`` image of
that size in [0, 1] and returns ``boxes [N, 4]`` (xyxy), ``scores [N]``, ``labels [N]``.
Other formats are skipped with the reason (no converter handles the dynamic box count).
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionforge.export.base import ExportResult
from visionforge.io import atomic_write

__all__ = ["export_detector_onnx", "detection_parity", "skipped_detection", "TOLERANCE"]

TOLERANCE = 1e-4
OUTPUTS = ["boxes", "scores", "labels"]


class _SingleImage(torch.nn.Module):
    """``[3, H, W]`` -> ``(boxes, scores, labels)``: a tensor-only signature for tracing."""

    def __init__(self, detector: torch.nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.detector([image])[0]
        return out["boxes"], out["scores"], out["labels"]


def export_detector_onnx(model: torch.nn.Module, path: str | os.PathLike[str],
                         image_size: tuple[int, int], opset: int = 17) -> Path:
    """Trace ``model`` on one ``image_size`` image and write the ONNX file atomically."""
    wrapped = _SingleImage(model).eval()
    example = torch.rand(3, *image_size)
    with atomic_write(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer warns about every python-side shape
        torch.onnx.export(wrapped, (example,), str(tmp), opset_version=opset, dynamo=False,
                          input_names=["image"], output_names=OUTPUTS)
    return Path(path)


def detection_parity(model: torch.nn.Module, onnx_path: str | os.PathLike[str],
                     image: torch.Tensor) -> dict[str, Any]:
    """Max |ONNX Runtime - PyTorch| on boxes and scores for ``image``, plus the box counts."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    boxes, scores, labels = sess.run(None, {"image": image.numpy().astype(np.float32)})
    ms = (time.perf_counter() - t0) * 1000
    with torch.no_grad():
        ref = model.eval()([image])[0]
    n = min(len(boxes), len(ref["boxes"]))
    box_err = float(np.abs(boxes[:n] - ref["boxes"][:n].numpy()).max()) if n else 0.0
    score_err = float(np.abs(scores[:n] - ref["scores"][:n].numpy()).max()) if n else 0.0
    return {"boxes_max_abs": box_err, "scores_max_abs": score_err,
            "labels_equal": bool(np.array_equal(labels[:n], ref["labels"][:n].numpy())),
            "onnx_boxes": int(len(boxes)), "torch_boxes": int(len(ref["boxes"])),
            "latency_ms": ms}


def export_detection_onnx_result(model: torch.nn.Module, meta: dict[str, Any], out: Path,
                                 ) -> ExportResult:
    """The ``onnx`` row of an export report for a detection model dir."""
    size = meta.get("input_size") or [3, 256, 256]
    h, w = int(size[-2]), int(size[-1])
    path = export_detector_onnx(model, out / "model.onnx", (h, w))
    g = torch.Generator().manual_seed(0)
    parity = detection_parity(model, path, torch.rand(3, h, w, generator=g))
    err = max(parity["boxes_max_abs"], parity["scores_max_abs"])
    same = parity["onnx_boxes"] == parity["torch_boxes"] and parity["labels_equal"]
    result = ExportResult("onnx", status="ok" if same and err <= TOLERANCE else "failed",
                          parity_error=err, tolerance=TOLERANCE, latency_ms=parity["latency_ms"],
                          reason="" if same else "box counts or labels differ from PyTorch",
                          extra={**parity, "input": [3, h, w], "note":
                                 "traced at this image size; one image per call"})
    result.set_file(path)
    return result


def skipped_detection(name: str) -> ExportResult:
    """A skipped row for a format that cannot hold a detector's post-processing."""
    return ExportResult(name, status="skipped", reason=(
        "detectors are exported to ONNX only: their post-processing (NMS, a data-dependent "
        "number of boxes) has no converter in this format"))

"""A detector exports to ONNX with ONNX Runtime parity on boxes and scores (<= 1e-4)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnxruntime")


@pytest.mark.slow
def test_onnx_export_parity(tmp_path):
    from visionforge.export.detection import TOLERANCE, detection_parity, export_detector_onnx
    from visionforge.models import create_model

    # score_thresh=0 keeps every candidate, so hundreds of boxes are compared
    model = create_model("fcos", backbone="resnet18", num_classes=2, fpn_channels=32,
                         head_convs=1, levels=(0, 1, 2), score_thresh=0.0, detections_per_img=100).eval()
    path = export_detector_onnx(model, tmp_path / "det.onnx", (128, 128))
    parity = detection_parity(model, path, torch.rand(3, 128, 128))
    assert parity["torch_boxes"] == parity["onnx_boxes"] == 100 and parity["labels_equal"]
    assert parity["boxes_max_abs"] <= TOLERANCE and parity["scores_max_abs"] <= TOLERANCE


def test_other_formats_are_skipped_with_the_reason():
    from visionforge.export.detection import skipped_detection

    row = skipped_detection("tflite")
    assert row.status == "skipped" and "ONNX only" in row.reason

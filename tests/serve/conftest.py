"""Settings for the serve tests (the tiny model-dir fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_onnx_export(monkeypatch):
    # The legacy tracer is ~15x faster than the dynamo exporter; one test covers dynamo.
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")


@pytest.fixture(scope="session")
def detector_dir(tmp_path_factory):
    """A tiny untrained detection model dir (score threshold 0: it always returns boxes)."""
    import torch

    from visionforge.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("fcos", backbone="resnet18", num_classes=2, fpn_channels=32,
                         head_convs=1, levels=[0, 1, 2], score_thresh=0.0,
                         detections_per_img=20)
    out = tmp_path_factory.mktemp("detector") / "cells"
    save_model_dir(model, out, task="detection", class_names=["cell", "debris"],
                   input_size=[3, 64, 64])
    return out

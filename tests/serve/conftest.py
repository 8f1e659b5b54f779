"""Settings for the serve tests (the tiny model-dir fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_onnx_export(monkeypatch):
    # The legacy tracer is ~15x faster than the dynamo exporter; one test covers dynamo.
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")


# -- the web page's world (tests/serve/test_ui_*.py): models, a segmented slide, two runs ------
def _make_run(run, losses, accuracy):
    """A run dir as `visionforge train` leaves it (history, metrics, report), without training."""
    import json

    from visionforge.evaluation import build_run_report

    run.mkdir(parents=True)
    history = {"train_loss": [v * 1.2 for v in losses], "val_loss": losses,
               "val_metrics": {"accuracy": [accuracy * (i + 1) / len(losses)
                                            for i in range(len(losses))]}}
    (run / "history.json").write_text(json.dumps(history))
    (run / "metrics.json").write_text(json.dumps(
        {"split": "test", "accuracy": accuracy, "f1_macro": accuracy - 0.05,
         "class_names": ["cat", "dog", "bird"]}))
    build_run_report(run)


@pytest.fixture(scope="session")
def ui_world(tmp_path_factory, classifier_dir):
    """``{"models": [...], "slides_dir", "project_dir", "seg_dir", "slide"}`` for the page."""
    import importlib.util
    from pathlib import Path

    from visionforge.slides.segment import segment_slides
    from visionforge.slides.synthetic import make_ihc_slide

    root = tmp_path_factory.mktemp("ui_world")
    path = Path(__file__).parents[1] / "slides" / "slide_segment_child.py"
    spec = importlib.util.spec_from_file_location("vf_slide_child_ui", path)
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    seg = child.make_model_dir(root / "ihc" / "model", slide_mpp=4.0)
    slide = make_ihc_slide(root / "slides" / "ihc.svs", size=512, mpp=0.5, levels=(1, 4),
                           annotations=False)
    (res,) = segment_slides(seg, [slide.slide], root / "segmented", tissue=False,
                            backend="torch")
    assert res.status == "ok", res.reason
    project = root / "project"
    _make_run(project / "classification" / "exp", [0.9, 0.6, 0.4, 0.3], 0.81)
    _make_run(project / "classification" / "exp2", [1.1, 0.8, 0.7, 0.65, 0.6], 0.74)
    return {"models": [f"digits={classifier_dir}", f"ihc={seg}"], "seg_dir": seg,
            "slides_dir": root / "segmented", "project_dir": project, "slide": slide.slide}


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

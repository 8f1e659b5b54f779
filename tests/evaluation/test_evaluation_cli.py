"""``visionforge evaluate`` and ``visionforge explain`` on saved model dirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from visionforge.cli.main import main
from visionforge.models import create_model, save_model_dir


@pytest.fixture
def vit_dir(tmp_path):
    model = create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_classes=2)
    return save_model_dir(
        model,
        tmp_path / "run" / "model",
        task="classification",
        class_names=["dark", "bright"],
        input_size=[3, 32, 32],
        preprocessing={"input_range": [0, 1], "mean": [0.5] * 3, "std": [0.25] * 3},
    )


@pytest.fixture
def class_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    for label, level in (("dark", 40), ("bright", 200)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            arr = np.clip(rng.normal(level, 20, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / label / f"{label}_{i}.png")
    return root


def test_evaluate_cli_classification(tmp_path, vit_dir, class_folder, capsys):
    out = tmp_path / "eval"
    assert (
        main(["evaluate", str(vit_dir), str(class_folder), f"out={out}", "batch_size=4", "--pdf"])
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 6 and metrics["class_names"] == ["dark", "bright"]
    assert (out / "plots" / "confusion_matrix.png").stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert 'id="metrics"' in html and "data:image/png;base64," in html
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert "accuracy" in capsys.readouterr().out


def test_evaluate_cli_errors(tmp_path, vit_dir, capsys):
    assert main(["evaluate", str(vit_dir), str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", str(vit_dir), str(tmp_path), "bogus=1"]) == 2
    assert "unknown option 'bogus'" in capsys.readouterr().err


def test_evaluate_cli_segmentation(tmp_path):
    from visionforge.models import register_model
    from visionforge.registry import MODELS

    name = "_test_evaluation_tinyseg"

    @register_model(name, task="segmentation")
    def _tinyseg(num_classes: int = 3):
        return torch.nn.Conv2d(3, num_classes, 3, padding=1)

    try:
        md = save_model_dir(
            create_model(name),
            tmp_path / "segmodel",
            class_names=["bg", "a", "b"],
            input_size=[3, 16, 16],
        )
        rng = np.random.default_rng(1)
        for d in ("images", "masks"):
            (tmp_path / "seg" / d).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(
                tmp_path / "seg" / "images" / f"s{i}.png"
            )
            Image.fromarray(rng.integers(0, 3, (16, 16), dtype=np.uint8)).save(
                tmp_path / "seg" / "masks" / f"s{i}.png"
            )
        out = tmp_path / "seg_eval"
        assert main(["evaluate", str(md), str(tmp_path / "seg"), f"out={out}"]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["task"] == "segmentation" and metrics["num_pixels"] == 3 * 16 * 16
        assert (out / "plots" / "per_class_iou.png").is_file()
    finally:
        MODELS.remove(name)


def test_explain_cli_writes_overlays_and_report_section(tmp_path, vit_dir, class_folder, capsys):
    run_dir = vit_dir.parent
    (run_dir / "report.html").write_text("<html></html>")  # an existing run report gets updated
    img = class_folder / "bright" / "bright_0.png"
    rc = main(
        [
            "explain",
            str(vit_dir),
            str(img),
            "methods=grad_cam,integrated_gradients,attention",
            "target=bright",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    out = run_dir / "explanations"
    for m in ("grad_cam", "integrated_gradients", "attention"):
        with Image.open(out / f"bright_0_{m}.png") as im:
            assert im.size == (32, 32)
    info = json.loads((out / "explanations.json").read_text())
    assert info["images"][0]["target_class"] == 1 and not info["skipped"]
    assert 'id="explanations"' in (out / "report.html").read_text()
    assert 'id="explanations"' in (run_dir / "report.html").read_text()
    assert main(["explain", str(vit_dir), str(img), "target=nope"]) == 2

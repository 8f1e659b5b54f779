"""Coins / IHC sets build from skimage; a COCO root is detected, checked, trained and evaluated."""

from __future__ import annotations

import pytest
import torch

from visionforge.data.check import check_dataset
from visionforge.data.detection_datamodule import DetectionDataModule
from visionforge.data.nuclei import build_coins, build_ihc_nuclei
from visionforge.workflows.detect import detect_layout


@pytest.fixture(scope="module")
def coins(tmp_path_factory):
    root = tmp_path_factory.mktemp("coins")
    facts = build_coins(root)
    return root, facts


def test_coins_set_is_detected_and_checked(coins):
    root, facts = coins
    assert facts["val"] == {"images": 1, "boxes": 24}  # the 24 coins of coins.png
    assert detect_layout(root) == "detection"
    report = check_dataset(root, write=False)
    assert report["ok"] and report["layout"] == "detection_coco"
    assert report["counts"]["val"] == {"coin": 24}
    assert report["boxes"]["val"]["boxes_per_image"]["max"] == 24


def test_ihc_nuclei_set(tmp_path):
    facts = build_ihc_nuclei(tmp_path)
    assert facts["nuclei_in_image"] > 200  # hundreds of nuclei in ihc.png
    assert facts["test"]["images"] == 4 and facts["test"]["boxes"] > 60
    assert facts["train"]["images"] == 28


@pytest.mark.slow
def test_train_evaluate_predict_on_coins(coins, tmp_path):
    from visionforge.engine import Trainer
    from visionforge.evaluation.detection import DetectionEvaluator
    from visionforge.models import create_model, load_model

    root, _ = coins
    dm = DetectionDataModule(root, batch_size=2, image_size=64, num_workers=0)
    model = create_model("fcos", backbone="resnet18", num_classes=1, fpn_channels=32,
                         head_convs=1)
    trainer = Trainer(model, max_steps=2, max_epochs=1, output_dir=tmp_path / "run",
                      progress=False, early_stopping=False)
    history = trainer.train(dm)
    assert len(history["train_loss"]) == 1 and torch.isfinite(torch.tensor(history["train_loss"]))
    assert "map_50" in history["val_metrics"] and history["val_loss"]
    loaded = load_model(tmp_path / "run" / "model")
    ev = DetectionEvaluator(loaded, class_names=dm.class_names)
    metrics = ev.evaluate(dm.val_dataloader())
    assert metrics["counting"]["true"] == [24] and 0.0 <= metrics["map_50"] <= 1.0
    assert set(metrics["per_class_ap"]) <= {"coin"}
    written = ev.save(tmp_path / "eval")
    assert all(p.is_file() for p in written.values())

    from visionforge.cli.main import main

    out = tmp_path / "pred"
    assert main(["predict", str(tmp_path / "run" / "model"), str(root / "images" / "val"),
                 f"out={out}", "score=0.0"]) == 0
    import json

    coco = json.loads((out / "detections.json").read_text())
    assert coco["images"][0]["file_name"].endswith("coins.png")
    assert coco["images"][0]["count"] == len(coco["annotations"])
    assert (out / "detections.csv").read_text().startswith("file,x1,y1,x2,y2,score,label")
    assert (out / "coins_boxes.png").is_file()

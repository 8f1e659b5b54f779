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


def test_nuclei_labels_keep_an_elongated_nucleus_whole_and_split_a_touching_pair():
    import numpy as np
    from skimage.color import hed2rgb
    from skimage.draw import disk, ellipse

    from visionforge.data.nuclei import nuclei_labels

    hema = np.zeros((96, 96))
    # one elongated nucleus (32 x 9 px) whose width wobbles along its length
    hema[ellipse(30, 24, 16, 4.5, shape=hema.shape)] = 1
    for row in range(16, 46, 6):
        hema[disk((row, 24), 5.0, shape=hema.shape)] = 1
    # two round nuclei joined by a neck
    for col in (60, 72):
        hema[disk((66, col), 6, shape=hema.shape)] = 1
    hed = np.zeros((96, 96, 3))
    hed[..., 0] = 0.08 * hema
    labels = nuclei_labels((np.clip(hed2rgb(hed), 0, 1) * 255).astype(np.uint8))
    elongated, pair = labels[10:50, 10:40], labels[55:80, 50:85]
    assert len(np.unique(elongated[elongated > 0])) == 1  # markers 5 px apart cut it into 4
    assert len(np.unique(pair[pair > 0])) == 2


def test_nuclei_labels_find_nuclei_inside_a_dab_gland():
    import numpy as np
    from skimage.color import hed2rgb
    from skimage.draw import disk

    from visionforge.data.nuclei import nuclei_labels

    hed = np.zeros((96, 128, 3))
    # right half: a DAB gland whose cytoplasm also holds hematoxylin; its nuclei hold a
    # little more hematoxylin and no DAB
    hed[:, 64:, 0], hed[:, 64:, 2] = 0.05, 0.10
    gland_centres = [(24, 84), (24, 108), (60, 84), (60, 108)]
    for rc in gland_centres:
        hed[disk(rc, 6, shape=hed.shape[:2]) + (slice(None),)] = (0.065, 0.0, 0.0)
    stroma_centres = [(20, 20), (50, 40), (76, 16)]  # left half: plain nuclei, no DAB
    for rc in stroma_centres:
        hed[disk(rc, 5, shape=hed.shape[:2]) + (0,)] = 0.05
    rgb = (np.clip(hed2rgb(hed), 0, 1) * 255).astype(np.uint8)

    def areas(labels, centres):  # pixels of the object at each centre (0: none there)
        return [int((labels == labels[rc]).sum()) if labels[rc] else 0 for rc in centres]

    with_glands, plain = nuclei_labels(rgb), nuclei_labels(rgb, dab_weight=0)
    assert with_glands.max() == 7 and plain.max() == 3  # nothing else is labelled
    assert areas(with_glands, stroma_centres) == areas(plain, stroma_centres)
    assert all(60 < a < 160 for a in areas(with_glands, stroma_centres + gland_centres))
    assert areas(plain, gland_centres) == [0, 0, 0, 0]  # the plain threshold misses them


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

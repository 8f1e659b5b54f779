"""The counting score threshold: chosen on validation data, stored in model.json, used by
predict, /detect's default and the evaluation's count error."""

from __future__ import annotations

import json

import pytest
import torch

from visionforge.evaluation.detection import (
    DetectionEvaluator,
    choose_count_threshold,
    predicted_counts,
    true_counts,
)


def _pred(scores):
    n = len(scores)
    return {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]] * n).reshape(n, 4),
            "scores": torch.tensor(scores, dtype=torch.float), "labels": torch.ones(n, dtype=torch.long)}


def _target(n, crowd=0):
    return {"boxes": torch.tensor([[0.0, 0.0, 4.0, 4.0]] * (n + crowd)).reshape(-1, 4), "labels": torch.ones(n + crowd, dtype=torch.long),
            "iscrowd": torch.tensor([0] * n + [1] * crowd)}


def test_choose_count_threshold_minimises_the_absolute_count_error():
    # image 1 holds 2 objects, image 2 holds 3 (+ a crowd box, not an object)
    preds = [_pred([0.9, 0.8, 0.35, 0.1]), _pred([0.95, 0.7, 0.6, 0.32, 0.2])]
    targets = [_target(2), _target(3, crowd=1)]
    assert true_counts(targets) == [2, 3]
    t = choose_count_threshold(preds, targets)
    assert 0.35 < t <= 0.6  # exactly 2 and 3 boxes kept: zero error
    assert predicted_counts(preds, t) == [2, 3]
    # errors: 0.1 -> counts 3, 5 (1.5); 0.3 -> 3, 4 (1.0); 0.9 -> 1, 1 (1.5)
    assert choose_count_threshold(preds, targets, candidates=[0.1, 0.3, 0.9]) == 0.3
    with pytest.raises(ValueError, match="needs predictions"):
        choose_count_threshold([], [])


def test_ties_go_to_the_candidate_nearest_one_half():
    preds, targets = [_pred([0.99])], [_target(1)]
    assert choose_count_threshold(preds, targets) == 0.5


def test_threshold_is_stored_and_read_by_predict_and_the_evaluator(tmp_path):
    from PIL import Image

    from visionforge.cli.main import main
    from visionforge.inference.detection import BoxPredictor
    from visionforge.models import create_model, load_model, save_model_dir
    from visionforge.workflows.train import store_score_threshold

    torch.manual_seed(0)
    model = create_model("fcos", backbone="resnet18", num_classes=1, fpn_channels=32,
                         score_thresh=0.0, detections_per_img=20)
    model_dir = save_model_dir(model, tmp_path / "model", task="detection",
                               class_names=["thing"], input_size=[3, 64, 64])
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 64, 64, generator=g)
    with torch.no_grad():
        scores = model.eval()([image])[0]["scores"]
    true_n = int((scores >= float(scores[4])).sum())  # what a threshold at the 5th score counts
    batch = {"image": [image], "targets": [_target(true_n)]}
    stored = store_score_threshold(model, [batch], model_dir, echo=lambda s: None)
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["score_threshold"] == stored
    assert abs(int((scores >= stored).sum()) - true_n) <= min(
        abs(int((scores >= t).sum()) - true_n) for t in (0.05 * k for k in range(1, 20)))

    # predict: the stored threshold by default, score_threshold= overrides it
    assert BoxPredictor(model_dir).score_threshold == stored
    assert BoxPredictor(model_dir, score_threshold=0.0).score_threshold == 0.0
    path = tmp_path / "im.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).byte().numpy()).save(path)
    for args, expected in (([], stored), (["score_threshold=0.0"], 0.0), (["score=0.0"], 0.0)):
        out = tmp_path / f"pred{len(args)}{expected}"
        assert main(["predict", str(model_dir), str(path), f"out={out}", *args]) == 0
        coco = json.loads((out / "detections.json").read_text())
        assert coco["score_threshold"] == expected
    assert main(["predict", str(model_dir), str(path), "score_threshold=high"]) != 0

    # the evaluator of a loaded model counts with the stored threshold
    ev = DetectionEvaluator(load_model(model_dir))
    assert ev.count_threshold == stored
    assert ev.evaluate([batch])["counting"]["score_threshold"] == stored
    assert DetectionEvaluator(load_model(model_dir), count_threshold=0.3).count_threshold == 0.3


def test_report_headline_shows_the_count_error_at_its_threshold():
    from visionforge.evaluation.report import _headline

    rows = dict(_headline({"task": "detection", "map_50": 0.5, "map": 0.2, "num_images": 4,
                           "counting": {"score_threshold": 0.45,
                                        "mean_absolute_count_error": 4.0}}))
    assert rows["map 50"] == "0.5" and rows["count error (score >= 0.45)"] == "4"

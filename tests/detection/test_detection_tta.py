"""Detection test-time augmentation: views map back exactly, weighted box fusion."""

from __future__ import annotations

import pytest
import torch

from visionforge.errors import ConfigError
from visionforge.models.box_tta import (
    VIEWS,
    boxes_to_input,
    detect_tta,
    detect_views,
    fuse_boxes,
    max_detections_of,
    view_image,
)


def _image_with_square(h: int = 40, w: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.zeros(3, h, w)
    image[:, 5:17, 30:52] = 1.0  # x 30-52, y 5-17 (not centred, not square)
    return image, torch.tensor([[30.0, 5.0, 52.0, 17.0]])


def _bright_box(image: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
    return torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], dtype=torch.float)


def _pixel_detector(images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """A 'detector' that boxes the bright pixels of each image exactly."""
    return [{"boxes": _bright_box(im), "scores": torch.tensor([0.9]),
             "labels": torch.tensor([1])} for im in images]


@pytest.mark.parametrize(("turns", "flip"), VIEWS["d8"])
def test_every_view_maps_back_to_the_input_pixels(turns, flip):
    image, truth = _image_with_square()
    view = view_image(image, turns, flip)
    assert view.shape[-2:] == (image.shape[-2:] if turns % 2 == 0 else image.shape[-2:][::-1])
    back = boxes_to_input(_bright_box(view), turns, flip, (40, 64))
    torch.testing.assert_close(back, truth)


def test_detect_tta_fuses_the_views_into_one_box():
    image, truth = _image_with_square()
    calls = []

    def detector(images):
        calls.append(len(images))
        return _pixel_detector(images)

    out = detect_tta(detector, image, views="d8")
    assert calls == [8]  # one call with all views
    torch.testing.assert_close(out["boxes"], truth)
    torch.testing.assert_close(out["scores"], torch.tensor([0.9]))  # found in 8 of 8 views
    with pytest.raises(ConfigError, match="tta='d4'"):
        detect_tta(detector, image, views="d4")


def test_fuse_boxes_weighs_coordinates_by_score_and_scales_by_views():
    a = {"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]]),
         "scores": torch.tensor([0.8, 0.5]), "labels": torch.tensor([1, 1])}
    b = {"boxes": torch.tensor([[1.0, 1.0, 11.0, 11.0], [0.0, 0.0, 10.0, 10.0]]),
         "scores": torch.tensor([0.4, 0.7]), "labels": torch.tensor([1, 2])}
    out = fuse_boxes([a, b], iou_thr=0.55)  # [0,0,10,10] vs [1,1,11,11]: IoU 0.68
    rows = {(round(s, 4), int(lab)): bx for s, lab, bx in
            zip(out["scores"].tolist(), out["labels"].tolist(), out["boxes"].tolist())}
    # label 1 cluster: (0.8 * [0,0,10,10] + 0.4 * [1,1,11,11]) / 1.2, score mean 0.6 x 2/2
    assert rows[(0.6, 1)] == pytest.approx([1 / 3, 1 / 3, 31 / 3, 31 / 3])
    assert rows[(0.25, 1)] == pytest.approx([50, 50, 60, 60])  # one view of two: 0.5 / 2
    assert rows[(0.35, 2)] == pytest.approx([0, 0, 10, 10])  # another class never fuses
    assert out["scores"].tolist() == sorted(out["scores"].tolist(), reverse=True)
    apart = fuse_boxes([a, b], iou_thr=0.7)  # IoU 0.68 < 0.7: kept apart
    assert len(apart["boxes"]) == 4
    empty = {"boxes": torch.empty(0, 4), "scores": torch.empty(0),
             "labels": torch.empty(0, dtype=torch.long)}
    assert len(fuse_boxes([empty, empty])["boxes"]) == 0


class _ManyBoxes(torch.nn.Module):
    """A 'detector' with FCOS's cap attribute that returns 12 far-apart boxes per view."""

    detections_per_img = 5

    def forward(self, images):
        boxes = torch.tensor([[10.0 * i, 0.0, 10.0 * i + 4, 4.0] for i in range(12)])
        scores = torch.linspace(0.9, 0.3, 12)
        return [{"boxes": boxes, "scores": scores, "labels": torch.ones(12, dtype=torch.long)}
                for _ in images]


def test_fused_views_keep_the_detectors_own_cap():
    detector = _ManyBoxes()
    image = torch.zeros(3, 120, 120)
    assert max_detections_of(detector) == 5
    assert len(detect_views(detector, [image], "flips")[0]["boxes"]) == 5
    assert len(detect_views(detector, [image], "none")[0]["boxes"]) == 12  # the model's own
    assert len(detect_tta(detector, image, views="flips")["boxes"]) == 5  # by default
    assert len(detect_tta(detector, image, views="flips", max_detections=3)["boxes"]) == 3
    assert max_detections_of(object()) == 300
    from visionforge.models import create_model

    rcnn = create_model("faster_rcnn", backbone="resnet18", num_classes=1, fpn_channels=16,
                        detections_per_img=7)
    assert max_detections_of(rcnn) == 7


def _tiny_model_dir(tmp_path):
    from visionforge.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("fcos", backbone="resnet18", num_classes=1, fpn_channels=32,
                         score_thresh=0.0, detections_per_img=20)
    return model, save_model_dir(model, tmp_path / "model", task="detection",
                                 class_names=["thing"], input_size=[3, 64, 64])


def test_evaluator_predictor_and_cli_take_tta(tmp_path, capsys):
    import json

    from PIL import Image

    from visionforge.cli.main import main
    from visionforge.evaluation.detection import DetectionEvaluator
    from visionforge.inference.detection import BoxPredictor

    model, model_dir = _tiny_model_dir(tmp_path)
    image, truth = _image_with_square(64, 64)
    batch = {"image": [image], "targets": [{"boxes": truth, "labels": torch.tensor([1])}]}
    metrics = DetectionEvaluator(model, tta="flips").evaluate([batch])
    assert metrics["tta"] == "flips" and metrics["num_images"] == 1
    with pytest.raises(ConfigError, match="tta='rot'"):
        DetectionEvaluator(model, tta="rot")
    # the predictor fuses the views of each image: the same as detect_tta on the model
    pred = BoxPredictor(model_dir, score_threshold=0.0, tta="d8")
    with torch.no_grad():
        expected = detect_tta(pred.model, image, views="d8", max_detections=20)
    got = pred.predict([image])[0]["boxes"]
    assert len(got) == 20  # the model's detections_per_img, not 160 fused boxes
    torch.testing.assert_close(got, expected["boxes"])
    path = tmp_path / "sq.png"
    Image.fromarray((image.permute(1, 2, 0) * 255).byte().numpy()).save(path)
    out = tmp_path / "preds"
    assert main(["predict", str(model_dir), str(path), f"out={out}", "tta=true"]) == 0
    assert json.loads((out / "detections.json").read_text())["tta"] == "d8"
    assert "tta=d8" in capsys.readouterr().out
    assert main(["predict", str(model_dir), str(path), f"out={out}", "tta=sideways"]) != 0
    err = capsys.readouterr().err
    assert "tta='sideways'" in err and "Traceback" not in err

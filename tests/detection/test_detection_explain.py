"""Grad-CAM of one detection's score (BoxGradCAM) and ``visionforge explain ... box=I``."""

from __future__ import annotations

import pytest
import torch

from visionforge.errors import DataError
from visionforge.explain.detection import BoxGradCAM
from visionforge.models import create_model


def _tiny(name: str = "fcos", **kw):
    torch.manual_seed(0)
    extra = {"representation_size": 64} if name == "faster_rcnn" else {}
    return create_model(name, backbone="resnet18", num_classes=1, fpn_channels=32,
                        score_thresh=0.0, **extra, **kw)


def _square_batch(n: int, g: torch.Generator, size: int = 64, side: int = 16):
    """Dark images, each with one bright square somewhere: trivially learnable boxes."""
    images, targets = [], []
    for _ in range(n):
        x0, y0 = (int(v) for v in torch.randint(0, size - side, (2,), generator=g))
        img = torch.rand(3, size, size, generator=g) * 0.2
        img[:, y0:y0 + side, x0:x0 + side] = 0.9
        images.append(img)
        targets.append({"boxes": torch.tensor([[x0, y0, x0 + side, y0 + side]], dtype=torch.float),
                        "labels": torch.tensor([1])})
    return images, targets


@pytest.mark.parametrize("name", ["fcos", "retinanet", "faster_rcnn"])
def test_heatmap_has_the_image_shape_and_is_deterministic(name):
    model = _tiny(name)
    image = torch.rand(3, 70, 90, generator=torch.Generator().manual_seed(1))  # padded to 96
    cam = BoxGradCAM(model)
    a, b = cam.attribute(image, box=0), cam.attribute(image, box=0)
    assert a.heatmap.shape == image.shape[-2:]
    assert torch.isfinite(a.heatmap).all() and a.heatmap.min() >= 0 and a.heatmap.max() <= 1
    assert a.heatmap.max() > a.heatmap.min()  # not constant
    torch.testing.assert_close(a.heatmap, b.heatmap)
    assert a.index == 0 and a.num_detections >= 1 and len(a.box) == 4


def test_mode_is_restored_and_bad_box_index_names_the_key():
    model = _tiny().train()
    image = torch.rand(3, 64, 64)
    cam = BoxGradCAM(model)
    with pytest.raises(DataError, match=r"box=100000: .*detection\(s\).*box=0\.\."):
        cam.attribute(image, box=100_000)
    with pytest.raises(DataError, match="box=-1"):
        cam.attribute(image, box=-1)
    assert model.training


@pytest.mark.slow
def test_each_boxs_heatmap_peaks_on_that_box_after_training():
    """Two squares in one image: each detection's map peaks on its own square. Channel-mean
    weights (plain Grad-CAM) light both squares alike (same channels fire), so one of the
    two maps would peak on the wrong square."""
    from torchvision.ops import box_iou

    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = create_model("fcos", backbone="resnet18", num_classes=1, fpn_channels=32,
                         head_convs=1, score_thresh=0.05)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(60):
        images, targets = _square_batch(4, g)
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    image = torch.rand(3, 64, 64, generator=g) * 0.2
    squares = torch.tensor([[6.0, 8.0, 22.0, 24.0], [40.0, 38.0, 56.0, 54.0]])
    for x1, y1, x2, y2 in squares.int().tolist():
        image[:, y1:y2, x1:x2] = 0.9
    cam = BoxGradCAM(model)
    explained = set()
    for i in range(cam.attribute(image, box=0).num_detections):  # best first
        result = cam.attribute(image, box=i)
        iou = box_iou(torch.tensor([result.box]), squares)[0]
        square = int(iou.argmax())
        if float(iou.max()) < 0.5 or square in explained:  # only each square's best box
            continue
        x1, y1, x2, y2 = squares[square].int().tolist()
        peak_y, peak_x = divmod(int(result.heatmap.argmax()), result.heatmap.shape[1])
        assert x1 - 4 <= peak_x <= x2 + 4 and y1 - 4 <= peak_y <= y2 + 4, (i, result.box)
        heat = result.heatmap
        assert heat[y1:y2, x1:x2].mean() > 2 * heat.mean()
        explained.add(square)
    assert explained == {0, 1}  # both squares detected and explained


def test_explain_cli_on_a_detection_model_dir(tmp_path, capsys):
    from PIL import Image

    from visionforge.cli.main import main
    from visionforge.models import save_model_dir

    model = _tiny()
    model_dir = save_model_dir(model, tmp_path / "model", task="detection",
                               class_names=["square"], input_size=[3, 64, 64])
    images, _ = _square_batch(1, torch.Generator().manual_seed(3))
    path = tmp_path / "sq.png"
    Image.fromarray((images[0].permute(1, 2, 0) * 255).byte().numpy()).save(path)
    out = tmp_path / "expl"
    assert main(["explain", str(model_dir), str(path), "box=1", f"out={out}"]) == 0
    overlay = out / "sq_box1_grad_cam.png"
    assert overlay.is_file() and Image.open(overlay).size == (64, 64)
    import json

    record = json.loads((out / "explanations.json").read_text())["images"][0]
    assert record["box_index"] == 1 and record["target_name"] == "square"
    # a box index past the detections: non-zero exit, the message names box=
    capsys.readouterr()
    assert main(["explain", str(model_dir), str(path), "box=100000", f"out={out}"]) != 0
    err = capsys.readouterr().err
    assert "box=100000" in err and "sq.png" in err and "Traceback" not in err
    assert main(["explain", str(model_dir), str(path), "methods=saliency", f"out={out}"]) != 0
    assert main(["explain", str(model_dir), str(path), "target=0", f"out={out}"]) != 0

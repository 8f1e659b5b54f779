"""Small-object options of the FCOS builders: in-model zoom (``upscale``), a stride-2 level."""

from __future__ import annotations

import pytest
import torch

from visionforge.explain.detection import BoxGradCAM
from visionforge.models import create_model
from visionforge.models.detection import NoResizeTransform


def test_upscale_zooms_image_and_boxes_and_maps_predictions_back():
    tf = NoResizeTransform(upscale=2.0).eval()  # postprocess maps boxes back in eval mode
    image = torch.rand(3, 40, 60)
    target = {"boxes": torch.tensor([[4.0, 6.0, 14.0, 16.0]]), "labels": torch.tensor([1])}
    batch, targets = tf([image], [target])
    assert [tuple(s) for s in batch.image_sizes] == [(80, 120)]
    assert torch.equal(targets[0]["boxes"], torch.tensor([[8.0, 12.0, 28.0, 32.0]]))
    assert torch.equal(target["boxes"], torch.tensor([[4.0, 6.0, 14.0, 16.0]]))  # not in place
    back = tf.postprocess([{"boxes": targets[0]["boxes"]}], batch.image_sizes, [(40, 60)])
    assert torch.allclose(back[0]["boxes"], target["boxes"])
    with pytest.raises(ValueError, match="upscale"):
        NoResizeTransform(upscale=0.0)


@pytest.mark.parametrize("kwargs, strides", [
    ({}, [2, 4, 8, 16, 32, 64]),
    ({"finest_stride": 4}, [4, 8, 16, 32, 64]),
    ({"finest_stride": 2, "extra_levels": False}, [2, 4, 8, 16]),
])
def test_lite_levels(kwargs, strides):
    model = create_model("fcos_resnet18_lite", num_classes=1, **kwargs)
    assert model.backbone.strides == strides
    assert model.anchor_generator.sizes == tuple((s,) for s in strides)


def test_zoomed_model_trains_and_returns_boxes_in_input_pixels():
    torch.manual_seed(0)
    model = create_model("fcos_resnet18_lite", num_classes=1, upscale=2.0, score_thresh=0.0)
    images = [torch.rand(3, 48, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[5.0, 5.0, 15.0, 14.0]]), "labels": torch.tensor([1])}] * 2
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        det = model(images[:1])[0]
    assert len(det["boxes"]) > 0
    assert det["boxes"][:, 2].max() <= 64 and det["boxes"][:, 3].max() <= 48
    cam = BoxGradCAM(model).attribute(images[0], box=0)  # the heatmap follows the zoom
    assert cam.heatmap.shape == (48, 64) and torch.isfinite(cam.heatmap).all()

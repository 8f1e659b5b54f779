"""FCOS quality branch: torchvision's centerness target, or the IoU of the cell's own box."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torchvision.ops import box_iou

from visionforge.models import create_model
from visionforge.models.fcos_quality import paired_iou


def _batch():
    torch.manual_seed(0)
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    targets = [{"boxes": torch.tensor([[10.0, 10, 20, 22], [30, 30, 44, 38]]),
                "labels": torch.tensor([1, 1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    return images, targets


def _pair(**kwargs):
    torch.manual_seed(0)
    a = create_model("fcos_resnet18_lite", num_classes=1, quality="centerness", **kwargs)
    b = create_model("fcos_resnet18_lite", num_classes=1, quality="iou", **kwargs)
    b.load_state_dict(a.state_dict())
    return a.train(), b.train()


def test_paired_iou_is_the_diagonal_of_box_iou():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=g) * 50
    a = torch.cat([xy, xy + 1 + torch.rand(20, 2, generator=g) * 20], 1)
    b = a + torch.randn(20, 4, generator=g) * 3
    b[:, 2:] = torch.maximum(b[:, 2:], b[:, :2] + 0.5)
    assert torch.allclose(paired_iou(a, b), box_iou(a, b).diagonal(), atol=1e-6)
    far = torch.tensor([[0.0, 0, 1, 1]]), torch.tensor([[5.0, 5, 6, 6]])
    assert paired_iou(*far).item() == 0.0


def test_centerness_quality_is_torchvisions_loss_and_iou_changes_only_that_term():
    images, targets = _batch()
    centerness, iou = _pair()
    a, b = centerness(images, targets), iou(images, targets)
    assert set(a) == set(b) == {"classification", "bbox_regression", "bbox_ctrness"}
    assert torch.equal(a["classification"], b["classification"])
    assert torch.equal(a["bbox_regression"], b["bbox_regression"])
    assert not torch.allclose(a["bbox_ctrness"], b["bbox_ctrness"])


def test_iou_target_is_the_detached_iou_of_each_foreground_cells_box():
    images, targets = _batch()
    _, model = _pair()
    seen = {}
    original = model.head.compute_loss

    def spy(targets_, head_outputs, anchors, matched_idxs):
        seen.update(outputs=head_outputs, anchors=anchors, matched=matched_idxs)
        return original(targets_, head_outputs, anchors, matched_idxs)

    model.head.compute_loss = spy
    losses = model(images, targets)
    # recompute the term by hand from what the head saw
    out, anchors, matched = seen["outputs"], seen["anchors"], seen["matched"]
    logits, expected_targets = [], []
    for i, (t, m) in enumerate(zip(targets, matched, strict=True)):
        fg = m >= 0
        if not fg.any():
            continue
        boxes = model.head.box_coder.decode(out["bbox_regression"][i][fg], anchors[i][fg])
        expected_targets.append(box_iou(boxes, t["boxes"][m[fg]]).diagonal())
        logits.append(out["bbox_ctrness"][i].squeeze(1)[fg])
    logits, expected_targets = torch.cat(logits), torch.cat(expected_targets).detach()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, expected_targets, reduction="sum") / len(logits)
    assert torch.allclose(losses["bbox_ctrness"], expected, atol=1e-5)
    # the target is detached: the quality loss sends no gradient into the box regression
    losses["bbox_ctrness"].backward()
    reg = model.head.regression_head.bbox_reg.weight.grad
    assert reg is None or reg.abs().max() == 0
    assert model.head.regression_head.bbox_ctrness.weight.grad.abs().max() > 0


def test_iou_quality_model_runs_in_eval_and_bad_quality_is_an_error():
    _, model = _pair(score_thresh=0.0, detections_per_img=10)
    with torch.no_grad():
        out = model.eval()([torch.rand(3, 64, 64)])[0]
    assert out["boxes"].shape == (10, 4) and (out["scores"] > 0).all()
    with pytest.raises(ValueError, match="quality"):
        create_model("fcos_resnet18_lite", num_classes=1, quality="giou")


def test_bad_model_argument_from_the_cli_is_one_error_line(tmp_path):
    from visionforge.data.nuclei import build_coins

    build_coins(tmp_path / "coins")
    proc = subprocess.run(
        [sys.executable, "-m", "visionforge", "train", f"data.root={tmp_path / 'coins'}",
         "model=fcos_resnet18_lite", "model.kwargs.quality=giou",
         f"project_dir={tmp_path / 'runs'}"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("visionforge: error")]
    assert len(errors) == 1
    assert "model 'fcos_resnet18_lite' rejected its arguments" in errors[0]
    assert "quality='giou'" in errors[0] and "('centerness', 'iou')" in errors[0]


def test_head_convs_sets_the_depth_of_both_head_branches():
    model = create_model("fcos_resnet18_lite", num_classes=1, head_convs=3)
    convs = [m for m in model.head.classification_head.conv if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3
    convs = [m for m in model.head.regression_head.conv if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3


def test_cli_model_config_and_detection_defaults_build_three_conv_heads():
    from visionforge.config.loader import compose_config
    from visionforge.workflows.train import _resolve_defaults

    named = compose_config(["model=fcos_resnet18_lite"], env={}).cfg
    assert named.model.kwargs.head_convs == 3
    printed: list[str] = []
    name, kwargs = _resolve_defaults(compose_config([], env={}).cfg, "detection", printed.append)
    assert (name, kwargs) == ("fcos_resnet18_lite", {"head_convs": 3})
    model = create_model(name, num_classes=1, **kwargs)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.head.classification_head.conv) == 3

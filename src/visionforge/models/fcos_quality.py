"""FCOS head whose quality branch can learn the IoU of its own box instead of centerness.

torchvision's FCOS scores a detection ``sqrt(class probability x quality)``, where the quality
branch is trained to predict the *centerness* of the cell inside its ground-truth box. With
``quality="iou"`` the same branch is trained to predict the IoU between the box the cell
regresses and its ground-truth box (detached, so the target does not pull the box): the
detections are then ranked by how well they are placed, which is what average precision
rewards. This is the IoU-prediction branch of IoU-aware one-stage detectors (Wu et al.,
"IoU-aware single-stage object detector", 2020; PAA's heads predict IoU the same way).

Only the training target changes: the branch, its output and torchvision's post-processing
(and so the ONNX export) are the same. Written here because torchvision's FCOS has the
centerness target only.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection.fcos import FCOSHead

__all__ = ["QualityFCOSHead", "QUALITY_TARGETS", "paired_iou"]

#: what the quality branch learns
QUALITY_TARGETS = ("centerness", "iou")


def paired_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of ``a[i]`` with ``b[i]`` (xyxy boxes ``[N, 4]``), elementwise (not all pairs)."""
    # torchvision's public ops give all pairs (box_iou: N x N to take a diagonal of) or GIoU
    # losses; its elementwise intersection/union helper is private
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    return inter / (area_a + area_b - inter).clamp(min=1e-6)


class QualityFCOSHead(FCOSHead):
    """torchvision's ``FCOSHead`` with the quality target chosen by ``quality``
    (``"centerness"``: torchvision's own loss, unchanged; ``"iou"``: see the module)."""

    def __init__(self, *args, quality: str = "centerness", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if quality not in QUALITY_TARGETS:
            raise ValueError(f"quality must be one of {QUALITY_TARGETS}, got {quality!r}")
        self.quality = quality

    def compute_loss(self, targets: list[dict[str, torch.Tensor]],
                     head_outputs: dict[str, torch.Tensor], anchors: list[torch.Tensor],
                     matched_idxs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = super().compute_loss(targets, head_outputs, anchors, matched_idxs)
        if self.quality == "centerness":
            return losses
        # the same foreground cells and matched boxes as torchvision's loss
        foreground = torch.stack([m >= 0 for m in matched_idxs])
        gt_boxes = torch.stack([
            t["boxes"][m.clip(min=0)] if len(t["boxes"]) else t["boxes"].new_zeros((len(m), 4))
            for t, m in zip(targets, matched_idxs, strict=True)])
        logits = head_outputs["bbox_ctrness"].squeeze(2)[foreground]
        with torch.no_grad():  # decoding is per cell: only the foreground cells are needed
            boxes = self.box_coder.decode(head_outputs["bbox_regression"][foreground],
                                          torch.stack(anchors)[foreground])
            iou = paired_iou(boxes.float(), gt_boxes[foreground].float())
        loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), iou, reduction="sum")
        losses["bbox_ctrness"] = loss / max(1, int(foreground.sum()))
        return losses

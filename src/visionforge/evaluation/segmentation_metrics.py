"""Streaming segmentation metrics from one running confusion matrix.

torchmetrics' ``MulticlassConfusionMatrix`` accumulates counts batch by batch
(with ``ignore_index``), so no prediction is stored; IoU, Dice and pixel
accuracy are all derived from that matrix.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["SegmentationMetrics", "metrics_from_confusion"]


def metrics_from_confusion(cm: torch.Tensor) -> dict[str, Any]:
    """IoU, Dice and pixel accuracy from a confusion matrix ``[C, C]`` (rows = truth).

    A class absent from both truth and prediction has an undefined (NaN) IoU/Dice and
    is left out of the means.
    """
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(dim=0) - tp
    fn = cm.sum(dim=1) - tp
    union = tp + fp + fn
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    dice = torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), nan)
    total = cm.sum()
    return {
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_iou": float(iou.nanmean()),
        "mean_dice": float(dice.nanmean()),
        "per_class_iou": iou.tolist(),
        "per_class_dice": dice.tolist(),
        "support": cm.sum(dim=1).long().tolist(),
    }


class SegmentationMetrics:
    """Mean/per-class IoU and Dice, pixel accuracy and confusion matrix over a stream of batches.

    Args:
        num_classes: number of classes in the masks.
        ignore_index: mask value excluded from every metric (e.g. 255 for "unlabelled").
        class_names: optional names in class-index order.

    ``update(preds, targets)`` takes logits ``[B, C, H, W]`` or label maps ``[B, H, W]``
    and target masks ``[B, H, W]``. ``compute()`` returns ``mean_iou``, ``mean_dice``,
    ``pixel_accuracy``, ``per_class_iou``/``per_class_dice`` (also as ``class_iou``/
    ``class_dice``), ``support``, ``num_pixels``, ``class_names`` and ``confusion_matrix``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        class_names: list[str] | None = None,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        from torchmetrics.classification import MulticlassConfusionMatrix

        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(num_classes)]
        )
        self._cm = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self._seen = False

    def reset(self) -> None:
        """Forget every batch seen so far."""
        self._cm.reset()
        self._seen = False

    @torch.no_grad()
    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch of predictions (logits or labels) and target masks."""
        preds, targets = (
            torch.as_tensor(preds).detach().cpu(),
            torch.as_tensor(targets).detach().cpu(),
        )
        if preds.ndim == targets.ndim + 1:
            if preds.shape[1] != self.num_classes:
                raise ValueError(
                    f"logits have {preds.shape[1]} channels but num_classes is {self.num_classes}"
                )
            preds = preds.argmax(dim=1)
        if preds.shape != targets.shape:
            raise ValueError(
                f"prediction shape {tuple(preds.shape)} does not match mask shape {tuple(targets.shape)}"
            )
        self._cm.update(preds.long().reshape(-1), targets.long().reshape(-1))
        self._seen = True

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """The running confusion matrix ``[C, C]`` (rows = truth, columns = prediction)."""
        return self._cm.compute().long()

    def compute(self) -> dict[str, Any]:
        """Metrics so far as plain Python values."""
        if not self._seen:
            raise ValueError("SegmentationMetrics.compute() called before any update()")
        cm = self.confusion_matrix
        out = metrics_from_confusion(cm)
        # The modular library's names for the per-class lists (same values, kept beside ours).
        out["class_iou"], out["class_dice"] = out["per_class_iou"], out["per_class_dice"]
        out["num_pixels"] = int(cm.sum())
        out["class_names"] = self.class_names
        out["confusion_matrix"] = cm.tolist()
        return out

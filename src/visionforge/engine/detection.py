"""What a training/validation step means for a torchvision-style detector.

Losses come from the model itself (torchvision detectors return a loss dict in train
mode); validation runs torchmetrics' ``MeanAveragePrecision`` (COCO mAP, pycocotools
backend) on the eval-mode detections. The validation loss is the same loss dict computed
with every BatchNorm layer in eval mode, so measuring it changes no running statistics.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.evaluation.detection import as_image_list, build_map_metric, map_scalars

__all__ = ["training_targets", "detection_losses", "validation_losses", "build_map_metric",
           "map_scalars", "as_image_list", "DetectionLossProbe"]


def training_targets(targets: Any) -> list[dict[str, torch.Tensor]]:
    """Targets without crowd / difficult boxes (torchvision cannot ignore them in training)."""
    if not isinstance(targets, list | tuple):
        raise ConfigError("task 'detection' needs batches with a 'targets' list of "
                          "{'boxes', 'labels'} dicts (use visionforge.data.detection_collate)")
    out = []
    for t in targets:
        keep = t["iscrowd"] == 0 if "iscrowd" in t else torch.ones_like(t["labels"], dtype=bool)
        out.append({"boxes": t["boxes"][keep].reshape(-1, 4), "labels": t["labels"][keep]})
    return out


def detection_losses(model: nn.Module, images: Any, targets: Any) -> dict[str, torch.Tensor]:
    """The model's loss dict on ``(images, targets)``; the model must be in train mode."""
    losses = model(as_image_list(images), training_targets(targets))
    if not isinstance(losses, dict):
        raise ConfigError(f"a detector in train mode must return a loss dict, got "
                          f"{type(losses).__name__}")
    return losses


def validation_losses(model: nn.Module, images: Any, targets: Any) -> dict[str, torch.Tensor]:
    """The loss dict in train mode but with BatchNorm frozen (statistics untouched)."""
    was = model.training
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    model.train()
    for m in norms:
        m.eval()
    try:
        return detection_losses(model, images, targets)
    finally:
        model.train(was)


class DetectionLossProbe(nn.Module):
    """A detector seen by the speed probe (:func:`~visionforge.engine.autotune.probe_speed`)
    as a model whose output is its loss components ``[n_losses]`` on one batch.

    The probe compares a setting's output with fp32's in eval mode and times forward+backward
    in train mode; a detector's eval output is post-NMS boxes (not comparable element-wise),
    so here eval mode gives :func:`validation_losses` (BatchNorm frozen) and train mode
    :func:`detection_losses`, both on the ``targets`` held for the batch.
    """

    def __init__(self, model: nn.Module, targets: Any) -> None:
        super().__init__()
        self.model = model
        self.targets = training_targets(targets)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fn = detection_losses if self.training else validation_losses
        targets = [{k: v.to(images.device) for k, v in t.items()} for t in self.targets]
        return torch.stack([v.float() for v in fn(self.model, images, targets).values()])

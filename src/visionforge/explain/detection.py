"""Grad-CAM for one detection: which image regions raised a chosen box's class score.

torchvision detectors (FCOS, RetinaNet, Faster R-CNN) return, in eval mode, a list of
``{"boxes", "scores", "labels"}`` per image, sorted by score; every score is a
differentiable function of the head's inputs (sigmoid / softmax, top-k and NMS only
*select*). :class:`BoxGradCAM` runs the model once on one image with forward hooks on the
pyramid maps the heads read (the FPN's output convs, ``backbone.fpn.layer_blocks``),
takes the gradient of detection ``box``'s score with respect to them and multiplies it
with the maps element-wise, summed over channels (HiResCAM, Draelos & Carin 2020: Grad-CAM
with the gradient kept per position instead of averaged per channel, so the map stays on
the chosen box when many alike objects fire the same channels). A detection is
predicted from one pyramid level, so usually one map carries the gradient; the maps of
all levels are resized to the image and summed.

The classification/segmentation explainers (:class:`~visionforge.explain.GradCAM`) take
a batch and a class; a detection is picked by its index in one image's output, so this
is its own small class rather than a :class:`~visionforge.explain.BaseExplainer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from visionforge.errors import DataError
from visionforge.explain.base import NotApplicableError, eval_mode, normalize_maps

__all__ = ["BoxGradCAM", "BoxExplanation", "detection_target_layers"]


@dataclass
class BoxExplanation:
    """One explained detection.

    Attributes:
        heatmap: ``[H, W]`` map of the input image's size, in [0, 1].
        box: the detection's ``[x1, y1, x2, y2]`` in input pixels.
        score: its score (what was differentiated).
        label: its label (``1..K``; 0 is background).
        index: its index in the model's output (sorted by score, best first).
        num_detections: detections in the model's output for this image.
    """

    heatmap: torch.Tensor
    box: list[float]
    score: float
    label: int
    index: int
    num_detections: int


def detection_target_layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs the detection heads read: the FPN's per-level output convs
    (``model.backbone.fpn.layer_blocks``); else the whole backbone."""
    backbone = getattr(model, "backbone", None)
    if backbone is None:
        raise NotApplicableError(
            f"{type(model).__name__} has no .backbone: not a torchvision detection model")
    fpn = getattr(backbone, "fpn", None)
    blocks = getattr(fpn, "layer_blocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks):
        return list(blocks)
    return [backbone]


class BoxGradCAM:
    """Grad-CAM of one detection's class score.

    Args:
        model: a torchvision-style detector (``model([image])`` in eval mode returns
            ``[{"boxes", "scores", "labels"}]``), e.g. visionforge's ``fcos``/``retinanet``/
            ``faster_rcnn``.
        target_layers: modules (or dotted names) whose outputs are explained; default
            :func:`detection_target_layers`.

    Example:
        >>> cam = BoxGradCAM(model)
        >>> result = cam.attribute(image, box=0)   # image [3, H, W] in [0, 1]; best box
        >>> result.heatmap.shape == image.shape[-2:], result.box, result.score
    """

    def __init__(self, model: nn.Module,
                 target_layers: Sequence[nn.Module | str] | None = None) -> None:
        self.model = model
        if target_layers is None:
            self.target_layers = detection_target_layers(model)
        else:
            self.target_layers = [self._module(t) for t in target_layers]

    def _module(self, layer: nn.Module | str) -> nn.Module:
        if isinstance(layer, nn.Module):
            return layer
        try:
            return self.model.get_submodule(layer)
        except AttributeError:
            raise NotApplicableError(f"model has no submodule {layer!r}") from None

    def attribute(self, image: torch.Tensor, box: int = 0, *, normalize: bool = True,
                  min_score: float | None = None) -> BoxExplanation:
        """Explain detection ``box`` (index into the model's output for ``image``, 0 = the
        highest score) of one image ``[3, H, W]`` (or ``[1, 3, H, W]``) in [0, 1].

        ``min_score`` counts only the detections scoring at least that much (a prefix of the
        output, which is sorted by score): ``box`` must index one of them, and
        ``num_detections`` counts them.
        """
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim != 3:
            raise DataError(f"BoxGradCAM explains one image [3, H, W]; got shape "
                            f"{tuple(image.shape)}")
        acts: list[torch.Tensor] = []
        padded: list[tuple[int, int]] = []

        def keep(module: nn.Module, args: Any, out: Any) -> None:
            acts.append(out[0] if isinstance(out, tuple) else out)

        def batch_size(module: nn.Module, args: Any) -> None:
            padded.append(tuple(args[0].shape[-2:]))

        handles = [m.register_forward_hook(keep) for m in self.target_layers]
        backbone = getattr(self.model, "backbone", None)
        if isinstance(backbone, nn.Module):  # the batched (zero-padded) size the maps cover
            handles.append(backbone.register_forward_pre_hook(batch_size))
        with eval_mode(self.model):
            try:
                # a copy that needs grad, so the activations do even for a frozen model
                x = image.detach().clone().requires_grad_(True)
                with torch.enable_grad():
                    det = self.model([x])[0]
                    scores = det["scores"]
                    n = len(scores) if min_score is None else int((scores >= min_score).sum())
                    above = "" if min_score is None else f" with score >= {min_score:g}"
                    if not 0 <= box < n:
                        raise DataError(
                            f"box={box}: the model found {n} detection(s){above} in this image"
                            + (f"; choose box=0..{n - 1}" if n else
                               " (nothing to explain; " + ("a lower score lists more)"
                                                           if above else
                                                           "lower the model's score_thresh)")))
                    score = det["scores"][box]
                    if not score.requires_grad:
                        raise NotApplicableError("the detection score has no gradient "
                                                 "(the model ran under no_grad?)")
                    grads = torch.autograd.grad(score, acts, allow_unused=True)
            finally:
                for h in handles:
                    h.remove()
        h, w = image.shape[-2:]
        # the maps cover the batch the transform built: the image (zoomed by the transform's
        # ``upscale``, if any), zero-padded right/bottom
        zoom = float(getattr(getattr(self.model, "transform", None), "upscale", 1.0))
        sh, sw = int(h * zoom), int(w * zoom)
        ph, pw = padded[0] if padded else (sh, sw)
        heat = torch.zeros(h, w)
        for act, grad in zip(acts, grads, strict=True):
            if grad is None:  # a level the chosen detection does not depend on
                continue
            # element-wise gradient x activation (HiResCAM), not Grad-CAM's channel-mean
            # weights: nuclei are alike, so the same channels fire on every one of them and
            # mean weights lit all of them (on a trained IHC model the map peaked at the
            # chosen box for 1 of 24 boxes; element-wise: 24 of 24)
            cam = F.relu((grad * act.detach()).sum(dim=1, keepdim=True))  # [1, 1, h, w]
            cam = F.interpolate(cam, size=(ph, pw), mode="bilinear", align_corners=False)
            cam = cam[:, :, :sh, :sw]
            if (sh, sw) != (h, w):
                cam = F.interpolate(cam, size=(h, w), mode="bilinear", align_corners=False)
            heat += cam[0, 0].cpu()
        if normalize:
            heat = normalize_maps(heat[None])[0]
        chosen = {k: v[box].detach() for k, v in det.items()}
        return BoxExplanation(
            heatmap=heat, box=[float(v) for v in chosen["boxes"].tolist()],
            score=float(chosen["scores"]), label=int(chosen["labels"]), index=int(box),
            num_detections=n)

    __call__ = attribute

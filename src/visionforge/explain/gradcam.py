"""Grad-CAM for CNNs, ViTs and Swin transformers, classification and segmentation.

Written by hand (Captum's ``LayerGradCam`` lacks token-to-grid reshaping and
default layer selection): a forward hook captures the target layer's output for
one call, ``torch.autograd.grad`` gives its gradient (no backward hooks, no
parameter ``.grad`` accumulation) and the hook is removed on exit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from visionforge.explain.base import (
    NotApplicableError,
    TargetClass,
    class_scores,
    eval_mode,
    forward_hook,
    normalize_maps,
    resolve_targets,
    select_output,
)
from visionforge.explain.layers import Reshape, _identity, find_target_layer

__all__ = ["GradCAM"]


class GradCAM:
    """Gradient-weighted class activation maps.

    Args:
        model: a CNN, timm ViT or Swin (classification logits ``[B, C]`` or segmentation
            logits ``[B, C, H, W]``; a multitask dict is reduced with ``output_key``).
        target_layer: module (or its dotted name) whose activations are explained;
            default: the last block norm for ViT/Swin, else the last spatial feature map.
        reshape_transform: maps the layer output (and the inputs) to ``[B, K, h, w]``;
            needed only with a custom token-shaped ``target_layer``.
        output_key: which entry of a dict output to explain.

    Example:
        >>> cam = GradCAM(model)
        >>> heat = cam.explain(images, target_class=3)   # [B, H, W] in [0, 1]
    """

    name = "grad_cam"

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module | str | None = None,
        reshape_transform: Reshape | None = None,
        output_key: str | None = None,
    ) -> None:
        self.model = model
        if isinstance(target_layer, str):
            try:
                target_layer = model.get_submodule(target_layer)
            except AttributeError:
                raise NotApplicableError(f"model has no submodule {target_layer!r}") from None
        self.target_layer = target_layer
        self.reshape_transform = reshape_transform
        self.output_key = output_key

    @staticmethod
    def check(model: nn.Module) -> str | None:
        """Why Grad-CAM cannot explain ``model`` (None when it can)."""
        if (
            not any(isinstance(m, nn.Conv2d) for m in model.modules())
            and not hasattr(model, "blocks")
            and not hasattr(model, "layers")
        ):
            return "no 2-D convolution or transformer blocks to take activations from"
        return None

    def _layer(self, inputs: torch.Tensor) -> tuple[nn.Module, Reshape]:
        if self.target_layer is None:
            self.target_layer, default_reshape = find_target_layer(
                self.model, inputs, self.output_key
            )
            if self.reshape_transform is None:
                self.reshape_transform = default_reshape
        return self.target_layer, self.reshape_transform or _identity

    def explain(
        self,
        inputs: torch.Tensor,
        target_class: TargetClass = None,
        normalize: bool = True,
        region: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Heatmaps ``[B, H, W]`` (in [0, 1] with ``normalize``) for ``target_class``
        (default: the predicted class; for segmentation the class whose logits, summed over
        ``region`` or the whole image, are largest)."""
        if inputs.ndim != 4:
            raise NotApplicableError("Grad-CAM needs image inputs [B, C, H, W]")
        with eval_mode(self.model):
            layer, reshape = self._layer(inputs)
            captured: dict[str, torch.Tensor] = {}

            def keep(module: nn.Module, args: Any, out: Any) -> None:
                captured["act"] = out[0] if isinstance(out, tuple) else out

            # The input needs grad so that activations do, even for frozen models.
            x = inputs.detach().clone().requires_grad_(True)
            with torch.enable_grad(), forward_hook(layer, keep):
                scores = class_scores(select_output(self.model(x), self.output_key), region)
                if "act" not in captured:
                    raise NotApplicableError("the target layer did not run in the forward pass")
                targets = resolve_targets(scores, target_class)
                selected = scores.gather(1, targets[:, None]).sum()
                act = captured.pop("act")
                (grad,) = torch.autograd.grad(selected, act)
            act, grad = reshape(act.detach(), inputs), reshape(grad, inputs)
        weights = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * act).sum(dim=1, keepdim=True))
        cam = F.interpolate(cam, size=inputs.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
        return normalize_maps(cam) if normalize else cam

    __call__ = explain

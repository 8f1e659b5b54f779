"""Grad-CAM and Grad-CAM++ for CNNs, ViTs and Swin transformers, classification and segmentation.

Written by hand (Captum's ``LayerGradCam`` lacks token-to-grid reshaping and
default layer selection): a forward hook captures the target layer's output
during the base class's forward pass and ``torch.autograd.grad`` gives its
gradient (no backward hooks, no parameter ``.grad`` accumulation). The two
methods differ only in how channels are weighted (:meth:`GradCAM._channel_weights`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionforge.explain.base import BaseExplainer, Hook, NotApplicableError, register_explainer
from visionforge.explain.layers import Reshape, _identity, find_target_layer

__all__ = ["GradCAM", "GradCAMPlusPlus"]


@register_explainer(
    "grad_cam", aliases=("gradcam", "grad-cam"), description="Grad-CAM heatmap [B, H, W]"
)
class GradCAM(BaseExplainer):
    """Gradient-weighted class activation maps (Selvaraju et al. 2017).

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
        >>> heat = cam.attribute(images, target=3)   # [B, H, W] in [0, 1]
    """

    needs_grad = True
    input_ndim = 4

    def __init__(
        self,
        model: nn.Module,
        target_layer: nn.Module | str | None = None,
        reshape_transform: Reshape | None = None,
        output_key: str | None = None,
    ) -> None:
        super().__init__(model, output_key)
        if isinstance(target_layer, str):
            try:
                target_layer = model.get_submodule(target_layer)
            except AttributeError:
                raise NotApplicableError(f"model has no submodule {target_layer!r}") from None
        self.target_layer = target_layer
        self.reshape_transform = reshape_transform

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

    def _hooks(self, inputs: torch.Tensor) -> list[Hook]:
        if self.target_layer is None:  # chosen once, on the first input seen
            self.target_layer, default_reshape = find_target_layer(
                self.model, inputs, self.output_key
            )
            if self.reshape_transform is None:
                self.reshape_transform = default_reshape

        def keep(module: nn.Module, args: Any, out: Any) -> None:
            self.captured["act"] = out[0] if isinstance(out, tuple) else out

        return [(self.target_layer, keep)]

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> Tensor:
        if "act" not in self.captured:
            raise NotApplicableError("the target layer did not run in the forward pass")
        act = self.captured.pop("act")
        (grad,) = torch.autograd.grad(scores.gather(1, targets[:, None]).sum(), act)
        reshape = self.reshape_transform or _identity
        act, grad = reshape(act.detach(), inputs), reshape(grad, inputs)
        return F.relu((self._channel_weights(act, grad) * act).sum(dim=1))

    def _channel_weights(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """Weight of each channel ``[B, K, 1, 1]``: the spatial mean of its gradient."""
        return grad.mean(dim=(2, 3), keepdim=True)


@register_explainer(
    "gradcam++",
    aliases=("gradcam_plus_plus", "grad_cam_plus_plus", "grad-cam++"),
    description="Grad-CAM++ heatmap [B, H, W]",
)
class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018): channels weighted by positive gradients times
    per-pixel coefficients, so several instances of a class all show up in the map."""

    def _channel_weights(self, act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        # Closed form of the paper's alphas for an exponential score: higher derivatives
        # become powers of the first one.
        g2 = grad.pow(2)
        denom = 2 * g2 + act.sum(dim=(2, 3), keepdim=True) * g2 * grad
        nonzero = denom != 0  # a zero denominator (zero gradient) gives alpha = 0
        alpha = torch.where(nonzero, g2 / torch.where(nonzero, denom, 1.0), 0.0)
        return (alpha * F.relu(grad)).sum(dim=(2, 3), keepdim=True)

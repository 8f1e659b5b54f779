"""Default Grad-CAM target layers for CNNs, ViTs and Swin transformers.

A ViT's last block norm (tokens reshaped to the patch grid) and a Swin's last
block norm (NHWC permuted to NCHW) follow pytorch-grad-cam's recommendations.
For any other model one dry forward pass finds the last module producing a 4-D
feature map with spatial extent that is not the class-logit map itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from visionforge.explain.base import NotApplicableError, select_output

__all__ = ["TargetLayer", "find_target_layer", "is_vit", "is_swin"]

Reshape = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
TargetLayer = tuple[nn.Module, Reshape]


def is_vit(model: nn.Module) -> bool:
    """True for timm-style ViTs (``patch_embed`` + ``blocks`` of global attention)."""
    return hasattr(model, "patch_embed") and isinstance(
        getattr(model, "blocks", None), nn.Sequential | nn.ModuleList
    )


def is_swin(model: nn.Module) -> bool:
    """True for timm Swin transformers (``layers`` of blocks with windowed attention)."""
    return "swin" in type(model).__name__.lower() and hasattr(model, "layers")


def _identity(act: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    return act


def _nhwc_to_nchw(act: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    return act.permute(0, 3, 1, 2)


def _vit_reshape(model: nn.Module) -> Reshape:
    patch = getattr(model.patch_embed, "patch_size", None)

    def reshape(act: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        b, n, c = act.shape
        if patch is not None:
            gh, gw = inputs.shape[-2] // patch[0], inputs.shape[-1] // patch[1]
        else:
            gh = gw = math.isqrt(n)
        prefix = n - gh * gw  # class / register tokens come first in timm ViTs
        if prefix < 0:
            raise NotApplicableError(f"cannot reshape {n} tokens to a {gh}x{gw} grid")
        return act[:, prefix:].reshape(b, gh, gw, c).permute(0, 3, 1, 2)

    return reshape


def find_target_layer(
    model: nn.Module, inputs: torch.Tensor, output_key: str | None = None
) -> TargetLayer:
    """The default Grad-CAM layer of ``model`` and the function mapping its output to NCHW."""
    if is_swin(model):
        return model.layers[-1].blocks[-1].norm1, _nhwc_to_nchw
    if is_vit(model):
        return model.blocks[-1].norm1, _vit_reshape(model)
    if inputs.ndim != 4:
        raise NotApplicableError("Grad-CAM needs image inputs [B, C, H, W]")
    order: list[tuple[nn.Module, tuple[int, ...]]] = []

    def record(module: nn.Module, args: object, out: object) -> None:
        if isinstance(out, torch.Tensor):
            order.append((module, tuple(out.shape)))

    handles = [m.register_forward_hook(record) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            final = select_output(model(inputs[:1]), output_key)
    finally:
        for h in handles:
            h.remove()
    logit_channels = final.shape[1] if final.ndim == 4 else None
    for module, shape in reversed(order):
        if len(shape) != 4 or shape[2] * shape[3] <= 1 or "pool" in type(module).__name__.lower():
            continue
        if logit_channels is not None and shape[1] == logit_channels:
            continue  # the segmentation logits themselves (or their upsampling)
        return module, _identity
    raise NotApplicableError(
        "no 4-D feature map with spatial extent found (not a CNN/ViT/Swin?); pass target_layer="
    )

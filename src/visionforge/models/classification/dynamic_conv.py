"""Dynamic-convolution family (timm CondConv EfficientNet): alias ``CustomDynamicConvNet``.

Each CondConv layer holds a bank of ``num_experts`` kernels; a routing network
(global average pool -> linear -> sigmoid) computes per-sample mixing weights
and the layer convolves every sample with its own mixed kernel
(``timm.layers.CondConv2d``). :func:`effective_kernels` exposes those kernels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model

# timm block strings: ir = inverted residual, cc4 = CondConv with 4 experts
_TINY_ARCH = [
    ["ds_r1_k3_s1_e1_c16_se0.25"],
    ["ir_r1_k3_s2_e4_c24_se0.25_cc4"],
    ["ir_r1_k5_s2_e4_c40_se0.25_cc4"],
    ["ir_r1_k3_s2_e4_c64_se0.25_cc4"],
]


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.efficientnet import EfficientNet, decode_arch_def

    return EfficientNet(
        block_args=decode_arch_def(_TINY_ARCH),
        num_features=256,
        stem_size=16,
        in_chans=in_chans,
        num_classes=0,
        **kwargs,
    )


SIZES = {"tiny": _tiny, "small": "tf_efficientnet_cc_b0_4e", "base": "tf_efficientnet_cc_b1_8e"}


@register_model(
    "custom_dynamic_convnet",
    aliases=("CustomDynamicConvNet",),
    task="classification",
    family="dynamic_conv",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="CondConv EfficientNet (timm): per-input mixture of kernels; sizes tiny/small(b0 4e)/base(b1 8e)",
    lr_multiplier=1.0,
    scheduler="onecycle",
    kind="cnn",
)
def custom_dynamic_convnet(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """Dynamic-conv classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_dynamic_convnet",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )


def effective_kernels(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-sample kernels ``[B, out, in/groups, k, k]`` of every CondConv layer for input ``x``.

    The mixing weights are captured from the routing networks during one forward pass.
    """
    from timm.layers import CondConv2d

    routing: dict[nn.Module, torch.Tensor] = {}
    hooks = []
    for module in model.modules():
        if isinstance(module, CondConv2d):

            def hook(mod, args, _routing=routing):
                _routing[mod] = args[1]

            hooks.append(module.register_forward_pre_hook(hook))
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    kernels = []
    for conv, weights in routing.items():
        bank = conv.weight.view(conv.num_experts, -1)  # [experts, out * in/groups * k * k]
        mixed = weights @ bank
        kernels.append(mixed.view(x.shape[0], *conv.weight_shape))
    return kernels

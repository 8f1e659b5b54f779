"""ResNet with Mish activations (timm ``resnet``, ``act_layer="mish"``): alias ``CustomResNetMish``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.resnet import BasicBlock, ResNet

    return ResNet(
        block=BasicBlock,
        layers=(1, 1, 1, 1),
        channels=(16, 32, 64, 128),
        stem_width=16,
        in_chans=in_chans,
        num_classes=0,
        **{"act_layer": "mish", **kwargs},
    )


# ImageNet weights of the ReLU ResNets load into the Mish variant (same parameters)
SIZES = {
    "tiny": _tiny,
    "small": ("resnet18", {"act_layer": "mish"}),
    "base": ("resnet50", {"act_layer": "mish"}),
}


@register_model(
    "custom_resnet_mish",
    aliases=("CustomResNetMish",),
    task="classification",
    family="resnet_mish",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="ResNet with Mish activation (timm); sizes tiny/small(18)/base(50)",
    lr_multiplier=1.2,
    scheduler="onecycle",
    kind="cnn",
)
def custom_resnet_mish(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """ResNet-Mish classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_resnet_mish",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

"""ConvNeXt family (timm ``convnext``): pipeline alias ``CustomConvNeXt``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.convnext import ConvNeXt

    return ConvNeXt(
        in_chans=in_chans, num_classes=0, depths=(1, 1, 1, 1), dims=(16, 32, 64, 128), **kwargs
    )


SIZES = {"tiny": _tiny, "small": "convnext_atto", "base": "convnext_tiny"}


@register_model(
    "custom_convnext",
    aliases=("CustomConvNeXt",),
    task="classification",
    family="convnext",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="ConvNeXt (timm); sizes tiny/small(atto)/base(tiny)",
    lr_multiplier=1.2,
    scheduler="onecycle",
    kind="cnn",
)
def custom_convnext(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """ConvNeXt classifier; ``img_size`` is accepted for a uniform signature (CNN: any size)."""
    return build_classifier(
        "custom_convnext",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

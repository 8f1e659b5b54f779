"""EfficientNetV2 family (timm ``efficientnetv2``): pipeline alias ``CustomEfficientNetV4``.

The pipeline calls it "EfficientNetV4"; no such architecture is published, it
is EfficientNetV2 (fused-MBConv early stages, MBConv+SE later).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    import timm

    # timm's EfficientNetV2-S definition scaled down through its own width/depth multipliers
    return timm.create_model(
        "efficientnetv2_s",
        num_classes=0,
        in_chans=in_chans,
        channel_multiplier=0.25,
        depth_multiplier=0.2,
        **kwargs,
    )


SIZES = {"tiny": _tiny, "small": "tf_efficientnetv2_b0", "base": "tf_efficientnetv2_s"}


@register_model(
    "custom_efficientnetv2",
    aliases=("CustomEfficientNetV4", "CustomEfficientNetV2"),
    task="classification",
    family="efficientnetv2",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="EfficientNetV2 (timm); sizes tiny/small(b0)/base(s)",
    lr_multiplier=1.1,
    scheduler="onecycle",
    kind="cnn",
)
def custom_efficientnetv2(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """EfficientNetV2 classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_efficientnetv2",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

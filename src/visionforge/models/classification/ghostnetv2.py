"""GhostNetV2 family (timm ``ghostnet``, version v2 with DFC attention): alias ``CustomGhostNetV2``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model

# (kernel, expansion channels, out channels, SE ratio, stride) per block, one list per stage
_TINY_CFGS = [
    [[3, 16, 16, 0, 1]],
    [[3, 48, 24, 0, 2]],
    [[5, 72, 40, 0.25, 2]],
    [[3, 240, 80, 0, 2]],
    [[5, 480, 112, 0.25, 2]],
]


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.ghostnet import GhostNet

    return GhostNet(
        cfgs=_TINY_CFGS, width=0.5, version="v2", in_chans=in_chans, num_classes=0,
        **{**_NO_INNER_DROP, **kwargs},
    )


# timm's GhostNet applies its own dropout (0.2) before its (removed) classifier; the
# factory's drop_rate is applied once, by the BackboneHeadClassifier head
_NO_INNER_DROP = {"drop_rate": 0.0}
SIZES = {
    "tiny": _tiny,
    "small": ("ghostnetv2_100", _NO_INNER_DROP),
    "base": ("ghostnetv2_160", _NO_INNER_DROP),
}


@register_model(
    "custom_ghostnetv2",
    aliases=("CustomGhostNetV2",),
    task="classification",
    family="ghostnetv2",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="GhostNetV2 (timm); sizes tiny/small(1.0x)/base(1.6x)",
    lr_multiplier=1.5,
    scheduler="onecycle",
    kind="cnn",
)
def custom_ghostnetv2(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """GhostNetV2 classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_ghostnetv2",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

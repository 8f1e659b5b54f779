"""RegNet family (timm ``regnet``): pipeline alias ``CustomRegNet``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.regnet import RegNet, RegNetCfg

    # a RegNetY design-space point with one block per stage (timm needs 4 stages):
    # linear widths 16 + 27 j quantised to 16 * 2^k give stages of 16/32/64/128 channels
    cfg = RegNetCfg(depth=4, w0=16, wa=27.0, wm=2.0, group_size=8, se_ratio=0.25, stem_width=16)
    return RegNet(cfg, in_chans=in_chans, num_classes=0, **kwargs)


SIZES = {"tiny": _tiny, "small": "regnety_002", "base": "regnety_016"}


@register_model(
    "custom_regnet",
    aliases=("CustomRegNet",),
    task="classification",
    family="regnet",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="RegNetY (timm); sizes tiny/small(002)/base(016)",
    lr_multiplier=1.2,
    scheduler="onecycle",
    kind="cnn",
)
def custom_regnet(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """RegNet classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_regnet",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

"""MobileOne family (timm ``byobnet`` MobileOne blocks, re-parameterisable): alias ``CustomMobileOne``.

For deployment, ``timm.utils.reparameterize_model(model)`` folds the training-time
branches into single convolutions.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, **kwargs: Any) -> nn.Module:
    from timm.models.byobnet import ByobNet, ByoModelCfg, _mobileone_bcfg

    cfg = ByoModelCfg(
        blocks=_mobileone_bcfg(d=(1, 1, 1, 1), wf=(0.25, 0.25, 0.25, 0.25), num_conv_branches=2),
        stem_type="one",
        stem_chs=16,
    )
    return ByobNet(cfg, in_chans=in_chans, num_classes=0, **kwargs)


SIZES = {"tiny": _tiny, "small": "mobileone_s0", "base": "mobileone_s2"}


@register_model(
    "custom_mobileone",
    aliases=("CustomMobileOne",),
    task="classification",
    family="mobileone",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="MobileOne (timm); sizes tiny/small(s0)/base(s2)",
    lr_multiplier=1.0,
    scheduler="onecycle",
    kind="cnn",
)
def custom_mobileone(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """MobileOne classifier; ``img_size`` is accepted for a uniform signature (CNN)."""
    return build_classifier(
        "custom_mobileone",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        **kwargs,
    )

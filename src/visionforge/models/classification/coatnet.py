"""CoAtNet family (timm ``maxxvit``: MBConv stages then relative-attention stages).

Alias ``CustomCoAtNet``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitTransformerCfg

    # two convolutional (C) stages, then one transformer (T) stage; output stride 16
    cfg = MaxxVitCfg(
        embed_dim=(24, 48, 96),
        depths=(1, 1, 1),
        block_type=("C", "C", "T"),
        stem_width=16,
        transformer_cfg=MaxxVitTransformerCfg(dim_head=16),
    )
    return MaxxVit(cfg, img_size=img_size, in_chans=in_chans, num_classes=0, **kwargs)


SIZES = {"tiny": _tiny, "small": "coatnet_nano_rw_224", "base": "coatnet_0_rw_224"}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224}


@register_model(
    "custom_coatnet",
    aliases=("CustomCoAtNet",),
    task="classification",
    family="coatnet",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="CoAtNet (timm maxxvit); sizes tiny/small(nano)/base(0)",
    lr_multiplier=1.2,
    scheduler="warmup_cosine",
    kind="hybrid",
)
def custom_coatnet(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """CoAtNet classifier for ``img_size`` inputs (relative-position tables are sized from it)."""
    return build_classifier(
        "custom_coatnet",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        default_img_size=DEFAULT_IMG_SIZE,
        **kwargs,
    )

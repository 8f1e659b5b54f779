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


def _enhanced(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    """The disease pipeline's "enhanced" CustomCoAtNet stage layout (its document):

    stem 224 -> 112 (128 channels), stage 1 at 56x56: 5 MBConv blocks (128 -> 256),
    stage 2 at 28x28: 6 MBConv + 4 relative-attention blocks (256 -> 512), stage 3 at
    14x14: 12 transformer blocks (512 -> 768); LayerScale initialised at 0.1 and a residual
    around every block. timm's stem has stride 2 and each stage halves the resolution
    first, so the stages run at the document's resolutions (56, 28, 14).
    """
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitTransformerCfg

    cfg = MaxxVitCfg(
        embed_dim=(256, 512, 768),
        depths=(5, 10, 12),
        block_type=("C", ("C",) * 6 + ("T",) * 4, "T"),
        stem_width=(64, 128),
        transformer_cfg=MaxxVitTransformerCfg(init_values=0.1),
    )
    return MaxxVit(cfg, img_size=img_size, in_chans=in_chans, num_classes=0, **kwargs)


SIZES = {"tiny": _tiny, "small": "coatnet_nano_rw_224", "base": "coatnet_0_rw_224",
         "enhanced": _enhanced}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224, "enhanced": 224}


@register_model(
    "custom_coatnet",
    aliases=("CustomCoAtNet",),
    task="classification",
    family="coatnet",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="CoAtNet (timm maxxvit); sizes tiny/small(nano)/base(0)/enhanced(pipeline doc)",
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

"""MaxViT family (timm ``maxxvit``: MBConv + block attention + grid attention per block).

Alias ``CustomMaxViT``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitTransformerCfg

    # three MaxViT (M) stages, output stride 16; windows/grids of img_size / 16 so that
    # the last stage is one window, as in MaxViT's 224-px design (7x7 at stride 32)
    cfg = MaxxVitCfg(
        embed_dim=(32, 64, 128),
        depths=(1, 1, 1),
        block_type=("M", "M", "M"),
        stem_width=16,
        transformer_cfg=MaxxVitTransformerCfg(dim_head=16, partition_ratio=16),
    )
    return MaxxVit(cfg, img_size=img_size, in_chans=in_chans, num_classes=0, **kwargs)


def _enhanced(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    """The disease pipeline's "enhanced" CustomMaxViT stage layout (its document):

    stem 224 -> 112 (128 channels), stage 1 at 56x56: 6 MBConv blocks (128 -> 256),
    stage 2 at 28x28: 8 MBConv + 3 MaxViT attention blocks (block + grid attention,
    256 -> 512), stage 3 at 14x14: 10 transformer blocks (512 -> 768); LayerScale
    initialised at 0.1. Windows and grids are ``img_size / 32`` (7 at 224 px), so
    ``img_size`` must be a multiple of 32.
    """
    from timm.models.maxxvit import MaxxVit, MaxxVitCfg, MaxxVitTransformerCfg

    cfg = MaxxVitCfg(
        embed_dim=(256, 512, 768),
        depths=(6, 11, 10),
        block_type=("C", ("C",) * 8 + ("M",) * 3, "T"),
        stem_width=(64, 128),
        transformer_cfg=MaxxVitTransformerCfg(init_values=0.1),
    )
    return MaxxVit(cfg, img_size=img_size, in_chans=in_chans, num_classes=0, **kwargs)


SIZES = {"tiny": _tiny, "small": "maxvit_nano_rw_256", "base": "maxvit_tiny_tf_224",
         "enhanced": _enhanced}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224, "enhanced": 224}


@register_model(
    "custom_maxvit",
    aliases=("CustomMaxViT",),
    task="classification",
    family="maxvit",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="MaxViT (timm maxxvit); sizes tiny/small(nano-rw, 224 px)/base(tiny-tf-224)/enhanced(pipeline doc)",
    lr_multiplier=1.2,
    scheduler="warmup_cosine",
    kind="transformer",
)
def custom_maxvit(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """MaxViT classifier for ``img_size`` inputs (a multiple of 32; default 224, tiny 32).

    Windows and grids are sized from ``img_size`` at build time (``small`` is timm's
    ``maxvit_nano_rw_256`` geometry built for 224 px: 7x7 windows at stride 32; its
    published 256-px weights are resized by timm's loader).
    """
    return build_classifier(
        "custom_maxvit",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        default_img_size=DEFAULT_IMG_SIZE,
        **kwargs,
    )

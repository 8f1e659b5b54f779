"""Swin Transformer family (timm ``swin_transformer``): alias ``CustomSwinTransformer``."""

from __future__ import annotations

from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _tiny(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    from timm.models.swin_transformer import SwinTransformer

    # patch 2 keeps enough tokens at 32-64 px; window 4 divides both stage resolutions
    return SwinTransformer(
        img_size=img_size,
        patch_size=2,
        window_size=4,
        embed_dim=32,
        depths=(1, 1),
        num_heads=(2, 4),
        in_chans=in_chans,
        num_classes=0,
        **kwargs,
    )


SIZES = {
    "tiny": _tiny,
    "small": "swin_tiny_patch4_window7_224",
    "base": "swin_small_patch4_window7_224",
}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224}


@register_model(
    "custom_swin_transformer",
    aliases=("CustomSwinTransformer",),
    task="classification",
    family="swin",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="Swin Transformer (timm); sizes tiny/small(swin-T)/base(swin-S)",
    lr_multiplier=0.7,
    scheduler="warmup_cosine",
    kind="transformer",
)
def custom_swin_transformer(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """Swin classifier for ``img_size`` inputs (default 32 for tiny, 224 otherwise).

    ``img_size`` must be divisible by patch size x window size x 2^(stages-1)
    (tiny: 16, small/base: 224-compatible multiples of 32 x 7).
    """
    return build_classifier(
        "custom_swin_transformer",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        default_img_size=DEFAULT_IMG_SIZE,
        **kwargs,
    )

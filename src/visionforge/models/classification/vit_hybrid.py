"""ViT-hybrid family: convolutional stem + Vision Transformer (timm ``vision_transformer_hybrid``).

Alias ``CustomViTHybrid``. The CNN stem turns the image into a feature map
whose pixels are the transformer's tokens (timm's ``HybridEmbed``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _conv_stem(in_chans: int, width: int) -> nn.Module:
    from timm.layers import ConvNormAct

    # stride 4: two stride-2 3x3 convs (a 32-px image gives 8x8 = 64 tokens)
    return nn.Sequential(
        ConvNormAct(in_chans, width // 2, 3, stride=2),
        ConvNormAct(width // 2, width, 3, stride=2),
    )


def _tiny(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    from timm.layers import HybridEmbed
    from timm.models.vision_transformer import VisionTransformer

    stem = _conv_stem(in_chans, 32)
    return VisionTransformer(
        img_size=img_size,
        patch_size=1,
        in_chans=in_chans,
        num_classes=0,
        embed_dim=64,
        depth=2,
        num_heads=2,
        embed_layer=partial(HybridEmbed, backbone=stem),
        **kwargs,
    )


SIZES = {"tiny": _tiny, "small": "vit_tiny_r_s16_p8_224", "base": "vit_small_r26_s32_224"}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224}


@register_model(
    "custom_vit_hybrid",
    aliases=("CustomViTHybrid",),
    task="classification",
    family="vit_hybrid",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="CNN stem + ViT (timm hybrid); sizes tiny/small(R-Ti/16)/base(R26+S/32)",
    lr_multiplier=1.2,
    scheduler="warmup_cosine",
    kind="transformer",
)
def custom_vit_hybrid(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> BackboneHeadClassifier:
    """CNN-stem ViT classifier for ``img_size`` inputs (position embeddings sized from it)."""
    return build_classifier(
        "custom_vit_hybrid",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        default_img_size=DEFAULT_IMG_SIZE,
        **kwargs,
    )

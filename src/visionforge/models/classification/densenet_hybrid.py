"""DenseNet-hybrid family: timm DenseNet features followed by transformer encoder layers.

Alias ``CustomDenseNetHybrid``. timm has DenseNet but no DenseNet+attention
hybrid, so the glue is written here: the DenseNet feature map is projected to
``embed_dim`` tokens, given a convolutional position encoding (depthwise 3x3,
as in CPVT, so any input size works) and passed through
``torch.nn.TransformerEncoder`` layers; the head pools the tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, check_size, no_pretrained
from visionforge.models.factory import register_model


class DenseNetTransformer(nn.Module):
    """DenseNet feature extractor + transformer encoder over its spatial tokens.

    ``forward_features`` returns a ``[B, embed_dim, h, w]`` map (so CAM-style
    explanations still work); ``forward_head(x, pre_logits=True)`` pools it.
    """

    def __init__(
        self,
        cnn: nn.Module,
        *,
        embed_dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 2.0,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.cnn = cnn
        self.proj = nn.Conv2d(cnn.num_features, embed_dim, 1)
        self.pos = nn.Conv2d(embed_dim, embed_dim, 3, padding=1, groups=embed_dim)
        layer = nn.TransformerEncoderLayer(
            embed_dim,
            num_heads,
            dim_feedforward=int(embed_dim * mlp_ratio),
            dropout=drop_rate,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.num_features = embed_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.proj(self.cnn.forward_features(x))
        fmap = fmap + self.pos(fmap)
        b, c, h, w = fmap.shape
        tokens = self.norm(self.encoder(fmap.flatten(2).transpose(1, 2)))
        return tokens.transpose(1, 2).reshape(b, c, h, w)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # the classifier lives in BackboneHeadClassifier.head; this only pools
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), pre_logits=True)


# size -> (DenseNet arguments or timm name, transformer embed_dim, depth, heads)
SIZES: dict[str, tuple[dict[str, Any] | str, int, int, int]] = {
    "tiny": ({"growth_rate": 8, "block_config": (2, 2, 2)}, 32, 1, 2),
    "small": ({"growth_rate": 16, "block_config": (4, 8, 8)}, 128, 2, 4),
    "base": ("densenet121", 256, 2, 8),
}


@register_model(
    "custom_densenet_hybrid",
    aliases=("CustomDenseNetHybrid",),
    task="classification",
    family="densenet_hybrid",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="DenseNet (timm) + transformer encoder; sizes tiny/small/base(densenet121)",
    lr_multiplier=1.1,
    scheduler="onecycle",
    kind="hybrid",
)
def custom_densenet_hybrid(
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int | None = None,
    size: str = "small",
    pretrained: bool = False,
    drop_rate: float = 0.0,
    **kwargs: Any,
) -> BackboneHeadClassifier:
    """DenseNet-transformer classifier; any input size (``img_size`` accepted for uniformity).

    ``pretrained=True`` (size ``base``) loads timm's ImageNet DenseNet-121 into
    the convolutional part; the transformer layers start from scratch.
    """
    from timm.models.densenet import DenseNet

    from visionforge.models.backbones._pretrained import timm_create

    check_size("custom_densenet_hybrid", size, SIZES)
    cnn_spec, embed_dim, depth, heads = SIZES[size]
    if isinstance(cnn_spec, str):
        cnn = timm_create(
            cnn_spec, pretrained=bool(pretrained), num_classes=0, in_chans=in_chans, **kwargs
        )
    else:
        no_pretrained("custom_densenet_hybrid", size, pretrained)
        cnn = DenseNet(**cnn_spec, in_chans=in_chans, num_classes=0, **kwargs)
    backbone = DenseNetTransformer(cnn, embed_dim=embed_dim, depth=depth, num_heads=heads)
    return BackboneHeadClassifier(backbone, num_classes, drop_rate=drop_rate)

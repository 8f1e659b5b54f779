"""DeiT family (timm ``deit``, distilled ViT with a class and a distillation token).

Alias ``CustomDeiTStyle``. The head keeps DeiT's two classifiers (one on the
class token, one on the distillation token) and averages their logits, as
DeiT does at inference; both live in ``model.head`` so freezing the backbone
leaves both trainable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


class DistilledHead(nn.Module):
    """Two linear classifiers on the class / distillation tokens; logits averaged."""

    def __init__(self, num_features: int, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(num_features, num_classes)
        self.head_dist = nn.Linear(num_features, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens``: ``[B, 2, D]`` (class token, distillation token)."""
        tokens = self.drop(tokens)
        return (self.head(tokens[:, 0]) + self.head_dist(tokens[:, 1])) / 2


class DeiTClassifier(BackboneHeadClassifier):
    """:class:`BackboneHeadClassifier` whose head sees both DeiT tokens."""

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        return DistilledHead(self.num_features, num_classes, self.drop_rate)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits or self.num_classes == 0:
            return self.backbone.forward_head(features, pre_logits=True)  # token average
        return self.head(features[:, :2])


def _tiny(in_chans: int, img_size: int, **kwargs: Any) -> nn.Module:
    import timm

    return timm.create_model(
        "deit_tiny_distilled_patch16_224",
        num_classes=0,
        in_chans=in_chans,
        img_size=img_size,
        **{"patch_size": 4, "embed_dim": 64, "depth": 2, "num_heads": 2, **kwargs},
    )


SIZES = {
    "tiny": _tiny,
    "small": "deit_tiny_distilled_patch16_224",
    "base": "deit_small_distilled_patch16_224",
}
DEFAULT_IMG_SIZE = {"tiny": 32, "small": 224, "base": 224}


@register_model(
    "custom_deit",
    aliases=("CustomDeiTStyle", "CustomDeiT"),
    task="classification",
    family="deit",
    test_kwargs={"size": "tiny", "num_classes": 3, "img_size": 32},
    test_input=(3, 32, 32),
    overfit=True,
    description="DeiT with distillation token (timm); sizes tiny/small(DeiT-Ti)/base(DeiT-S)",
    lr_multiplier=0.8,
    scheduler="warmup_cosine",
    kind="transformer",
)
def custom_deit(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0, **kwargs: Any,
) -> DeiTClassifier:
    """DeiT classifier for ``img_size`` inputs (multiple of the patch size: 4 tiny, 16 otherwise)."""
    return build_classifier(
        "custom_deit",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        default_img_size=DEFAULT_IMG_SIZE,
        head_cls=DeiTClassifier,
        **kwargs,
    )

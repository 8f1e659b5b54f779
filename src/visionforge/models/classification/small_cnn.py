"""``small_cnn``: a compact VGG-style CNN for small images (digits, tiles, thumbnails).

timm's smallest ImageNet architectures still spend most of their compute on
stems tuned for 224-px inputs; this baseline trains in seconds on a CPU at
16-64 px, which is what quick experiments and the demo need.
"""

from __future__ import annotations

import torch
from torch import nn

from visionforge.models.factory import register_model

__all__ = ["SmallCNN", "small_cnn"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SmallCNN(nn.Module):
    """Conv blocks (width doubling, 2x down-sampling each) -> global average pool -> linear head.

    Exposes ``backbone`` (conv blocks + pooling) and ``head`` (dropout + linear) so
    head-then-finetune training can freeze the backbone.
    """

    def __init__(
        self, num_classes: int = 10, in_chans: int = 3, width: int = 32, depth: int = 3,
        drop_rate: float = 0.2,
    ) -> None:
        super().__init__()
        chans = [in_chans] + [width * 2**i for i in range(depth)]
        self.backbone = nn.Sequential(
            *[_block(a, b) for a, b in zip(chans[:-1], chans[1:])],
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.num_features = chans[-1]
        self.drop_rate = drop_rate
        self.head = self._make_head(num_classes)

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        return nn.Sequential(nn.Dropout(self.drop_rate), nn.Linear(self.num_features, num_classes))

    # timm's classifier interface, so training and export treat it like the other families
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, num_features]`` (the pooling has no parameters)."""
        return self.backbone(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = self._make_head(num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


@register_model(
    "small_cnn",
    aliases=("SmallCNN",),
    task="classification",
    family="small_cnn",
    test_kwargs={"num_classes": 3, "width": 8, "depth": 2},
    test_input=(3, 32, 32),
    overfit=True,
    description="compact VGG-style CNN for small images (fast on CPU)",
    lr_multiplier=1.0,
    scheduler="onecycle",
    kind="cnn",
)
def small_cnn(
    num_classes: int = 10,
    in_chans: int = 3,
    img_size: int | None = None,
    width: int = 32,
    depth: int = 3,
    drop_rate: float = 0.2,
) -> SmallCNN:
    """A :class:`SmallCNN`; ``width`` channels in the first block, doubling per block.

    ``img_size`` is accepted for a uniform interface and ignored: any input size works.
    """
    del img_size
    return SmallCNN(num_classes, in_chans, width, depth, drop_rate)

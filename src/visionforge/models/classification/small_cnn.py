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
        self.head = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(chans[-1], num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

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
)
def small_cnn(
    num_classes: int = 10, in_chans: int = 3, width: int = 32, depth: int = 3, drop_rate: float = 0.2
) -> SmallCNN:
    """A :class:`SmallCNN`; ``width`` channels in the first block, doubling per block."""
    return SmallCNN(num_classes, in_chans, width, depth, drop_rate)

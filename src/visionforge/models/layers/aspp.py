"""Atrous Spatial Pyramid Pooling (DeepLabV3/V3+)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ASPP", "conv_bn_relu"]


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1
) -> nn.Sequential:
    """Conv (no bias, 'same' padding) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False,
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _ImagePooling(nn.Sequential):
    """Global average pooling -> 1x1 conv -> BN -> ReLU, broadcast back to the input size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pool, conv, bn, relu = self
        y = conv(pool(x))
        if self.training and y.shape[0] == 1:
            # BatchNorm cannot compute batch statistics from a single 1x1 value; with a
            # batch of one, normalise with the running statistics instead of crashing.
            y = F.batch_norm(
                y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
            )
        else:
            y = bn(y)
        return F.interpolate(relu(y), size=size, mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """ASPP: a 1x1 branch, one 3x3 atrous branch per rate and an image-pooling branch
    (``out_channels`` each, BN + ReLU), fused by 1x1 conv + BN + ReLU + dropout.

    Args:
        in_channels: input channels (2048 for a ResNet-50 ``layer4``).
        out_channels: channels of each branch and of the output.
        rates: dilation rates of the atrous branches.
        drop_rate: dropout after the fusion.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_channels, out_channels, 1)]
            + [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in rates]
        )
        self.pooling = _ImagePooling(in_channels, out_channels)
        self.project = nn.Sequential(
            conv_bn_relu(out_channels * (len(rates) + 2), out_channels, 1),
            nn.Dropout(drop_rate),
        )
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches] + [self.pooling(x)]
        return self.project(torch.cat(outs, dim=1))

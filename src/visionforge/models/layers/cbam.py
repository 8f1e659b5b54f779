"""CBAM: convolutional block attention (channel attention, then spatial attention).

Kept rather than replaced by ``timm.layers.CbamModule`` (same ordering and the same
avg+max channel MLP) because timm's block differs in two ways that matter here:

- timm's spatial branch is ``ConvNormAct`` -- a 7x7 conv followed by ``BatchNorm2d``
  (as in the authors' reference code). Ours is the paper's equation
  ``sigmoid(conv7x7([avg; max]))`` with no normalisation, so the block behaves the same
  in train and eval mode, keeps no running statistics, and trains on a batch of one 1x1
  map (the deepest map of a small input), where BatchNorm raises.
- timm marks the module experimental ("I may end up removing this impl") and does not
  export it from ``timm.layers``, only from ``timm.layers.cbam``.
- timm sizes the hidden MLP as ``round(C / reduction)``; ours as ``max(1, C // reduction)``
  (``CbamModule(rd_channels=...)`` reproduces ours).

With ``rd_channels=max(1, C // reduction)``, the weights copied across and timm's
BatchNorm an identity (eval mode, fresh statistics, ``eps=0``) the two give the same
output; ``tests/models/test_models_layers.py`` checks this numerically.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CBAM", "ChannelAttention", "SpatialAttention"]


class ChannelAttention(nn.Module):
    """Per-channel gate from a shared MLP over average- and max-pooled descriptors."""

    def __init__(self, in_channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, in_channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """Per-pixel gate from a convolution over channel-wise mean and max maps."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


class CBAM(nn.Module):
    """Shape-preserving attention block: ``CBAM(C)(x).shape == x.shape`` for ``x`` ``[B, C, H, W]``.

    Args:
        in_channels: channels of the input map.
        reduction: channel-MLP reduction ratio.
        kernel_size: spatial-attention convolution size.
    """

    def __init__(self, in_channels: int, reduction: int = 16, kernel_size: int = 7) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.channel = ChannelAttention(in_channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))

"""DeepLabV3+ head: ASPP on the deepest map, fused with a low-level map, then a classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from visionforge.errors import ConfigError
from visionforge.models.layers.aspp import ASPP, conv_bn_relu

__all__ = ["DeepLabV3PlusDecoder"]


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+ decoder over a feature pyramid.

    ASPP runs on the last (deepest) map; the map ``low_level_index`` is reduced by a 1x1
    conv to ``low_level_channels`` (48), concatenated with the upsampled ASPP output
    (256 + 48 = 304 channels), refined by two 3x3 conv-BN-ReLU (dropout 0.5 then 0.1),
    classified by a 1x1 conv and bilinearly resized to the input size.

    Args:
        backbone_channels: encoder channels, high to low resolution.
        num_classes: output classes.
        low_level_index: which pyramid level gives the low-level features.
        aspp_channels: ASPP / decoder width.
        rates: ASPP atrous rates.
        low_level_channels: width of the reduced low-level features.
        drop_rates: (ASPP fusion, first refine conv, second refine conv) dropout rates.
    """

    def __init__(
        self,
        backbone_channels: Sequence[int],
        num_classes: int,
        low_level_index: int = 1,
        aspp_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        low_level_channels: int = 48,
        drop_rates: Sequence[float] = (0.5, 0.5, 0.1),
    ) -> None:
        super().__init__()
        chans = list(backbone_channels)
        if not -len(chans) <= low_level_index < len(chans):
            raise ConfigError(
                f"low_level_index {low_level_index} is outside the {len(chans)}-level pyramid"
            )
        self.low_level_index = low_level_index
        self.n_levels = len(chans)
        self.aspp = ASPP(chans[-1], aspp_channels, rates, drop_rate=drop_rates[0])
        self.low_level = conv_bn_relu(chans[low_level_index], low_level_channels, 1)
        self.refine = nn.Sequential(
            conv_bn_relu(aspp_channels + low_level_channels, aspp_channels, 3),
            nn.Dropout(drop_rates[1]),
            conv_bn_relu(aspp_channels, aspp_channels, 3),
            nn.Dropout(drop_rates[2]),
        )
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)

    def forward(
        self, features: Sequence[torch.Tensor], input_size: Sequence[int] | None = None
    ) -> torch.Tensor:
        if len(features) != self.n_levels:
            raise ValueError(f"expected {self.n_levels} feature maps, got {len(features)}")
        low = self.low_level(features[self.low_level_index])
        high = self.aspp(features[-1])
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine(torch.cat([high, low], dim=1))
        # Classify before upsampling: a 1x1 conv commutes with bilinear resizing, and
        # resizing num_classes channels instead of 256 saves memory.
        logits = self.classifier(x)
        if input_size is not None:
            logits = F.interpolate(
                logits, size=tuple(input_size), mode="bilinear", align_corners=False
            )
        return logits

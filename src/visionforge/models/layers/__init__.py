"""Reusable layers: CBAM attention and ASPP."""

from visionforge.models.layers.aspp import ASPP, conv_bn_relu
from visionforge.models.layers.cbam import CBAM, ChannelAttention, SpatialAttention

__all__ = ["ASPP", "CBAM", "ChannelAttention", "SpatialAttention", "conv_bn_relu"]

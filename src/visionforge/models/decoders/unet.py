"""``UNetDecoder``: a U-Net style decoder for any feature pyramid (CNN, ViT, hybrid)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from visionforge.errors import ConfigError
from visionforge.models.layers.aspp import conv_bn_relu

__all__ = ["UNetDecoder", "DecoderBlock"]

_DEFAULT_CHANNELS = (256, 128, 64, 32, 16, 16, 16, 16)


class DecoderBlock(nn.Module):
    """Resize to the skip feature, concatenate it, then two 3x3 conv-BN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_relu(in_channels + skip_channels, out_channels, 3),
            conv_bn_relu(out_channels, out_channels, 3),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            if x.shape[-2:] != skip.shape[-2:]:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = torch.cat([x, skip], dim=1)
        return self.convs(x)


class UNetDecoder(nn.Module):
    """Decode a feature pyramid into per-pixel logits.

    The deepest map goes through a centre block; each shallower map is then fused by a
    :class:`DecoderBlock` (maps are resized to the skip's size, so equal-size maps such as a
    ViT's intermediate layers work too); a 1x1 classifier follows and the logits are
    bilinearly resized to ``input_size``.

    Args:
        backbone_channels: channels of the encoder's maps, high to low resolution.
        output_channels: number of output classes.
        decoder_channels: channels of each block, deepest first (default 256, 128, 64, ...).
        drop_rate: dropout before the classifier.
        strides: the encoder's strides (e.g. ``[4, 8, 16, 32]``); when given, the decoder adds
            ``log2(strides[0])`` upsample-x2 + conv stages so that the classifier runs at full
            resolution instead of bilinearly stretching stride-``strides[0]`` logits.
        input_stride: stride of the finest map, used to return full input resolution when
            ``forward`` gets no ``input_size``: default ``strides[0]``, else the strides a
            ``backbone.get_channel_schedule()`` carries, else 4 (a CNN pyramid's first level).
            ``1`` returns the finest map's resolution.

    Example:
        >>> dec = UNetDecoder([64, 128], 3)
        >>> feats = [torch.zeros(1, 64, 16, 16), torch.zeros(1, 128, 8, 8)]
        >>> dec(feats, input_size=(64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """

    def __init__(
        self,
        backbone_channels: Sequence[int],
        output_channels: int,
        decoder_channels: Sequence[int] | None = None,
        drop_rate: float = 0.0,
        strides: Sequence[int] | None = None,
        input_stride: int | None = None,
    ) -> None:
        super().__init__()
        known = strides if strides is not None else getattr(backbone_channels, "strides", None)
        self.input_stride = int(input_stride or (known[0] if known else 4))
        chans = [int(c) for c in backbone_channels]
        if not chans:
            raise ConfigError("UNetDecoder needs at least one backbone channel count")
        n = len(chans)
        dec = (
            list(decoder_channels) if decoder_channels is not None else list(_DEFAULT_CHANNELS[:n])
        )
        if len(dec) != n:
            raise ConfigError(
                f"decoder_channels has {len(dec)} entries but the pyramid has {n} levels"
            )
        self.backbone_channels = chans
        self.center = DecoderBlock(chans[-1], 0, dec[0])
        skips = chans[-2::-1]  # shallower maps, deepest first
        self.blocks = nn.ModuleList(
            DecoderBlock(dec[i], skips[i], dec[i + 1]) for i in range(n - 1)
        )
        n_up = int(math.log2(strides[0])) if strides and strides[0] > 1 else 0
        self.upsample = nn.ModuleList(conv_bn_relu(dec[-1], dec[-1], 3) for _ in range(n_up))
        self.dropout = nn.Dropout2d(drop_rate) if drop_rate else nn.Identity()
        self.classifier = nn.Conv2d(dec[-1], output_channels, 1)
        self.out_channels = output_channels

    def forward(
        self,
        features: Sequence[torch.Tensor] | torch.Tensor,
        input_size: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """``features``: maps high to low resolution (or one map); returns ``[B, out, H, W]``
        at ``input_size``; when ``None``, at the input resolution: the finest map's size
        times ``input_stride``."""
        feats = [features] if isinstance(features, torch.Tensor) else list(features)
        if len(feats) != len(self.backbone_channels):
            raise ValueError(
                f"UNetDecoder expects {len(self.backbone_channels)} feature maps, got {len(feats)}"
            )
        x = self.center(feats[-1])
        for block, skip in zip(self.blocks, feats[-2::-1], strict=True):
            x = block(x, skip)
        for stage in self.upsample:
            x = stage(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        logits = self.classifier(self.dropout(x))
        if input_size is None:
            h, w = feats[0].shape[-2:]
            input_size = (h * self.input_stride, w * self.input_stride)
        if input_size is not None and tuple(logits.shape[-2:]) != tuple(input_size):
            logits = F.interpolate(
                logits, size=tuple(input_size), mode="bilinear", align_corners=False
            )
        return logits

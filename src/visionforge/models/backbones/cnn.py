"""``CNNBackbone``: a ResNet (from timm) returning its 4-level feature pyramid."""

from __future__ import annotations

import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.models.backbones._pretrained import (
    PretrainedArg,
    is_local_path,
    load_local_weights,
    timm_create,
)
from visionforge.models.factory import register_model

__all__ = ["CNNBackbone", "cnn_backbone", "RESNET_DEPTHS"]

RESNET_DEPTHS = (18, 34, 50, 101, 152)


class CNNBackbone(nn.Module):
    """ResNet-``depth`` encoder returning features at strides 4, 8, 16 and 32.

    The stem and the four stages are taken from timm's ResNet and kept under the same
    attribute names (``conv1``, ``bn1``, ``layer1`` ... ``layer4``), so a timm or torchvision
    ResNet state dict loads directly (its ``fc`` is reported as unexpected and ignored).

    Args:
        depth: 18, 34, 50, 101 or 152.
        pretrained: ``False``; ``True`` for timm's ImageNet weights (network needed);
            or a local ``.safetensors``/``.pth`` ResNet state dict.
        in_chans: number of input channels.
        weights_tag: timm pretrained tag used with ``pretrained=True`` (e.g. ``"tv_in1k"``).

    Example:
        >>> feats = CNNBackbone(18)(torch.zeros(1, 3, 64, 64))
        >>> [tuple(f.shape[1:]) for f in feats]
        [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    """

    def __init__(
        self,
        depth: int = 50,
        pretrained: PretrainedArg = False,
        in_chans: int = 3,
        weights_tag: str | None = None,
    ) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ConfigError(f"CNNBackbone depth must be one of {RESNET_DEPTHS}, got {depth!r}")
        arch = f"resnet{depth}" + (f".{weights_tag}" if weights_tag else "")
        resnet = timm_create(arch, pretrained=pretrained is True, in_chans=in_chans, num_classes=0)
        self.depth = depth
        self.conv1, self.bn1, self.act1, self.maxpool = (
            resnet.conv1,
            resnet.bn1,
            resnet.act1,
            resnet.maxpool,
        )
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        self.layer4 = resnet.layer4
        width = 4 if depth >= 50 else 1  # bottleneck expansion
        self.out_channels: list[int] = [64 * width, 128 * width, 256 * width, 512 * width]
        self.strides: list[int] = [4, 8, 16, 32]
        if is_local_path(pretrained):
            load_local_weights(self, pretrained)

    def get_channel_schedule(self) -> list[int]:
        """Channels of the four maps (a list carrying ``.strides``), e.g. for a decoder."""
        from visionforge.models.backbones.schedule import channel_schedule

        return channel_schedule(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]


@register_model(
    "cnn_backbone",
    aliases=("CNNBackbone",),
    task="backbone",
    family="cnn_backbone",
    test_kwargs={"depth": 18},
    test_input=(3, 32, 32),
    description="ResNet-18/34/50/101/152 feature pyramid (strides 4/8/16/32)",
)
def cnn_backbone(
    depth: int = 50, pretrained: PretrainedArg = False, in_chans: int = 3
) -> CNNBackbone:
    """Registered factory for :class:`CNNBackbone`."""
    return CNNBackbone(depth=depth, pretrained=pretrained, in_chans=in_chans)

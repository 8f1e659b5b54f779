"""``create_encoder``: any pyramid encoder by name (ResNet ``CNNBackbone``, ``vit``, timm)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from visionforge.errors import UnknownNameError
from visionforge.models.backbones._pretrained import (
    PretrainedArg,
    is_local_path,
    load_local_weights,
    timm_create,
)
from visionforge.models.backbones.cnn import RESNET_DEPTHS, CNNBackbone
from visionforge.models.backbones.vit import VisionTransformer

__all__ = ["TimmFeatures", "create_encoder"]


class TimmFeatures(nn.Module):
    """Any timm architecture as a pyramid encoder (timm's ``features_only`` mode).

    ``out_channels``/``strides`` come from timm's ``feature_info``.
    """

    def __init__(
        self,
        arch: str,
        pretrained: PretrainedArg = False,
        in_chans: int = 3,
        out_indices: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        extra = {"out_indices": tuple(out_indices)} if out_indices is not None else {}
        self.body = timm_create(
            arch,
            pretrained=pretrained is True,
            features_only=True,
            in_chans=in_chans,
            **extra,
            **kwargs,
        )
        self.out_channels: list[int] = list(self.body.feature_info.channels())
        self.strides: list[int] = list(self.body.feature_info.reduction())
        if is_local_path(pretrained):
            load_local_weights(self.body, pretrained)

    def get_channel_schedule(self) -> list[int]:
        """Channels of the output maps (a list carrying ``.strides``), e.g. for a decoder."""
        from visionforge.models.backbones.schedule import channel_schedule

        return channel_schedule(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


def create_encoder(
    name: str, pretrained: PretrainedArg = False, in_chans: int = 3, **kwargs: Any
) -> nn.Module:
    """Build a pyramid encoder: a module whose ``forward`` returns a list of feature maps
    (high to low resolution) and which exposes ``out_channels`` and ``strides``.

    Args:
        name: ``"resnet18"`` ... ``"resnet152"`` (:class:`CNNBackbone`), ``"vit"``
            (:class:`VisionTransformer`, geometry from ``kwargs``) or any timm architecture
            (e.g. ``"convnext_atto"``, via ``features_only``).
        pretrained: ``False``, ``True`` (network) or a local weights file for the encoder.
        in_chans: input channels.
        **kwargs: passed to the encoder's constructor.
    """
    key = name.lower()
    if key.startswith("resnet") and key[len("resnet") :].isdigit():
        depth = int(key[len("resnet") :])
        if depth in RESNET_DEPTHS:
            return CNNBackbone(depth, pretrained=pretrained, in_chans=in_chans, **kwargs)
    if key in ("vit", "vision_transformer"):
        # a pyramid encoder returns a list of maps: timm's features_only convention
        return VisionTransformer(
            in_chans=in_chans, pretrained=pretrained, **{**kwargs, "features_only": True}
        )
    import timm

    if not timm.is_model(name):
        close = timm.list_models(f"*{key[:6]}*")[:5]
        raise UnknownNameError(
            f"Unknown encoder {name!r}: use resnet18/34/50/101/152, 'vit', or a timm "
            f"architecture name (see timm.list_models()).{' Close: ' + ', '.join(close) if close else ''}"
        )
    return TimmFeatures(name, pretrained=pretrained, in_chans=in_chans, **kwargs)

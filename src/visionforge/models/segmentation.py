"""Segmentation models: encoder + decoder, returning logits ``[B, classes, H, W]`` at input size.

- :class:`DeepLabV3Plus`: the CODAvision DeepLabV3+ (ResNet-50, in-model BGR mean subtraction).
- :class:`DeepLabV3PlusNet`: DeepLabV3+ over any encoder (ResNet depths, ``vit`` or timm names).
- :class:`UNet`: any encoder + :class:`~visionforge.models.decoders.UNetDecoder`.

The classes themselves are registered (their constructors take JSON-friendly arguments).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from visionforge.models.backbones._pretrained import PretrainedArg
from visionforge.models.backbones.encoder import create_encoder
from visionforge.models.contract import RAW_255
from visionforge.models.decoders.deeplab import DeepLabV3PlusDecoder
from visionforge.models.decoders.unet import UNetDecoder
from visionforge.models.factory import register_model

__all__ = [
    "SegmentationModel",
    "DeepLabV3Plus",
    "DeepLabV3PlusNet",
    "UNet",
    "IMAGENET_MEAN_BGR",
]

IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


class SegmentationModel(nn.Module):
    """``backbone`` (pyramid encoder) followed by ``head`` (a decoder taking the maps and the
    input size). ``backbone``/``head`` let training freeze the encoder (head-then-finetune)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def decoder(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x), x.shape[-2:])


def _encoder(
    name: str, pretrained: PretrainedArg, in_chans: int, encoder_kwargs: dict[str, Any] | None
) -> nn.Module:
    return create_encoder(name, pretrained=pretrained, in_chans=in_chans, **(encoder_kwargs or {}))


@register_model(
    "deeplabv3plus_generic",
    aliases=("DeepLabV3PlusNet",),
    task="segmentation",
    family="deeplabv3plus",
    test_kwargs={"backbone": "resnet18", "num_classes": 2},
    test_input=(3, 64, 64),
    description="DeepLabV3+ over any encoder (resnet18..152, vit, timm names)",
)
class DeepLabV3PlusNet(SegmentationModel):
    """DeepLabV3+ over any pyramid encoder.

    Args:
        backbone: encoder name for :func:`~visionforge.models.backbones.create_encoder`
            (``resnet18`` ... ``resnet152``, ``vit``, or a timm architecture).
        num_classes: output classes.
        in_chans: input channels.
        pretrained: encoder weights: ``False``, ``True`` (network) or a local file.
        low_level_index: pyramid level used as low-level features (1 = stride 8 for ResNets).
        rates: ASPP atrous rates.
        encoder_kwargs: extra arguments for the encoder.
    """

    def __init__(
        self,
        backbone: str = "resnet50",
        num_classes: int = 2,
        in_chans: int = 3,
        pretrained: PretrainedArg = False,
        low_level_index: int = 1,
        rates: Sequence[int] = (6, 12, 18),
        encoder_kwargs: dict[str, Any] | None = None,
    ) -> None:
        encoder = _encoder(backbone, pretrained, in_chans, encoder_kwargs)
        if len(encoder.out_channels) <= low_level_index:
            low_level_index = 0  # single-scale encoders (ViT): fuse with the same map
        head = DeepLabV3PlusDecoder(
            encoder.out_channels, num_classes, low_level_index=low_level_index, rates=tuple(rates)
        )
        super().__init__(encoder, head)
        self.num_classes = num_classes


@register_model(
    "deeplabv3plus_codavision",
    aliases=("DeepLabV3_plus", "DeepLabV3Plus"),
    task="segmentation",
    family="deeplabv3plus",
    test_kwargs={"num_classes": 3},
    test_input=(3, 64, 64),
    description="CODAvision DeepLabV3+ (ResNet-50, RGB 0-255 input, BGR mean inside)",
    input_contract=RAW_255.with_size((3, 512, 512)),
)
class DeepLabV3Plus(DeepLabV3PlusNet):
    """DeepLabV3+ exactly as CODAvision builds it.

    ResNet-50 encoder; low-level features from ``layer2`` (512 channels); ASPP on ``layer4``
    (2048 channels) with a 1x1 branch, 3x3 atrous branches at rates 6/12/18 and a global
    pooling branch (256 channels each, BN + ReLU), fused by 1x1 conv to 256 + BN + ReLU +
    Dropout(0.5); decoder: 1x1 conv to 48 on the low-level map, concat (304) -> two 3x3 256
    convs (BN, ReLU, dropout 0.5 / 0.1) -> 1x1 classifier -> bilinear resize to the input.

    Input: RGB in [0, 255], NCHW. Preprocessing happens inside the model: RGB -> BGR and
    subtraction of the ImageNet BGR mean (the ``mean_bgr`` buffer, saved with the weights).
    Output: logits. With 5 classes it has 40,360,357 parameters.

    Args:
        num_classes: output classes.
        pretrained: ResNet-50 weights: ``False``, ``True`` (torchvision's ImageNet weights via
            timm, ``resnet50.tv_in1k``, as CODAvision uses) or a local ResNet-50 state dict.
        freeze_encoder: CODAvision trains this model with its ResNet-50 encoder frozen (its
            Keras model sets ``trainable=False``; its PyTorch trainer's ``freeze_encoder=True``),
            so that is the default: the encoder's parameters take no gradient (as its PyTorch
            trainer's ``_freeze_encoder`` does; BatchNorm statistics still follow ``train()``).
            ``False`` trains everything; ``model.backbone.requires_grad_(True)`` unfreezes later.
    """

    def __init__(self, num_classes: int = 5, pretrained: PretrainedArg = False,
                 freeze_encoder: bool = True) -> None:
        super().__init__(
            "resnet50",
            num_classes=num_classes,
            in_chans=3,
            pretrained=pretrained,
            low_level_index=1,
            encoder_kwargs={"weights_tag": "tv_in1k"} if pretrained is True else None,
        )
        self.register_buffer(
            "mean_bgr", torch.tensor(IMAGENET_MEAN_BGR, dtype=torch.float32).view(1, 3, 1, 1)
        )
        if freeze_encoder:
            self.backbone.requires_grad_(False)

    @property
    def encoder_frozen(self) -> bool:
        """True while no encoder parameter takes a gradient."""
        return not any(p.requires_grad for p in self.backbone.parameters())

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0, 255] -> BGR minus the ImageNet BGR mean (Caffe-style ResNet input)."""
        return torch.flip(x, dims=[1]) - self.mean_bgr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.preprocess(x))


@register_model(
    "unet",
    aliases=("UNet",),
    task="segmentation",
    family="unet",
    test_kwargs={"backbone": "resnet18", "num_classes": 2, "decoder_channels": [64, 32, 16, 16]},
    test_input=(3, 32, 32),
    overfit=True,
    description="U-Net over any encoder (resnet18..152, vit, timm names)",
)
class UNet(SegmentationModel):
    """U-Net: any pyramid encoder + :class:`~visionforge.models.decoders.UNetDecoder`.

    Args:
        backbone: ``resnet18`` ... ``resnet152``, ``vit`` (geometry in ``encoder_kwargs``)
            or any timm architecture name.
        num_classes: output classes.
        in_chans: input channels.
        pretrained: encoder weights: ``False``, ``True`` (network) or a local file.
        decoder_channels: decoder widths, deepest first.
        encoder_kwargs: extra arguments for the encoder.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        num_classes: int = 2,
        in_chans: int = 3,
        pretrained: PretrainedArg = False,
        decoder_channels: Sequence[int] | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
    ) -> None:
        encoder = _encoder(backbone, pretrained, in_chans, encoder_kwargs)
        head = UNetDecoder(
            encoder.out_channels,
            num_classes,
            decoder_channels=decoder_channels,
            strides=encoder.strides,
        )
        super().__init__(encoder, head)
        self.num_classes = num_classes

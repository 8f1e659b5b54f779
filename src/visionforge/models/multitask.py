"""``MultitaskModel``: one encoder, optional attention, a classification and/or segmentation head."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from visionforge.errors import ConfigError, UnknownNameError
from visionforge.models.backbones._pretrained import PretrainedArg
from visionforge.models.backbones.encoder import create_encoder
from visionforge.models.decoders.unet import UNetDecoder
from visionforge.models.factory import register_model
from visionforge.models.layers.cbam import CBAM

__all__ = ["MultitaskModel", "multitask", "ATTENTIONS"]

ATTENTIONS = {"cbam": CBAM}


class MultitaskModel(nn.Module):
    """Shared encoder with a classification head, a segmentation head, or both.

    Args:
        backbone: module returning a list of maps (high to low resolution) or a single map,
            with an ``out_channels`` attribute (list or int) -- e.g. ``CNNBackbone``,
            ``VisionTransformer``, ``ViTSpatial``.
        attention: optional shape-preserving module applied to the deepest map (e.g. ``CBAM``).
        decoder: optional segmentation decoder called as ``decoder(maps, input_size)``;
            default :class:`UNetDecoder` when ``num_classes_segmentation`` is set.
        num_classes_classification: classes of the image-level head (``None``: no head).
        num_classes_segmentation: classes of the pixel-level head (``None``: no head).
        drop_rate: dropout before the classification layer.

    Returns (forward): classification logits ``[B, C]``, segmentation logits ``[B, S, H, W]``,
    or ``{"classification": ..., "segmentation": ...}`` when both heads exist.
    """

    def __init__(
        self,
        backbone: nn.Module,
        attention: nn.Module | None = None,
        decoder: nn.Module | None = None,
        num_classes_classification: int | None = None,
        num_classes_segmentation: int | None = None,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if (
            num_classes_classification is None
            and num_classes_segmentation is None
            and decoder is None
        ):
            raise ConfigError(
                "MultitaskModel needs num_classes_classification and/or num_classes_segmentation"
            )
        channels = getattr(backbone, "out_channels", None)
        if channels is None:
            raise ConfigError(
                f"backbone {type(backbone).__name__} has no 'out_channels' attribute; use an "
                "encoder from visionforge.models.backbones (e.g. CNNBackbone(18))"
            )
        self.backbone_channels = [channels] if isinstance(channels, int) else list(channels)
        self.backbone = backbone
        self.attention = attention if attention is not None else nn.Identity()
        heads: dict[str, nn.Module] = {}
        if num_classes_classification is not None:
            heads["classification"] = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(1),
                nn.Dropout(drop_rate),
                nn.Linear(self.backbone_channels[-1], num_classes_classification),
            )
        if decoder is None and num_classes_segmentation is not None:
            strides = getattr(backbone, "strides", None)
            decoder = UNetDecoder(self.backbone_channels, num_classes_segmentation, strides=strides)
        if decoder is not None:
            heads["segmentation"] = decoder
        # All task heads live in one ModuleDict so that freezing ``backbone`` and training
        # ``head`` is the head-then-finetune recipe; each module is registered once.
        self.head = nn.ModuleDict(heads)
        self.num_classes_classification = num_classes_classification
        self.num_classes_segmentation = num_classes_segmentation

    @property
    def classifier(self) -> nn.Module | None:
        """The classification head (``None`` without one)."""
        return self.head["classification"] if "classification" in self.head else None

    @property
    def decoder(self) -> nn.Module | None:
        """The segmentation decoder (``None`` without one)."""
        return self.head["segmentation"] if "segmentation" in self.head else None

    def heads_for(self, batch: Mapping[str, Any]) -> list[str]:
        """The heads a batch dict asks for: ``label`` -> classification, ``mask`` ->
        segmentation, both -> both; no target key (or a head this model lacks) -> all heads."""
        wanted = [head for key, head in (("label", "classification"), ("mask", "segmentation"))
                  if batch.get(key) is not None and head in self.head]
        return wanted or list(self.head)

    def forward(
        self, x: torch.Tensor | Mapping[str, Any]
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """``x``: images ``[B, C, H, W]`` (every head runs) or a batch dict with ``image``
        whose ``label``/``mask`` keys choose the heads (see :meth:`heads_for`). One head gives
        its tensor, several a ``{"classification": ..., "segmentation": ...}`` dict."""
        if isinstance(x, Mapping):
            if "image" not in x:
                raise ConfigError(f"MultitaskModel batch dict needs an 'image' key; got {sorted(x)}")
            heads, x = self.heads_for(x), x["image"]
        else:
            heads = list(self.head)
        feats = self.backbone(x)
        feats = [feats] if isinstance(feats, torch.Tensor) else list(feats)
        feats[-1] = self.attention(feats[-1])
        out: dict[str, torch.Tensor] = {}
        if "classification" in heads:
            out["classification"] = self.head["classification"](feats[-1])
        if "segmentation" in heads:
            seg = self.head["segmentation"](feats, x.shape[-2:])
            if seg.shape[-2:] != x.shape[-2:]:
                seg = F.interpolate(seg, size=x.shape[-2:], mode="bilinear", align_corners=False)
            out["segmentation"] = seg
        return out if len(out) > 1 else next(iter(out.values()))


@register_model(
    "multitask",
    aliases=("MultitaskModel",),
    task="multitask",
    family="multitask",
    test_kwargs={
        "backbone": "resnet18",
        "num_classes_classification": 3,
        "num_classes_segmentation": 2,
        "attention": "cbam",
        "decoder_channels": [64, 32, 16, 16],
    },
    test_input=(3, 32, 32),
    overfit=True,
    description="shared encoder (+CBAM) with classification and segmentation heads",
)
def multitask(
    backbone: str = "resnet18",
    num_classes_classification: int | None = None,
    num_classes_segmentation: int | None = None,
    attention: str | None = None,
    in_chans: int = 3,
    pretrained: PretrainedArg = False,
    decoder_channels: Sequence[int] | None = None,
    drop_rate: float = 0.0,
    encoder_kwargs: dict[str, Any] | None = None,
) -> MultitaskModel:
    """Registered factory: :class:`MultitaskModel` from JSON-friendly arguments.

    ``backbone`` is an encoder name (see :func:`~visionforge.models.backbones.create_encoder`);
    ``attention`` is ``None`` or ``"cbam"``.
    """
    encoder = create_encoder(
        backbone, pretrained=pretrained, in_chans=in_chans, **(encoder_kwargs or {})
    )
    attn = None
    if attention is not None:
        if attention.lower() not in ATTENTIONS:
            raise UnknownNameError(
                f"Unknown attention {attention!r}; choose one of {sorted(ATTENTIONS)} or None"
            )
        attn = ATTENTIONS[attention.lower()](encoder.out_channels[-1])
    decoder = None
    if num_classes_segmentation is not None:
        decoder = UNetDecoder(
            encoder.out_channels,
            num_classes_segmentation,
            decoder_channels=decoder_channels,
            strides=encoder.strides,
        )
    return MultitaskModel(
        encoder,
        attention=attn,
        decoder=decoder,
        num_classes_classification=num_classes_classification,
        num_classes_segmentation=num_classes_segmentation,
        drop_rate=drop_rate,
    )

"""Vision Transformers (timm's ``VisionTransformer``) returning spatial feature maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from timm.models.vision_transformer import VisionTransformer as _TimmViT

from visionforge.errors import ConfigError, WeightsError
from visionforge.models.backbones._pretrained import (
    PretrainedArg,
    is_local_path,
    load_local_weights,
    timm_create,
)
from visionforge.models.factory import register_model

__all__ = ["VisionTransformer", "ViTSpatial", "vit_backbone", "vit_spatial"]

# (patch_size, hidden_dim, num_layers, num_heads, mlp_dim) -> timm architecture with weights.
_PUBLISHED = {
    (16, 192, 12, 3, 768): "vit_tiny_patch16_224",
    (16, 384, 12, 6, 1536): "vit_small_patch16_224",
    (16, 768, 12, 12, 3072): "vit_base_patch16_224",
    (32, 768, 12, 12, 3072): "vit_base_patch32_224",
    (16, 1024, 24, 16, 4096): "vit_large_patch16_224",
}


class VisionTransformer(_TimmViT):
    """A ViT encoder returning its tokens as a spatial map ``[B, hidden_dim, H/patch, W/patch]``.

    It *is* timm's ``VisionTransformer`` (same parameter names, so timm checkpoints load),
    built with ``dynamic_img_size=True``: inputs of other sizes (multiples of ``patch_size``)
    work by interpolating the position embeddings. ``forward`` returns one tensor, the map
    of block ``out_indices[-1]`` (default: the last block). With ``features_only=True``
    (timm's convention) it returns a list with one map per entry of ``out_indices``, so it
    can serve as a (single-scale) pyramid encoder; ``out_channels`` and ``strides``
    describe what ``forward`` returns.

    Args:
        img_size: nominal input size (position embeddings are learnt for it).
        patch_size, num_layers, hidden_dim, num_heads, mlp_dim: the transformer geometry.
        in_chans: input channels.
        out_indices: blocks whose tokens are returned as maps (negative counts from the end);
            several only with ``features_only=True``.
        features_only: return a list of maps (one per ``out_indices`` entry).
        pretrained: ``False``; ``True`` for timm's weights when the geometry matches a published
            ViT (Ti/S/B/L with patch 16, B/32); or a local timm-format state dict.
        drop_path_rate: stochastic depth.

    Example:
        >>> vit = VisionTransformer(32, 8, 2, 32, 2, 64)
        >>> tuple(vit(torch.zeros(1, 3, 48, 48)).shape)
        (1, 32, 6, 6)
        >>> pyramid = VisionTransformer(32, 8, 2, 32, 2, 64, (0, 1), features_only=True)
        >>> [tuple(f.shape) for f in pyramid(torch.zeros(1, 3, 48, 48))]
        [(1, 32, 6, 6), (1, 32, 6, 6)]
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        num_layers: int = 12,
        hidden_dim: int = 768,
        num_heads: int = 12,
        mlp_dim: int = 3072,
        in_chans: int = 3,
        out_indices: Sequence[int] = (-1,),
        features_only: bool = False,
        pretrained: PretrainedArg = False,
        drop_path_rate: float = 0.0,
    ) -> None:
        if hidden_dim % num_heads:
            raise ConfigError(
                f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads})"
            )
        indices = [i if i >= 0 else num_layers + i for i in out_indices]
        if not indices or any(not 0 <= i < num_layers for i in indices):
            raise ConfigError(
                f"out_indices {tuple(out_indices)} must name blocks of a {num_layers}-layer ViT"
            )
        if len(indices) > 1 and not features_only:
            raise ConfigError(
                f"out_indices {tuple(out_indices)} names several blocks but forward returns one "
                "map; pass features_only=True for a list of maps"
            )
        super().__init__(
            img_size=img_size,
            patch_size=patch_size,
            in_chans=in_chans,
            num_classes=0,
            embed_dim=hidden_dim,
            depth=num_layers,
            num_heads=num_heads,
            mlp_ratio=mlp_dim / hidden_dim,
            dynamic_img_size=True,
            drop_path_rate=drop_path_rate,
        )
        self.out_indices = indices
        self.features_only = bool(features_only)
        self.out_channels: list[int] = [hidden_dim] * len(indices)
        self.strides: list[int] = [patch_size] * len(indices)
        if pretrained is True:
            self._load_published(
                img_size, patch_size, num_layers, hidden_dim, num_heads, mlp_dim, in_chans
            )
        elif is_local_path(pretrained):
            load_local_weights(self, pretrained)

    def _load_published(
        self, img_size, patch_size, num_layers, hidden_dim, num_heads, mlp_dim, in_chans
    ):
        arch = _PUBLISHED.get((patch_size, hidden_dim, num_layers, num_heads, mlp_dim))
        if arch is None:
            raise WeightsError(
                f"No published weights for a ViT with patch_size={patch_size}, "
                f"hidden_dim={hidden_dim}, num_layers={num_layers}, num_heads={num_heads}, "
                f"mlp_dim={mlp_dim}; use one of the geometries {sorted(_PUBLISHED.values())} "
                "or pass a local file: pretrained='/path/to/weights.safetensors'"
            )
        # timm's loader resizes position embeddings and adapts the patch embedding to in_chans.
        source = timm_create(
            arch, pretrained=True, img_size=img_size, in_chans=in_chans, num_classes=0
        )
        self.load_state_dict(source.state_dict(), strict=False)

    def get_channel_schedule(self) -> list[int]:
        """Channels of the output maps (a list carrying ``.strides``), e.g. for a decoder."""
        from visionforge.models.backbones.schedule import channel_schedule

        return channel_schedule(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:  # type: ignore[override]
        maps = self.forward_intermediates(
            x, indices=self.out_indices, norm=True, output_fmt="NCHW", intermediates_only=True
        )
        return list(maps) if self.features_only else maps[-1]


class ViTSpatial(VisionTransformer):
    """The seed's name for a ViT-B/16 (by default) returning one spatial map:
    ``[B, 768, 14, 14]`` at 224. Same arguments as :class:`VisionTransformer`."""


_TINY_VIT = {
    "img_size": 32,
    "patch_size": 8,
    "num_layers": 2,
    "hidden_dim": 32,
    "num_heads": 2,
    "mlp_dim": 64,
}


@register_model(
    "vit_backbone",
    aliases=("VisionTransformer",),
    task="backbone",
    family="vit_backbone",
    test_kwargs={**_TINY_VIT, "out_indices": [0, 1], "features_only": True},
    test_input=(3, 32, 32),
    description="ViT encoder returning a [B, hidden, H/patch, W/patch] map (or one per block)",
)
def vit_backbone(
    img_size: int = 224,
    patch_size: int = 16,
    num_layers: int = 12,
    hidden_dim: int = 768,
    num_heads: int = 12,
    mlp_dim: int = 3072,
    in_chans: int = 3,
    out_indices: Sequence[int] = (-1,),
    features_only: bool = False,
    pretrained: PretrainedArg = False,
) -> VisionTransformer:
    """Registered factory for :class:`VisionTransformer`."""
    return VisionTransformer(
        img_size,
        patch_size,
        num_layers,
        hidden_dim,
        num_heads,
        mlp_dim,
        in_chans,
        out_indices=tuple(out_indices),
        features_only=features_only,
        pretrained=pretrained,
    )


@register_model(
    "vit_spatial",
    aliases=("ViTSpatial",),
    task="backbone",
    family="vit_backbone",
    test_kwargs=_TINY_VIT,
    test_input=(3, 32, 32),
    description="ViT-B/16 spatial features [B, 768, 14, 14] at 224x224",
)
def vit_spatial(**kwargs: Any) -> ViTSpatial:
    """Registered factory for :class:`ViTSpatial`: the arguments of :func:`vit_backbone`."""
    return ViTSpatial(**kwargs)

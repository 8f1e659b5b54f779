"""``BackboneHeadClassifier``: a feature extractor and a separate classifier head.

Every classification family returns this module so that training can freeze
``model.backbone`` and train ``model.head`` (head-then-finetune) the same way
for all of them. The backbone is any module with timm's interface
(``forward_features`` and ``forward_head(x, pre_logits=True)``) whose own
classifier was removed (``num_classes=0``); everything that is not the final
classifier (pooling, head norms, pre-logits MLPs) therefore stays in the backbone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from visionforge.errors import ConfigError, WeightsError

__all__ = [
    "BackboneHeadClassifier",
    "build_classifier",
    "build_timm_backbone",
    "check_size",
    "no_pretrained",
]


class BackboneHeadClassifier(nn.Module):
    """``logits = head(backbone.forward_head(backbone.forward_features(x), pre_logits=True))``.

    Args:
        backbone: a timm-style model built with ``num_classes=0``.
        num_classes: number of output logits (0 returns the pooled features).
        drop_rate: dropout before the classifier.
        head: a custom head taking the pre-logits features (default ``Linear``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        drop_rate: float = 0.0,
        head: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if num_classes < 0:
            raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.num_features = int(
            getattr(backbone, "head_hidden_size", None) or backbone.num_features
        )
        self.drop_rate = float(drop_rate)
        self.head = head if head is not None else self._make_head(self.num_classes)

    def _make_head(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        return nn.Sequential(nn.Dropout(self.drop_rate), nn.Linear(self.num_features, num_classes))

    # -- timm's interface ---------------------------------------------------
    #: input side length the backbone was built for (transformer families), else ``None``
    img_size: int | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Unpooled backbone features (feature map or token sequence)."""
        try:
            return self.backbone.forward_features(x)
        except (AssertionError, RuntimeError) as exc:
            built, got = self.img_size, tuple(int(v) for v in x.shape[-2:])
            if built is None or got == (built, built):
                raise
            # timm's own message names windows or grids, not the build argument to change
            raise RuntimeError(
                f"{type(self.backbone).__name__} was built for {built}x{built} inputs "
                f"(img_size={built}) but got {got[0]}x{got[1]}; its attention windows / position "
                f"embeddings are fixed at build time: build it with img_size={got[0]} "
                f"(or resize the inputs to {built} px). Detail: {exc}"
            ) from exc

    def pre_logits(self, features: torch.Tensor) -> torch.Tensor:
        """What the head consumes, computed from :meth:`forward_features` output."""
        return self.backbone.forward_head(features, pre_logits=True)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool ``features`` and (unless ``pre_logits``) apply the classifier."""
        x = self.pre_logits(features)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised one with ``num_classes`` outputs."""
        self.num_classes = int(num_classes)
        self.head = self._make_head(self.num_classes)


def check_size(family: str, size: str, sizes: Mapping[str, Any]) -> None:
    """Raise a clear :class:`ConfigError` when ``size`` is not one of ``sizes``."""
    if size not in sizes:
        raise ConfigError(
            f"{family}: unknown size {size!r}; choose one of {', '.join(map(repr, sizes))}"
        )


def no_pretrained(family: str, size: str, pretrained: bool) -> None:
    """Reject ``pretrained=True`` for size variants that have no published weights."""
    if pretrained:
        raise WeightsError(
            f"{family} size={size!r} is a reduced architecture without published weights; "
            f"use a larger size (e.g. size='base') for pretrained=True, or pass a local file: "
            f"create_model({family!r}, size={size!r}, pretrained='/path/to/weights.safetensors')"
        )


def build_timm_backbone(
    family: str,
    size: str,
    sizes: Mapping[str, str | tuple[str, dict[str, Any]] | Callable[..., nn.Module]],
    *,
    pretrained: bool,
    in_chans: int,
    **kwargs: Any,
) -> nn.Module:
    """Build the backbone of one size variant without its classifier.

    ``sizes`` maps a size to a timm model name, or ``(name, extra_kwargs)``
    (built with ``timm.create_model``; ``pretrained`` fetches timm's weights), or
    to a callable building a reduced architecture from timm's model classes
    (no published weights).
    """
    from visionforge.models.backbones._pretrained import timm_create

    check_size(family, size, sizes)
    spec = sizes[size]
    if callable(spec):
        no_pretrained(family, size, pretrained)
        return spec(in_chans=in_chans, **kwargs)
    name, extra = (spec, {}) if isinstance(spec, str) else spec
    return timm_create(
        name, pretrained=bool(pretrained), num_classes=0, in_chans=in_chans, **{**extra, **kwargs}
    )


def build_classifier(
    family: str,
    sizes: Mapping[str, str | tuple[str, dict[str, Any]] | Callable[..., nn.Module]],
    num_classes: int,
    in_chans: int,
    img_size: int | None,
    size: str,
    pretrained: bool,
    drop_rate: float,
    *,
    default_img_size: Mapping[str, int] | None = None,
    head_cls: type[BackboneHeadClassifier] = BackboneHeadClassifier,
    **kwargs: Any,
) -> BackboneHeadClassifier:
    """The body every family factory shares: a size variant's backbone plus a head.

    Args:
        family: registry name, used in error messages.
        sizes: see :func:`build_timm_backbone`.
        num_classes, in_chans, size, pretrained, drop_rate: the factory's arguments.
        img_size: the factory's ``img_size``; CNN families (``default_img_size=None``)
            ignore it (any input size works), transformer families pass it to the
            backbone (position embeddings / attention windows are sized from it),
            defaulting to ``default_img_size[size]`` (224, the pipeline's standard size,
            for every published size); it is kept as ``model.img_size``.
        head_cls: the classifier wrapper (e.g. DeiT's two-token head).
        **kwargs: extra backbone arguments.
    """
    if default_img_size is not None:
        kwargs["img_size"] = img_size or default_img_size.get(size, 224)
    backbone = build_timm_backbone(
        family, size, sizes, pretrained=pretrained, in_chans=in_chans, **kwargs
    )
    model = head_cls(backbone, num_classes, drop_rate=drop_rate)
    model.img_size = kwargs.get("img_size")
    return model

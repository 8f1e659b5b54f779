"""Inception-v4 family: alias ``CustomInceptionV4``.

Size ``base`` is timm's ``inception_v4`` (exact architecture, ImageNet weights,
needs inputs >= 75 px). timm hard-codes that model's channel widths and its
valid-padding 299-px stem, so the ``tiny``/``small`` variants are written here:
the same block structure (stem, Inception-A, Reduction-A, Inception-B with
factorised 1x7/7x1 convs, Reduction-B, Inception-C with split 1x3/3x1 convs)
with a width parameter and 'same' padding, so 32-px inputs work.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from visionforge.models.classification.base import BackboneHeadClassifier, build_classifier
from visionforge.models.factory import register_model


def _conv(cin: int, cout: int, k: int | tuple[int, int], stride: int = 1) -> nn.Sequential:
    ks = (k, k) if isinstance(k, int) else k
    pad = (ks[0] // 2, ks[1] // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, ks, stride=stride, padding=pad, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Concat(nn.Module):
    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class _Split(nn.Module):
    """1x3 and 3x1 convolutions applied side by side (Inception-C)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.a = _conv(cin, cout, (1, 3))
        self.b = _conv(cin, cout, (3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], dim=1)


def _inception_a(cin: int, b: int) -> nn.Module:
    return _Concat(
        _conv(cin, b, 1),
        nn.Sequential(_conv(cin, b, 1), _conv(b, b, 3)),
        nn.Sequential(_conv(cin, b, 1), _conv(b, b, 3), _conv(b, b, 3)),
        nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _conv(cin, b, 1)),
    )  # -> 4b


def _reduction_a(cin: int, b: int) -> nn.Module:
    return _Concat(
        _conv(cin, b, 3, stride=2),
        nn.Sequential(_conv(cin, b, 1), _conv(b, b, 3), _conv(b, b, 3, stride=2)),
        nn.MaxPool2d(3, 2, 1),
    )  # -> cin + 2b


def _inception_b(cin: int, b: int) -> nn.Module:
    return _Concat(
        _conv(cin, b, 1),
        nn.Sequential(_conv(cin, b, 1), _conv(b, b, (1, 7)), _conv(b, b, (7, 1))),
        nn.Sequential(
            _conv(cin, b, 1),
            _conv(b, b, (7, 1)),
            _conv(b, b, (1, 7)),
            _conv(b, b, (7, 1)),
            _conv(b, b, (1, 7)),
        ),
        nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _conv(cin, b, 1)),
    )  # -> 4b


def _reduction_b(cin: int, b: int) -> nn.Module:
    return _Concat(
        nn.Sequential(_conv(cin, b, 1), _conv(b, b, 3, stride=2)),
        nn.Sequential(
            _conv(cin, b, 1), _conv(b, b, (1, 7)), _conv(b, b, (7, 1)), _conv(b, b, 3, stride=2)
        ),
        nn.MaxPool2d(3, 2, 1),
    )  # -> cin + 2b


def _inception_c(cin: int, b: int) -> nn.Module:
    return _Concat(
        _conv(cin, b, 1),
        nn.Sequential(_conv(cin, b, 1), _Split(b, b // 2)),
        nn.Sequential(
            _conv(cin, b, 1), _conv(b, b, (3, 1)), _conv(b, b, (1, 3)), _Split(b, b // 2)
        ),
        nn.Sequential(nn.AvgPool2d(3, 1, 1, count_include_pad=False), _conv(cin, b, 1)),
    )  # -> 4b


class InceptionV4Scaled(nn.Module):
    """Inception-v4 block structure at width ``width`` (branch channels), output stride 16."""

    def __init__(self, in_chans: int = 3, width: int = 8, depths: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        w = width
        layers: list[nn.Module] = [_conv(in_chans, 2 * w, 3), _conv(2 * w, 4 * w, 3, stride=2)]
        c = 4 * w
        for _ in range(depths[0]):
            layers.append(_inception_a(c, w))
            c = 4 * w
        layers.append(_reduction_a(c, 2 * w))
        c += 4 * w
        for _ in range(depths[1]):
            layers.append(_inception_b(c, 2 * w))
            c = 8 * w
        layers.append(_reduction_b(c, 2 * w))
        c += 4 * w
        for _ in range(depths[2]):
            layers.append(_inception_c(c, 4 * w))
            c = 16 * w
        self.features = nn.Sequential(*layers)
        self.num_features = c
        # where the auxiliary classifier taps the features: the input of Reduction-B
        self.aux_index = 2 + depths[0] + 1 + depths[1]
        self.aux_channels = 8 * w

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(dim=(2, 3))  # global average pooling; the classifier is separate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x), pre_logits=True)


class AuxLogits(NamedTuple):
    """Training-mode output of :class:`InceptionAuxClassifier` (like torchvision's
    ``InceptionOutputs``); the training loss adds ``0.4 *`` the auxiliary head's loss."""

    logits: torch.Tensor
    aux_logits: torch.Tensor


def _aux_tap(backbone: nn.Module) -> tuple[int, int]:
    """``(index in backbone.features, channels)`` where the auxiliary head taps the features:
    the input of Reduction-B (the 17x17 stage of a 299-px Inception-v4, as in Inception-v3)."""
    if hasattr(backbone, "aux_index"):
        return int(backbone.aux_index), int(backbone.aux_channels)
    for i, block in enumerate(backbone.features):  # timm's inception_v4 (size "base")
        if type(block).__name__ == "ReductionB":
            return i, 1024  # Inception-B blocks output 1024 channels in Inception-v4
    raise TypeError(f"{type(backbone).__name__}: no Reduction-B block to tap for aux_logits")


class InceptionAuxClassifier(BackboneHeadClassifier):
    """Inception-v4 with an auxiliary classifier on the Inception-B features.

    In training mode ``forward`` returns :class:`AuxLogits` (main and auxiliary logits) and
    the training loss is ``loss(logits) + 0.4 * loss(aux_logits)``; in eval mode (evaluation,
    export) it returns the main logits only. The auxiliary head (1x1 conv, BN, ReLU, global
    pool, linear) is a lighter form of Inception-v3's (pool 5x5/3, 1x1, 5x5 conv, linear)
    that works at any input size.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        self.aux_index, self.aux_channels = _aux_tap(backbone)
        self.aux_head = self._make_aux(self.num_classes)

    def _make_aux(self, num_classes: int) -> nn.Module:
        if num_classes == 0:
            return nn.Identity()
        hidden = max(self.aux_channels // 4, 16)
        return nn.Sequential(
            nn.Conv2d(self.aux_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Dropout(self.drop_rate), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor | AuxLogits:  # type: ignore[override]
        features = self.backbone.features
        mid = features[: self.aux_index](x)
        logits = self.forward_head(features[self.aux_index :](mid))
        if self.training and self.num_classes:
            return AuxLogits(logits, self.aux_head(mid))
        return logits

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        self.aux_head = self._make_aux(self.num_classes)


def _scaled(width: int, depths: tuple[int, int, int]):
    def build(in_chans: int, **kwargs: Any) -> nn.Module:
        return InceptionV4Scaled(in_chans=in_chans, width=width, depths=depths, **kwargs)

    return build


SIZES = {"tiny": _scaled(8, (1, 1, 1)), "small": _scaled(24, (2, 3, 2)), "base": "inception_v4"}


@register_model(
    "custom_inception_v4",
    aliases=("CustomInceptionV4",),
    task="classification",
    family="inception_v4",
    test_kwargs={"size": "tiny", "num_classes": 3},
    test_input=(3, 32, 32),
    overfit=True,
    description="Inception-v4; tiny/small scaled replicas, base = timm inception_v4",
    lr_multiplier=1.0,
    scheduler="onecycle",
    kind="cnn",
)
def custom_inception_v4(
    num_classes: int = 1000, in_chans: int = 3, img_size: int | None = None,
    size: str = "small", pretrained: bool = False, drop_rate: float = 0.0,
    aux_logits: bool = False, **kwargs: Any,
) -> BackboneHeadClassifier:
    """Inception-v4 classifier; ``img_size`` is accepted for a uniform signature (CNN).

    ``aux_logits=True`` adds the auxiliary classifier (:class:`InceptionAuxClassifier`):
    training then adds ``0.4 *`` its loss, as the disease pipeline does.
    """
    return build_classifier(
        "custom_inception_v4",
        SIZES,
        num_classes, in_chans, img_size, size, pretrained, drop_rate,
        head_cls=InceptionAuxClassifier if aux_logits else BackboneHeadClassifier,
        **kwargs,
    )

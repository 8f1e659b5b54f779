"""1-D signal classifiers: ``DeepEpiCnn`` (nnTraining2) and a multichannel ``ResNet1D``.

Both take ``[B, channels, length]`` (also ``[B, length, channels]``, and ``[B, length]`` for
one channel) and return logits ``[B, num_classes]``; each exposes ``backbone`` (features) and
``head`` (classifier) so training can freeze the feature extractor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from visionforge.errors import ConfigError, DataError
from visionforge.models.factory import register_model

__all__ = ["DeepEpiCnn", "ResNet1D", "as_channels_first", "deepepicnn", "resnet1d"]


def as_channels_first(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Return ``x`` as ``[B, in_chans, L]`` from ``[B, L]`` (one channel), ``[B, C, L]`` or
    ``[B, L, C]``."""
    if x.ndim == 2:
        if in_chans != 1:
            raise DataError(
                f"got a [B, L] signal of shape {tuple(x.shape)} but the model expects "
                f"{in_chans} channels; pass [B, {in_chans}, L]"
            )
        return x.unsqueeze(1)
    if x.ndim == 3:
        if x.shape[1] == in_chans:
            return x
        if x.shape[2] == in_chans:
            return x.transpose(1, 2)
    raise DataError(
        f"signal batch of shape {tuple(x.shape)} does not match the model: expected "
        f"[B, {in_chans}, L] or [B, L, {in_chans}]" + (" or [B, L]" if in_chans == 1 else "")
    )


def _conv_bn_relu_1d(cin: int, cout: int, stride: int, drop_rate: float) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv1d(cin, cout, kernel_size=5, stride=stride, padding=0, bias=True),
        nn.BatchNorm1d(cout),
        nn.ReLU(inplace=True),
    ]
    if drop_rate:
        layers.append(nn.Dropout(drop_rate))
    return nn.Sequential(*layers)


def _linear_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.ReLU(inplace=True)]


class DeepEpiCnn(nn.Module):
    """The nnTraining2 seizure-detection CNN for 750-sample accelerometer windows.

    14 Conv1d layers (kernel 5, no padding, bias), filters ``[16, 32 x 11, 64, 64]``, stride 2
    at layers 5, 10 and 14 (1-based), each Conv -> BatchNorm -> ReLU (+ optional dropout);
    global average pooling; head Linear 64->64, BN, ReLU, Dropout; 64->64, BN, ReLU;
    64->32, BN, ReLU; 32->16, BN, ReLU; 16->num_classes. 97,362 parameters with 2 classes.

    Args:
        num_classes: output classes.
        in_chans: input channels (1 in the original).
        drop_rate: dropout after the first head layer (0.025 in the original).
        conv_drop_rate: optional dropout after every conv block.
    """

    FILTERS = (16,) + (32,) * 11 + (64, 64)
    STRIDE2_LAYERS = (5, 10, 14)

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 1,
        drop_rate: float = 0.025,
        conv_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_chans = in_chans
        blocks, cin = [], in_chans
        for i, cout in enumerate(self.FILTERS, start=1):
            stride = 2 if i in self.STRIDE2_LAYERS else 1
            blocks.append(_conv_bn_relu_1d(cin, cout, stride, conv_drop_rate))
            cin = cout
        self.backbone = nn.Sequential(*blocks, nn.AdaptiveAvgPool1d(1), nn.Flatten(1))
        self.head = nn.Sequential(
            *_linear_bn_relu(64, 64),
            nn.Dropout(drop_rate),
            *_linear_bn_relu(64, 64),
            *_linear_bn_relu(64, 32),
            *_linear_bn_relu(32, 16),
            nn.Linear(16, num_classes),
        )
        self.min_length = self._min_length()

    def _min_length(self) -> int:
        # Smallest input giving at least one output sample after the 14 unpadded convs.
        length = 1
        for i in range(len(self.FILTERS), 0, -1):
            stride = 2 if i in self.STRIDE2_LAYERS else 1
            length = (length - 1) * stride + 5
        return length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = as_channels_first(x, self.in_chans)
        if x.shape[-1] < self.min_length:
            raise DataError(
                f"DeepEpiCnn needs windows of at least {self.min_length} samples, "
                f"got {x.shape[-1]} (the original uses 750)"
            )
        return self.head(self.backbone(x))


class _ResBlock1d(nn.Module):
    """Three convolutions (kernels 8/5/3, 'same' padding) with a shortcut."""

    def __init__(self, cin: int, cout: int, kernels: Sequence[int] = (8, 5, 3)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cin
        for j, k in enumerate(kernels):
            layers += [
                # explicit 'same' padding: PyTorch's padding="same" copies the input for even k
                nn.ConstantPad1d(((k - 1) // 2, k // 2), 0.0),
                nn.Conv1d(c, cout, k, bias=False),
                nn.BatchNorm1d(cout),
            ]
            if j < len(kernels) - 1:
                layers.append(nn.ReLU(inplace=True))
            c = cout
        self.body = nn.Sequential(*layers)
        self.shortcut = (
            nn.Identity()
            if cin == cout
            else nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet1D(nn.Module):
    """ResNet for time-series classification (Wang et al., 2017) for any channels and length.

    Residual blocks of three convolutions (kernels 8, 5, 3, 'same' padding), global average
    pooling, linear classifier.

    Args:
        in_chans: signal channels (e.g. 6 for accelerometer + gyroscope).
        num_classes: output classes.
        filters: width of each residual block.
        drop_rate: dropout before the classifier.
    """

    def __init__(
        self,
        in_chans: int = 1,
        num_classes: int = 2,
        filters: Sequence[int] = (64, 128, 128),
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not filters:
            raise ConfigError("ResNet1D needs at least one block width in 'filters'")
        self.in_chans = in_chans
        blocks, cin = [], in_chans
        for cout in filters:
            blocks.append(_ResBlock1d(cin, cout))
            cin = cout
        self.backbone = nn.Sequential(*blocks, nn.AdaptiveAvgPool1d(1), nn.Flatten(1))
        self.head = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(as_channels_first(x, self.in_chans)))


@register_model(
    "deepepicnn",
    aliases=("DeepEpiCnn",),
    task="signal",
    family="deepepicnn",
    test_kwargs={"num_classes": 2},
    test_input=(1, 750),
    overfit=True,
    description="nnTraining2 1-D CNN for 750-sample accelerometer windows (97,362 params)",
)
def deepepicnn(
    num_classes: int = 2, in_chans: int = 1, drop_rate: float = 0.025, conv_drop_rate: float = 0.0
) -> DeepEpiCnn:
    """Registered factory for :class:`DeepEpiCnn`."""
    return DeepEpiCnn(num_classes, in_chans, drop_rate, conv_drop_rate)


@register_model(
    "resnet1d",
    aliases=("ResNet1D",),
    task="signal",
    family="resnet1d",
    test_kwargs={"in_chans": 6, "num_classes": 4, "filters": [8, 16, 16]},
    test_input=(6, 100),
    overfit=True,
    description="ResNet-1D time-series classifier for any number of channels and length",
)
def resnet1d(
    in_chans: int = 1,
    num_classes: int = 2,
    filters: Sequence[int] = (64, 128, 128),
    drop_rate: float = 0.0,
) -> ResNet1D:
    """Registered factory for :class:`ResNet1D`."""
    return ResNet1D(in_chans, num_classes, tuple(filters), drop_rate)

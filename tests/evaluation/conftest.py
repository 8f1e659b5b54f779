"""Tiny models and loaders for the evaluation tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn


class TinyClassifier(nn.Module):
    def __init__(self, num_classes: int = 3, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 4, 3, padding=1)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))


class TinySegmenter(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, num_classes, 1)

    def forward(self, x):
        return self.head(self.body(x))


class TinyMultitask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seg = TinySegmenter(2)
        self.cls = nn.Linear(2, 3)

    def forward(self, x):
        s = self.seg(x)
        return {"classification": self.cls(s.mean(dim=(2, 3))), "segmentation": s}


class TinySignal(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 5, padding=2)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=2))


@pytest.fixture
def cls_batches():
    g = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.rand(4, 3, 16, 16, generator=g),
            "label": torch.randint(0, 3, (4,), generator=g),
        }
        for _ in range(3)
    ]


@pytest.fixture
def seg_batches():
    g = torch.Generator().manual_seed(1)
    return [
        (torch.rand(2, 3, 16, 16, generator=g), torch.randint(0, 3, (2, 16, 16), generator=g))
        for _ in range(3)
    ]


@pytest.fixture
def tiny():
    """The tiny model classes (importlib import mode cannot import conftest directly)."""
    import types

    return types.SimpleNamespace(
        Classifier=TinyClassifier,
        Segmenter=TinySegmenter,
        Multitask=TinyMultitask,
        Signal=TinySignal,
    )

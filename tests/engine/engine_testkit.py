"""Tiny models and data for the engine tests (plain nn.Modules; no model zoo needed)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


class TinyCNN(nn.Module):
    def __init__(self, in_chans: int = 3, num_classes: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.backbone(x))


class TinySeg(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1)
        )

    def forward(self, x):
        return self.net(x)


class TinyMulti(nn.Module):
    def __init__(self, num_classes: int = 2, seg_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.seg = nn.Conv2d(8, seg_classes, 1)
        self.cls = nn.Linear(8, num_classes)

    def forward(self, x):
        f = self.body(x)
        return {"classification": self.cls(f.mean((2, 3))), "segmentation": self.seg(f)}


class TinySignal(nn.Module):
    def __init__(self, channels: int = 3, num_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, 8, 5, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(8, num_classes),
        )

    def forward(self, x):
        return self.net(x)


class DictDataset(Dataset):
    """Our image-dataset contract: dicts with image/label/mask."""

    def __init__(self, n: int = 32, size: int = 16, seg: bool = False, cls: bool = True) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand(n, 3, size, size, generator=g)
        self.y = (self.x[:, 0].mean((1, 2)) > 0.5).long()
        self.m = (self.x[:, 1] > 0.5).long() + (self.x[:, 2] > 0.7).long()
        self.seg, self.cls = seg, cls
        self.classes = ["neg", "pos"]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.x[i]}
        if self.cls:
            item["label"] = self.y[i]
        if self.seg:
            item["mask"] = self.m[i]
        return item


def cls_tensors(n: int = 48, size: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = (x[:, 0].mean((1, 2)) > 0).long()
    return x, y

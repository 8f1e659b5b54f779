"""A tiny CNN trained in a few seconds to detect a bright square, and other small models."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn


class SquareNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def square_images(n: int, generator: torch.Generator, size: int = 32, side: int = 8):
    """Noise images; label 1 ones hold a bright square. Returns images, labels, square masks."""
    x = torch.rand(n, 1, size, size, generator=generator) * 0.4
    y = torch.randint(0, 2, (n,), generator=generator)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        if y[i]:
            r, c = torch.randint(0, size - side, (2,), generator=generator).tolist()
            x[i, 0, r : r + side, c : c + side] = 1.0
            masks[i, r : r + side, c : c + side] = True
    return x, y, masks


@pytest.fixture(scope="session")
def square_model():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = SquareNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        x, y, _ = square_images(32, g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y, _ = square_images(64, g)
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95, f"the bright-square detector did not train (accuracy {acc:.2f})"
    return model


class TinySeg(nn.Module):
    def __init__(self, head_kernel: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.classifier = nn.Conv2d(8, 3, head_kernel, padding=head_kernel // 2)

    def forward(self, x):
        return self.classifier(self.body(x))


@pytest.fixture
def models():
    import timm

    def vit():
        return timm.create_model(
            "vit_tiny_patch16_224",
            img_size=32,
            patch_size=8,
            num_classes=2,
            depth=2,
            pretrained=False,
        )

    def swin():
        return timm.create_model(
            "swin_tiny_patch4_window7_224",
            img_size=32,
            window_size=4,
            embed_dim=24,
            depths=(1, 1),
            num_heads=(1, 2),
            num_classes=2,
            pretrained=False,
        )

    return types.SimpleNamespace(
        SquareNet=SquareNet, TinySeg=TinySeg, vit=vit, swin=swin, square_images=square_images
    )

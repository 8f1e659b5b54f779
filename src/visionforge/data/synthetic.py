"""Synthetic datasets for tests, demos and smoke runs: learnable, tiny, deterministic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from visionforge.data.transforms import finish_sample, to_sample
from visionforge.errors import ConfigError
from visionforge.registry import DATASETS

__all__ = ["DummyClassificationDataset", "DummySegmentationDataset"]


def _generator(seed: int, index: int) -> torch.Generator:
    # one generator per (seed, index): a sample never depends on access order or workers
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


def _check(num_samples: int, image_size: int, num_classes: int) -> None:
    if num_samples < 1 or image_size < 4 or num_classes < 1:
        raise ConfigError(
            "need num_samples >= 1, image_size >= 4 and num_classes >= 1, got "
            f"{num_samples}, {image_size}, {num_classes}"
        )


class _DummyDataset(Dataset):
    """What both dummy datasets share: size checks, per-index generators and the transform.

    Subclasses draw sample ``index`` in :meth:`_draw` from its own generator.
    """

    def __init__(
        self,
        num_samples: int,
        image_size: int,
        num_classes: int,
        channels: int,
        seed: int,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
    ) -> None:
        _check(num_samples, image_size, num_classes)
        self.num_samples, self.image_size = num_samples, image_size
        self.num_classes, self.channels, self.seed = num_classes, channels, seed
        self.transform = transform

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        sample = self._draw(index, _generator(self.seed, index))
        if self.transform is not None:
            sample = self.transform(sample)
        return finish_sample(sample)

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        raise NotImplementedError


@DATASETS.register("dummy_classification", aliases=("DummyClassificationDataset",))
class DummyClassificationDataset(_DummyDataset):
    """Noise images whose class sets a colour tint and a bright square position.

    Yields ``{"image": float32 [C, S, S] in [0, 1], "label": int64}``; sample ``i``
    is always the same for the same ``seed``. Labels cycle ``i % num_classes``.
    """

    def __init__(
        self,
        num_samples: int = 64,
        image_size: int = 32,
        num_classes: int = 2,
        channels: int = 3,
        seed: int = 0,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(num_samples, image_size, num_classes, channels, seed, transform)
        self.classes = [f"class_{i}" for i in range(num_classes)]
        self.targets = [i % num_classes for i in range(num_samples)]

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        label = self.targets[index]
        s, c = self.image_size, self.channels
        img = 0.35 * torch.rand(c, s, s, generator=g)
        tint = (
            torch.linspace(0, 1, c).roll(label)
            if c > 1
            else torch.tensor([label / self.num_classes])
        )
        img += 0.25 * tint.view(c, 1, 1)
        q = max(s // 4, 1)
        row, col = divmod(label % 4, 2)
        img[:, row * s // 2 : row * s // 2 + q, col * s // 2 : col * s // 2 + q] += 0.4
        return to_sample(img.clamp_(0, 1), label=label)


@DATASETS.register("dummy_segmentation", aliases=("DummySegmentationDataset",))
class DummySegmentationDataset(_DummyDataset):
    """Noise images with random rectangles; each class has its own colour.

    Yields ``{"image": float32 [C, S, S], "mask": int64 [S, S]}`` with class 0 as
    background; deterministic for a given ``seed``.
    """

    def __init__(
        self,
        num_samples: int = 16,
        image_size: int = 32,
        num_classes: int = 3,
        channels: int = 3,
        seed: int = 0,
        shapes_per_image: int = 3,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(num_samples, image_size, num_classes, channels, seed, transform)
        self.shapes_per_image = shapes_per_image
        self.class_names = ["background"] + [f"class_{i}" for i in range(1, num_classes)]
        g = torch.Generator().manual_seed(seed)
        self._colours = torch.rand(num_classes, channels, generator=g)

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        s = self.image_size
        mask = torch.zeros(s, s, dtype=torch.int64)
        for _ in range(self.shapes_per_image if self.num_classes > 1 else 0):
            cls = int(torch.randint(1, self.num_classes, (1,), generator=g))
            h, w = (int(v) for v in torch.randint(s // 6 + 1, s // 2 + 1, (2,), generator=g))
            y, x = (int(v) for v in torch.randint(0, s - min(h, w) + 1, (2,), generator=g))
            mask[y : y + h, x : x + w] = cls
        img = self._colours[mask].permute(2, 0, 1) * 0.8
        img += 0.2 * torch.rand(self.channels, s, s, generator=g)
        return to_sample(img.clamp_(0, 1), mask)

"""Synthetic datasets for tests, demos and smoke runs: learnable, tiny, deterministic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from visionforge.data.transforms import finish_sample, sample_tuple, to_sample
from visionforge.errors import ConfigError
from visionforge.registry import DATASETS

__all__ = ["DummyClassificationDataset", "DummySegmentationDataset", "DummyDetectionDataset"]


def _generator(seed: int, index: int) -> torch.Generator:
    # one generator per (seed, index): a sample never depends on access order or workers
    return torch.Generator().manual_seed(seed * 1_000_003 + index)


ImageSize = int | tuple[int, int] | list[int]


def _hw(image_size: ImageSize) -> tuple[int, int]:
    """``(H, W)`` of ``image_size``: an int (square) or an ``(H, W)`` pair."""
    if isinstance(image_size, int):
        return image_size, image_size
    size = tuple(int(v) for v in image_size)
    if len(size) != 2:
        raise ConfigError(f"image_size must be an int or (H, W), got {image_size!r}")
    return size  # type: ignore[return-value]


def _check(num_samples: int, image_size: ImageSize, num_classes: int) -> None:
    if num_samples < 1 or min(_hw(image_size)) < 4 or num_classes < 1:
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
        image_size: ImageSize,
        num_classes: int,
        channels: int,
        seed: int,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
        return_tuple: bool = False,
    ) -> None:
        _check(num_samples, image_size, num_classes)
        self.num_samples, self.image_size = num_samples, image_size
        self.height, self.width = _hw(image_size)
        self.num_classes, self.channels, self.seed = num_classes, channels, seed
        self.transform = transform
        self.return_tuple = return_tuple

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Any] | tuple[Any, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        sample = self._draw(index, _generator(self.seed, index))
        if self.transform is not None:
            sample = self.transform(sample)
        sample = finish_sample(sample)
        return sample_tuple(sample) if self.return_tuple else sample

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        raise NotImplementedError


@DATASETS.register("dummy_classification", aliases=("DummyClassificationDataset",))
class DummyClassificationDataset(_DummyDataset):
    """Noise images whose class sets a colour tint and a bright square position.

    Yields ``{"image": float32 [C, H, W] in [0, 1], "label": int64}`` (``(image, label)``
    with ``return_tuple=True``); ``image_size`` is ``S`` (square) or ``(H, W)``. Sample ``i``
    is always the same for the same ``seed``. Labels cycle ``i % num_classes``.
    """

    def __init__(
        self,
        num_samples: int = 64,
        image_size: ImageSize = 32,
        num_classes: int = 2,
        channels: int = 3,
        seed: int = 0,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        return_tuple: bool = False,
    ) -> None:
        super().__init__(num_samples, image_size, num_classes, channels, seed, transform,
                         return_tuple)
        self.classes = [f"class_{i}" for i in range(num_classes)]
        self.targets = [i % num_classes for i in range(num_samples)]

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        label = self.targets[index]
        h, w, c = self.height, self.width, self.channels
        img = 0.35 * torch.rand(c, h, w, generator=g)
        tint = (
            torch.linspace(0, 1, c).roll(label)
            if c > 1
            else torch.tensor([label / self.num_classes])
        )
        img += 0.25 * tint.view(c, 1, 1)
        qh, qw = max(h // 4, 1), max(w // 4, 1)
        row, col = divmod(label % 4, 2)
        img[:, row * h // 2 : row * h // 2 + qh, col * w // 2 : col * w // 2 + qw] += 0.4
        return to_sample(img.clamp_(0, 1), label=label)


@DATASETS.register("dummy_segmentation", aliases=("DummySegmentationDataset",))
class DummySegmentationDataset(_DummyDataset):
    """Noise images with random rectangles; each class has its own colour.

    Yields ``{"image": float32 [C, H, W], "mask": int64 [H, W]}`` (``(image, mask)`` with
    ``return_tuple=True``) with class 0 as background; ``image_size`` is ``S`` or ``(H, W)``;
    deterministic for a given ``seed``.
    """

    def __init__(
        self,
        num_samples: int = 16,
        image_size: ImageSize = 32,
        num_classes: int = 3,
        channels: int = 3,
        seed: int = 0,
        shapes_per_image: int = 3,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        return_tuple: bool = False,
    ) -> None:
        super().__init__(num_samples, image_size, num_classes, channels, seed, transform,
                         return_tuple)
        self.shapes_per_image = shapes_per_image
        self.class_names = ["background"] + [f"class_{i}" for i in range(1, num_classes)]
        g = torch.Generator().manual_seed(seed)
        self._colours = torch.rand(num_classes, channels, generator=g)

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        H, W = self.height, self.width  # noqa: N806
        mask = torch.zeros(H, W, dtype=torch.int64)
        square = H == W  # square images draw exactly as before (same samples per seed)
        for _ in range(self.shapes_per_image if self.num_classes > 1 else 0):
            cls = int(torch.randint(1, self.num_classes, (1,), generator=g))
            if square:
                s = H
                h, w = (int(v) for v in torch.randint(s // 6 + 1, s // 2 + 1, (2,), generator=g))
                y, x = (int(v) for v in torch.randint(0, s - min(h, w) + 1, (2,), generator=g))
            else:
                h = int(torch.randint(H // 6 + 1, H // 2 + 1, (1,), generator=g))
                w = int(torch.randint(W // 6 + 1, W // 2 + 1, (1,), generator=g))
                y = int(torch.randint(0, H - h + 1, (1,), generator=g))
                x = int(torch.randint(0, W - w + 1, (1,), generator=g))
            mask[y : y + h, x : x + w] = cls
        img = self._colours[mask].permute(2, 0, 1) * 0.8
        img += 0.2 * torch.rand(self.channels, H, W, generator=g)
        return to_sample(img.clamp_(0, 1), mask)


@DATASETS.register("dummy_detection", aliases=("DummyDetectionDataset",))
class DummyDetectionDataset(_DummyDataset):
    """Noise images with bright rectangles and their boxes (one class per colour).

    Yields the detection sample of :class:`~visionforge.data.detection.DetectionDataset`:
    ``{"image": float32 [C, H, W], "target": {"boxes" [N, 4] xyxy, "labels" [N] (1..K),
    "iscrowd" [N], "image_id" []}}``; batch it with :attr:`collate_fn`
    (:func:`~visionforge.data.detection.detection_collate`). Box sides are drawn from
    ``box_size`` (pixels, inclusive); deterministic for a given ``seed``.
    """

    def __init__(
        self,
        num_samples: int = 16,
        image_size: ImageSize = 64,
        num_classes: int = 1,
        channels: int = 3,
        seed: int = 0,
        boxes_per_image: int = 3,
        box_size: tuple[int, int] = (6, 16),
    ) -> None:
        super().__init__(num_samples, image_size, num_classes, channels, seed, None)
        lo, hi = (int(v) for v in box_size)
        if not 1 <= lo <= hi <= min(self.height, self.width) or boxes_per_image < 0:
            raise ConfigError(f"need 1 <= box_size[0] <= box_size[1] <= image side and "
                              f"boxes_per_image >= 0, got box_size={box_size!r}, "
                              f"boxes_per_image={boxes_per_image}")
        self.boxes_per_image, self.box_size = int(boxes_per_image), (lo, hi)
        self.class_names = [f"class_{i}" for i in range(1, num_classes + 1)]
        g = torch.Generator().manual_seed(seed)
        self._colours = 0.5 + 0.5 * torch.rand(num_classes, channels, generator=g)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_samples:
            raise IndexError(index)
        return self._draw(index, _generator(self.seed, index))

    @staticmethod
    def collate_fn(batch: list[dict[str, Any]]) -> dict[str, Any]:
        from visionforge.data.detection import detection_collate

        return detection_collate(batch)

    def _draw(self, index: int, g: torch.Generator) -> dict[str, Any]:
        H, W, n = self.height, self.width, self.boxes_per_image  # noqa: N806
        lo, hi = self.box_size
        img = 0.3 * torch.rand(self.channels, H, W, generator=g)
        sides = torch.randint(lo, hi + 1, (n, 2), generator=g)
        y0 = (torch.rand(n, generator=g) * (H - sides[:, 0] + 1)).long()
        x0 = (torch.rand(n, generator=g) * (W - sides[:, 1] + 1)).long()
        labels = torch.randint(1, self.num_classes + 1, (n,), generator=g)
        for k in range(n):  # later boxes paint over earlier ones; their boxes stay whole
            y, x, h, w = int(y0[k]), int(x0[k]), int(sides[k, 0]), int(sides[k, 1])
            img[:, y : y + h, x : x + w] = self._colours[labels[k] - 1].view(-1, 1, 1)
        boxes = torch.stack([x0, y0, x0 + sides[:, 1], y0 + sides[:, 0]], 1).float()
        target = {"boxes": boxes.reshape(-1, 4), "labels": labels,
                  "iscrowd": torch.zeros(n, dtype=torch.int64), "image_id": torch.tensor(index)}
        return {"image": img.clamp_(0, 1), "target": target}

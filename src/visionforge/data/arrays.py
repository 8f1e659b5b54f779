"""A dataset over images already in memory (uint8 ``[N, H, W, C]``), e.g. CIFAR batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionforge.data.transforms import finish_sample, to_sample
from visionforge.errors import DataError
from visionforge.registry import DATASETS

__all__ = ["ArrayImageDataset"]


@DATASETS.register("array_images", aliases=("ArrayImageDataset",))
class ArrayImageDataset(Dataset):
    """Yields ``{"image": float32 [C, H, W] in [0, 1], "label": int64}`` from numpy arrays."""

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[int] | np.ndarray,
        classes: Sequence[str] | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or len(images) != len(labels):
            raise DataError(
                f"images must be [N, H, W, C] with N labels; got {images.shape}, {len(labels)}"
            )
        self.images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
        self.targets = [int(v) for v in labels]
        n = max(self.targets) + 1 if self.targets else 0
        self.classes = list(classes) if classes is not None else [str(i) for i in range(n)]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = to_sample(self.images[index], label=self.targets[index])
        if self.transform is not None:
            sample = self.transform(sample)
        return finish_sample(sample)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

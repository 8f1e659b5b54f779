"""CODAvision's ``base.data.loaders_pytorch``: tile datasets and the dataloader factories.

Images come back as float ``[3, H, W]`` RGB in 0-255 (the DeepLabV3+ normalises inside),
masks as int64 ``[H, W]``; augmentation is CODAvision's (90-degree rotations, flips and
brightness), done with torchvision v2 on image and mask together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from visionforge.errors import DataError

__all__ = [
    "PyTorchSegmentationDataset",
    "get_tile_paths_from_directory",
    "create_training_dataloader",
    "create_validation_dataloader",
]

# CODAvision writes tiles to <dir>/im and <dir>/label; visionforge's tilers to images/masks.
_LAYOUTS = (("im", "label"), ("images", "masks"), ("images", "labels"))


def get_tile_paths_from_directory(tile_dir: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """``(image paths, mask paths)`` paired by file stem from a tile folder."""
    from visionforge.data.segmentation import pair_by_stem

    root = Path(tile_dir)
    for images, masks in _LAYOUTS:
        if (root / images).is_dir() and (root / masks).is_dir():
            pairs = pair_by_stem(root / images, root / masks)
            return [str(i) for i, _ in pairs], [str(m) for _, m in pairs]
    raise DataError(f"{root}: no tile folders; expected one of "
                    + ", ".join(f"{a}/ + {b}/" for a, b in _LAYOUTS))


class PyTorchSegmentationDataset(Dataset):
    """Tiles and masks from path lists, optionally augmented reproducibly (``seed + index``)."""

    def __init__(self, tile_paths: list[str], mask_paths: list[str], augment: bool = False,
                 seed: int | None = None) -> None:
        if len(tile_paths) != len(mask_paths):
            raise DataError(f"{len(tile_paths)} tiles but {len(mask_paths)} masks")
        self.tile_paths, self.mask_paths = list(tile_paths), list(mask_paths)
        self.augment, self.seed = augment, seed

    def __len__(self) -> int:
        return len(self.tile_paths)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        from visionforge.data.images import decode_image, load_mask
        from visionforge.data.transforms import to_sample

        image = decode_image(self.tile_paths[idx], 3)
        mask = torch.from_numpy(load_mask(self.mask_paths[idx]))
        sample = to_sample(image, mask)
        if self.augment:
            sample = self._augment(sample, idx)
        img = sample["image"].as_subclass(torch.Tensor)
        img = img.float() if img.dtype == torch.uint8 else img.float() * 255.0
        return img.contiguous(), sample["mask"].as_subclass(torch.Tensor).long()

    def _augment(self, sample: dict[str, Any], idx: int) -> dict[str, Any]:
        from torchvision.transforms import v2

        from visionforge.data.transforms import RandomRot90

        ops = v2.Compose([RandomRot90(), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                          v2.RandomApply([v2.ColorJitter(brightness=0.2)], p=0.5)])
        if self.seed is None:
            return ops(sample)
        state = torch.random.get_rng_state()
        torch.manual_seed(self.seed + idx)  # same augmentation per (seed, index), any worker
        try:
            return ops(sample)
        finally:
            torch.random.set_rng_state(state)


def _loader(tile_dir: Any, batch_size: int, augment: bool, shuffle: bool, num_workers: int,
            seed: int | None) -> DataLoader:
    from visionforge.engine.seed import seed_worker

    tiles, masks = get_tile_paths_from_directory(tile_dir)
    dataset = PyTorchSegmentationDataset(tiles, masks, augment=augment, seed=seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available(), generator=generator,
                      worker_init_fn=seed_worker if seed is not None else None,
                      persistent_workers=num_workers > 0)


def create_training_dataloader(tile_dir: str | os.PathLike[str], batch_size: int = 4,
                               augment: bool = True, num_workers: int = 4,
                               seed: int = 42) -> DataLoader:
    """Shuffled, augmented training tiles of ``tile_dir``."""
    return _loader(tile_dir, batch_size, augment, True, num_workers, seed)


def create_validation_dataloader(tile_dir: str | os.PathLike[str], batch_size: int = 4,
                                 num_workers: int = 4) -> DataLoader:
    """Validation tiles of ``tile_dir`` in order, not augmented."""
    return _loader(tile_dir, batch_size, False, False, num_workers, None)

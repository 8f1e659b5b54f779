"""Semantic segmentation dataset over ``images/`` + ``masks/`` folders paired by file stem."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionforge.data.classification import check_policy
from visionforge.data.images import (
    check_image_headers,
    decode_image,
    image_shape,
    list_images,
    load_mask,
    verify_image,
)
from visionforge.data.transforms import finish_sample, sample_tuple, to_sample
from visionforge.errors import DataError
from visionforge.registry import DATASETS

__all__ = ["SegmentationDataset", "pair_by_stem", "check_mask_values"]
_log = logging.getLogger(__name__)


def pair_by_stem(
    images_dir: str | os.PathLike[str],
    masks_dir: str | os.PathLike[str],
    mask_suffix: str = "",
) -> list[tuple[Path, Path]]:
    """Pair ``images_dir/<stem>.*`` with ``masks_dir/<stem><mask_suffix>.*``.

    Raises :class:`DataError` listing the files without a partner.
    """
    idir, mdir = Path(images_dir), Path(masks_dir)
    for d, what in ((idir, "images"), (mdir, "masks")):
        if not d.is_dir():
            raise DataError(f"{d}: {what} folder not found")
    images = list_images(idir)
    if not images:
        raise DataError(f"{idir}: no images found (png, jpg, jpeg, bmp, tif, tiff)")
    masks: dict[str, Path] = {}
    for m in list_images(mdir):
        stem = m.stem
        if mask_suffix and stem.endswith(mask_suffix):
            stem = stem[: -len(mask_suffix)]
        if stem in masks:
            raise DataError(f"{mdir}: two masks for {stem!r}: {masks[stem].name} and {m.name}")
        masks[stem] = m
    pairs, lonely = [], []
    for img in images:
        mask = masks.pop(img.stem, None)
        if mask is None:
            lonely.append(img.name)
        else:
            pairs.append((img, mask))
    problems = []
    if lonely:
        problems.append(
            f"{len(lonely)} images have no mask in {mdir} (expected <stem>{mask_suffix}.png): "
            + ", ".join(lonely[:10])
        )
    if masks:
        problems.append(
            f"{len(masks)} masks have no image in {idir}: "
            + ", ".join(m.name for m in list(masks.values())[:10])
        )
    if problems:
        raise DataError("; ".join(problems))
    return pairs


def check_mask_values(
    mask: np.ndarray | torch.Tensor,
    num_classes: int | None,
    ignore_index: int | None,
    path: str | os.PathLike[str],
) -> None:
    """Raise :class:`DataError` naming ``path`` when a mask value lies outside [0, num_classes)."""
    mask = torch.as_tensor(mask)
    if mask.numel() == 0:
        return
    lo, hi = int(mask.min()), int(mask.max())
    if lo >= 0 and (num_classes is None or hi < num_classes):  # fast path: no unique()
        return
    values = mask.unique()
    if ignore_index is not None:
        values = values[values != ignore_index]
    if values.numel() == 0:
        return
    bad = values[values < 0]
    if num_classes is not None:
        bad = torch.cat([bad, values[values >= num_classes]])
    if bad.numel():
        allowed = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise DataError(
            f"{path}: mask values {bad.tolist()[:10]} are outside {allowed}{extra}; "
            "fix the mask or set num_classes/ignore_index"
        )


@DATASETS.register("segmentation", aliases=("SegmentationDataset", "image_mask_folder"))
class SegmentationDataset(Dataset):
    """Image + class-index mask pairs; yields ``{"image": float32 [C,H,W], "mask": int64 [H,W]}``.

    Masks are paired with images by file stem (``masks/<stem><mask_suffix>.<ext>``).
    Masks are single-channel class indices, or RGB colour masks with
    ``color_map={(r, g, b) or "#rrggbb": class_index}``. At construction every pair
    is checked for a partner and equal height/width (from file headers);
    ``validate="full"`` also reads each mask and checks its values. Mask values
    are always checked when a sample is loaded: values outside ``[0, num_classes)``
    other than ``ignore_index`` raise :class:`DataError` naming the file.
    ``transform`` receives ``{"image": tv_tensors.Image, "mask": tv_tensors.Mask}``.
    ``cache`` (``"memory"``, ``"disk"`` or a :class:`~visionforge.data.cache.DecodedCache`)
    keeps decoded images and masks so each file is decoded once.
    """

    def __init__(
        self,
        images_dir: str | os.PathLike[str],
        masks_dir: str | os.PathLike[str],
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        num_classes: int | None = None,
        ignore_index: int | None = None,
        *,
        color_map: Mapping[Any, int] | None = None,
        mask_suffix: str = "",
        channels: int | None = 3,
        class_names: list[str] | None = None,
        on_bad_image: str = "error",
        validate: bool | str = True,
        return_path: bool = False,
        return_tuple: bool = False,
        cache: Any = None,
    ) -> None:
        from visionforge.data.cache import make_cache

        self.images_dir, self.masks_dir = Path(images_dir), Path(masks_dir)
        self.cache = make_cache(cache)
        self.transform = transform
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.color_map = dict(color_map) if color_map is not None else None
        self.channels = channels
        self.on_bad_image = check_policy(on_bad_image)
        self.return_path = return_path
        self.return_tuple = return_tuple  # yield (image, target) tuples instead of dicts
        self.skipped: list[dict[str, str]] = []
        self.samples = pair_by_stem(images_dir, masks_dir, mask_suffix)
        self._check_headers()
        if on_bad_image == "skip":
            self._drop_unreadable()
        if validate:
            self._validate(full=validate == "full")
        if not self.samples:
            raise DataError(f"{self.images_dir}: dataset is empty after skipping unreadable files")
        if class_names is not None and num_classes is not None and len(class_names) != num_classes:
            raise DataError(
                f"class_names has {len(class_names)} names but num_classes={num_classes}"
            )
        self.class_names = class_names or (
            [str(i) for i in range(num_classes)] if num_classes else None
        )

    def _check_headers(self) -> None:
        # Decompression bombs are named now, from headers alone, not mid-training.
        _, skipped = check_image_headers(
            [p for pair in self.samples for p in pair], self.on_bad_image
        )
        bad = {r["path"] for r in skipped}
        for record in skipped:
            _log.warning("skipping pair: %s", record["reason"])
        self.skipped.extend(skipped)
        self.samples = [(i, m) for i, m in self.samples if str(i) not in bad and str(m) not in bad]

    def _drop_unreadable(self) -> None:
        good = []
        for img, mask in self.samples:
            reason = verify_image(img) or verify_image(mask)
            if reason is None:
                good.append((img, mask))
            else:
                self.skipped.append({"path": str(img), "mask": str(mask), "reason": reason})
                _log.warning("skipping unreadable pair: %s", reason)
        self.samples = good

    def _validate(self, full: bool) -> None:
        problems = []
        for img, mask in self.samples:
            ih, iw = image_shape(img)
            mh, mw = image_shape(mask)
            if (ih, iw) != (mh, mw):
                problems.append(f"{img.name} is {ih}x{iw} but mask {mask.name} is {mh}x{mw}")
        if problems:
            raise DataError(
                f"{self.images_dir}: image/mask size mismatch (height x width): "
                + "; ".join(problems[:10])
            )
        if full:
            for _, mask in self.samples:
                check_mask_values(
                    load_mask(mask, self.color_map), self.num_classes, self.ignore_index, mask
                )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any] | tuple[Any, Any]:
        img_path, mask_path = self.samples[index]
        image, mask = self._decode(img_path, mask_path)
        if tuple(image.shape[-2:]) != tuple(mask.shape):
            raise DataError(
                f"{img_path}: image is {tuple(image.shape[-2:])} but mask {mask_path} is "
                f"{tuple(mask.shape)}"
            )
        check_mask_values(mask, self.num_classes, self.ignore_index, mask_path)
        sample = to_sample(image, mask)
        if self.transform is not None:
            sample = self.transform(sample)
        sample = finish_sample(sample)
        if self.return_path:
            sample["path"] = str(img_path)
        return sample_tuple(sample) if self.return_tuple else sample

    def _decode(self, img_path: Any, mask_path: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cache is None:
            return (decode_image(img_path, self.channels),
                    torch.from_numpy(load_mask(mask_path, self.color_map)))
        hwc = self.cache.get(img_path, lambda: decode_image(img_path, self.channels)
                             .permute(1, 2, 0).numpy(), variant=f"image:{self.channels}")
        colors = sorted((str(k), v) for k, v in (self.color_map or {}).items())
        mask = self.cache.get(mask_path, lambda: load_mask(mask_path, self.color_map),
                              variant=f"mask:{colors}")
        return torch.from_numpy(hwc).permute(2, 0, 1), torch.from_numpy(mask)

    def class_histogram(self) -> dict[int, int]:
        """Pixel count per mask value over the whole dataset (reads every mask)."""
        total: dict[int, int] = {}
        for _, mask in self.samples:
            values, counts = np.unique(load_mask(mask, self.color_map), return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                total[v] = total.get(v, 0) + c
        return dict(sorted(total.items()))

    def report(self) -> dict[str, Any]:
        """Summary: folders, number of pairs, classes, skipped pairs with reasons."""
        return {
            "images_dir": str(self.images_dir),
            "masks_dir": str(self.masks_dir),
            "num_samples": len(self),
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "skipped": list(self.skipped),
        }

    def __repr__(self) -> str:
        return f"SegmentationDataset({str(self.images_dir)!r}, {len(self)} pairs)"

"""COCO-style semantic segmentation: images + an ``instances``/``stuff`` JSON -> class-index masks.

Categories are mapped to contiguous classes 1..K in ascending COCO id order
(0 = background). Polygons are rasterised with Pillow; uncompressed RLE is
decoded here; compressed RLE (string ``counts``) needs ``pycocotools``.
Larger annotations are drawn first so that small objects lying on top stay visible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionforge.data.images import decode_image
from visionforge.data.transforms import finish_sample, to_sample
from visionforge.errors import DataError
from visionforge.registry import DATASETS

__all__ = ["CocoSegmentationDataset", "rle_decode"]


def rle_decode(rle: dict[str, Any], height: int, width: int) -> np.ndarray:
    """Decode a COCO RLE (column-major run lengths) into a bool ``[H, W]`` array."""
    counts = rle["counts"]
    if isinstance(counts, str | bytes):
        try:
            from pycocotools import mask as mask_utils
        except ImportError:
            raise DataError(
                "compressed RLE annotations need pycocotools (`pip install pycocotools`)"
            ) from None
        return mask_utils.decode(rle).astype(bool)
    flat = np.zeros(height * width, dtype=bool)
    pos, value = 0, False
    for c in counts:
        if value:
            flat[pos : pos + c] = True
        pos += c
        value = not value
    return flat.reshape(width, height).T


@DATASETS.register("coco_segmentation", aliases=("CocoSegmentationDataset",))
class CocoSegmentationDataset(Dataset):
    """Yields ``{"image", "mask"}`` with masks drawn from COCO annotations (0 = background)."""

    def __init__(
        self,
        images_dir: str | os.PathLike[str],
        annotation_file: str | os.PathLike[str],
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        channels: int = 3,
        skip_empty: bool = False,
    ) -> None:
        self.images_dir = Path(images_dir)
        ann = Path(annotation_file)
        if not ann.is_file():
            raise DataError(f"{ann}: COCO annotation file not found")
        try:
            data = json.loads(ann.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{ann}: invalid JSON ({exc})") from None
        for key in ("images", "annotations", "categories"):
            if key not in data:
                raise DataError(f"{ann}: not a COCO file (missing {key!r})")
        cats = sorted(data["categories"], key=lambda c: c["id"])
        self.cat_to_class = {c["id"]: i + 1 for i, c in enumerate(cats)}
        self.class_names = ["background"] + [str(c.get("name", c["id"])) for c in cats]
        by_image: dict[Any, list[dict[str, Any]]] = {}
        for a in data["annotations"]:
            by_image.setdefault(a["image_id"], []).append(a)
        self.images = [im for im in data["images"] if not skip_empty or by_image.get(im["id"])]
        if not self.images:
            raise DataError(f"{ann}: no images listed")
        self.anns = by_image
        self.transform = transform
        self.channels = channels
        self.num_classes = len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    def mask_for(self, info: dict[str, Any]) -> np.ndarray:
        from PIL import Image, ImageDraw

        h, w = int(info["height"]), int(info["width"])
        canvas = Image.new("L" if self.num_classes < 256 else "I", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        extra = []
        for a in sorted(self.anns.get(info["id"], []), key=lambda a: -float(a.get("area", 0))):
            cls = self.cat_to_class.get(a["category_id"])
            if cls is None:
                raise DataError(f"annotation {a.get('id')}: unknown category_id {a['category_id']}")
            seg = a.get("segmentation")
            if isinstance(seg, list):
                for poly in seg:
                    if len(poly) >= 6:
                        draw.polygon(
                            [(poly[i], poly[i + 1]) for i in range(0, len(poly), 2)], fill=cls
                        )
            elif isinstance(seg, dict):
                extra.append((rle_decode(seg, h, w), cls))
        mask = np.asarray(canvas).astype(np.int64)
        for m, cls in extra:
            mask[m] = cls
        return mask

    def __getitem__(self, index: int) -> dict[str, Any]:
        info = self.images[index]
        path = self.images_dir / info["file_name"]
        image = decode_image(path, self.channels)
        mask = torch.from_numpy(self.mask_for(info))
        if tuple(image.shape[-2:]) != tuple(mask.shape):
            raise DataError(
                f"{path}: image size {tuple(image.shape[-2:])} differs from the JSON's {tuple(mask.shape)}"
            )
        sample = to_sample(image, mask)
        if self.transform is not None:
            sample = self.transform(sample)
        return finish_sample(sample)

"""``DetectionDataModule``: COCO / YOLO / VOC boxes under a root, split by image."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from visionforge.data.datamodules import _DataModule, _need_root
from visionforge.data.detection import (
    DetectionDataset,
    box_statistics,
    detection_collate,
    detection_transforms,
    read_detection_splits,
)
from visionforge.registry import DATAMODULES

__all__ = ["DetectionDataModule"]


@DATAMODULES.register("detection", aliases=("DetectionDataModule", "coco_detection", "yolo",
                                            "voc"))
class DetectionDataModule(_DataModule):
    """Object detection from a local root holding COCO JSON, YOLO txt or Pascal VOC XML.

    Splits found on disk (file names / folders with train, val, test) are used; one unsplit
    set is split by image in ``ratios``, stratified on each image's most frequent class.
    Training samples are random ``image_size`` crops with flips; val/test images stay whole.

    Args:
        root: dataset folder (see :func:`~visionforge.data.detection.find_detection_sources`).
        image_size: training crop side (``None``: whole images).
        on_box_outside: ``"clip"`` boxes reaching outside their image, or ``"error"``.
    """

    task = "detection"
    default_image_size = 256
    default_batch_size = 4

    def __init__(
        self,
        root: str | os.PathLike[str],
        batch_size: int | None = None,
        image_size: int | None = None,
        *,
        ratios: Sequence[float] = (0.8, 0.1, 0.1),
        seed: int = 0,
        augment: bool = True,
        on_box_outside: str = "clip",
        manifest_out: str | os.PathLike[str] | None = None,
        **loader: Any,
    ) -> None:
        super().__init__(batch_size, **loader)
        self.root = Path(root)
        self.image_size = image_size or self.default_image_size
        self.ratios, self.seed, self.augment = list(ratios), int(seed), bool(augment)
        self.on_box_outside = on_box_outside
        self.manifest_out = manifest_out
        self.indexes: dict[str, Any] = {}

    def _build(self) -> None:
        _need_root(self.root, "detection dataset", "COCO JSON + images, YOLO images/ + labels/ "
                   "or VOC Annotations/ + JPEGImages/")
        self.indexes, self.class_names = read_detection_splits(
            self.root, ratios=self.ratios, seed=self.seed, on_box_outside=self.on_box_outside)
        train_tf = detection_transforms(self.image_size, train=True, augment=self.augment)
        for split, index in self.indexes.items():
            tf = train_tf if split == "train" else None
            setattr(self, f"{split}_set", DetectionDataset(index.records, self.class_names, tf))
        self._write_manifest([{"path": str(r.path), "label": r.dominant_label, "split": s}
                              for s, ix in self.indexes.items() for r in ix.records])

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["task"] = "detection"
        out["boxes"] = {s: box_statistics(ix) for s, ix in self.indexes.items()}
        return out

    def _loader(self, ds: Dataset | None, train: bool, sampler: Any = None) -> DataLoader | None:
        self.setup()
        if ds is None:
            return None
        return DataLoader(ds, batch_size=self.batch_size, shuffle=train, collate_fn=detection_collate,
                          drop_last=train and len(ds) > self.batch_size,  # type: ignore[arg-type]
                          **self.loader_options)

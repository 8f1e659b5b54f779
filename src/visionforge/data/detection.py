"""Detection data: find COCO / YOLO / VOC annotations under a root, load images with
box-aware torchvision v2 transforms, batch them for torchvision detectors.

A sample is ``{"image": float32 [3, H, W] in [0, 1], "target": {"boxes" [N, 4] xyxy,
"labels" [N] (1..K), "iscrowd" [N], "image_id" []}}``; :func:`detection_collate` keeps the
targets as a list (stacking images when they share a size).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionforge.data.boxes import BoxIndex, BoxRecord, read_coco, read_voc, read_yolo
from visionforge.errors import DataError

__all__ = [
    "DetectionDataset",
    "detection_collate",
    "detection_transforms",
    "find_detection_sources",
    "detection_format",
    "read_detection_splits",
    "box_statistics",
]

_SPLITS = ("train", "val", "test")


def _is_coco_detection(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        return False
    anns = data["annotations"]
    return "images" in data and (not anns or "bbox" in anns[0])


def _split_of(name: str) -> str:
    low = name.lower()
    for split in _SPLITS:
        if split in low:
            return split
    return "all"


def _first_dir(*cands: Path) -> Path | None:
    return next((c for c in cands if c.is_dir()), None)


def _coco_sources(root: Path) -> dict[str, tuple[str, Path, Path]]:
    out = {}
    jsons = sorted([*root.glob("*.json"), *(root / "annotations").glob("*.json")])
    for js in (j for j in jsons if _is_coco_detection(j)):
        split = _split_of(js.stem)
        images = _first_dir(*(
            [root / "images" / split, root / split] if split != "all" else []), root / "images",
            root) or root
        out.setdefault(split, ("coco", images, js))
    return out


def _yolo_sources(root: Path) -> dict[str, tuple[str, Path, Path]]:
    out: dict[str, tuple[str, Path, Path]] = {}
    if (root / "labels").is_dir() and (root / "images").is_dir():
        for split in _SPLITS:  # ultralytics: images/<split>/ + labels/<split>/
            if (root / "labels" / split).is_dir() and (root / "images" / split).is_dir():
                out[split] = ("yolo", root / "images" / split, root / "labels" / split)
        if not out:
            out["all"] = ("yolo", root / "images", root / "labels")
    for split in _SPLITS:
        if (root / split / "labels").is_dir() and (root / split / "images").is_dir():
            out.setdefault(split, ("yolo", root / split / "images", root / split / "labels"))
    return out


def _voc_sources(root: Path) -> dict[str, tuple[str, Path, Path]]:
    ann = root / "Annotations"
    if not ann.is_dir():
        return {}
    images = _first_dir(root / "JPEGImages", root / "images") or root
    sets = root / "ImageSets" / "Main"
    out = {s: ("voc", images, sets / f"{s}.txt") for s in _SPLITS if (sets / f"{s}.txt").is_file()}
    return out or {"all": ("voc", images, ann)}


def find_detection_sources(root: str | Path) -> dict[str, tuple[str, Path, Path]]:
    """``{split: (format, images, annotations)}`` found under ``root`` (``{}`` if none).

    Split ``"all"`` means one unsplit set. Looked for, in order: COCO JSON (``root/*.json``,
    ``root/annotations/*.json``; the split from the file name), YOLO (``images/`` +
    ``labels/``, per split too), Pascal VOC (``Annotations/`` + ``JPEGImages/``).
    """
    root = Path(root)
    for finder in (_coco_sources, _yolo_sources, _voc_sources):
        found = finder(root)
        if found:
            return found
    return {}


def detection_format(root: str | Path) -> str | None:
    """``"coco"``, ``"yolo"``, ``"voc"`` or ``None``: the detection layout under ``root``."""
    found = find_detection_sources(root)
    return next(iter(found.values()))[0] if found else None


def _read(fmt: str, images: Path, ann: Path, policy: str, names: list[str] | None) -> BoxIndex:
    if fmt == "coco":
        return read_coco(images, ann, on_box_outside=policy, class_names=names)
    if fmt == "yolo":
        return read_yolo(images, ann, on_box_outside=policy, class_names=names)
    if ann.suffix == ".txt":  # a VOC ImageSets list
        ids = [ln.split()[0] for ln in ann.read_text().splitlines() if ln.strip()]
        return read_voc(images, ann.parents[2] / "Annotations", on_box_outside=policy,
                        class_names=names, ids=ids)
    return read_voc(images, ann, on_box_outside=policy, class_names=names)


def read_detection_splits(
    root: str | Path, *, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
    on_box_outside: str = "clip",
) -> tuple[dict[str, BoxIndex], list[str]]:
    """Read every split under ``root``; an unsplit set is split by image, stratified on each
    image's most frequent class (images without boxes form their own stratum)."""
    from visionforge.data.splits import stratified_assign

    sources = find_detection_sources(root)
    if not sources:
        raise DataError(f"{root}: no detection annotations found; expected a COCO JSON "
                        "(root/annotations.json or root/annotations/*.json), YOLO images/ + "
                        "labels/ folders or Pascal VOC Annotations/ + JPEGImages/")
    order = sorted(sources, key=lambda s: (s != "train", s))
    names: list[str] | None = None
    out: dict[str, BoxIndex] = {}
    for split in order:
        index = _read(*sources[split], on_box_outside, names)
        names = names or index.class_names
        out[split] = index
    if "all" in out:
        whole = out.pop("all")
        assign = stratified_assign([r.dominant_label for r in whole.records], ratios, seed)
        for split in _SPLITS:
            recs = [r for r, a in zip(whole.records, assign, strict=True) if a == split]
            if recs:
                out.setdefault(split, BoxIndex(recs, whole.class_names, whole.report))
    return out, list(names or [])


def detection_transforms(image_size: int | None, train: bool, augment: bool = True) -> Any:
    """Joint image + box transforms (torchvision v2; boxes follow every geometric op).

    Training: random crop to ``image_size`` (padding smaller images), flips and a random
    quarter turn (with both flips: all eight symmetries of the square, exact for
    axis-aligned boxes), mild colour jitter, then boxes cut to nothing are dropped.
    Evaluation: the image as it is (the detectors accept any size and boxes stay in the
    file's pixel coordinates).
    """
    from torchvision.transforms import v2

    if not train:
        return None
    ops: list[Any] = []
    if image_size:
        ops.append(v2.RandomCrop(int(image_size), pad_if_needed=True))
    if augment:
        ops += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(),
                v2.RandomApply([v2.RandomRotation((90, 90), expand=True)], p=0.5),
                v2.ColorJitter(brightness=0.1, contrast=0.1, saturation=0.1)]
    ops.append(v2.SanitizeBoundingBoxes(labels_getter=lambda s: (s["labels"], s["iscrowd"])))
    return v2.Compose(ops)


class DetectionDataset(Dataset):
    """Images and boxes of :class:`~visionforge.data.boxes.BoxRecord` s (see module docstring).

    Args:
        records: the images and their boxes.
        class_names: names of labels ``1..K``.
        transform: a v2 transform over ``{"image", "boxes", "labels", "iscrowd"}``.
    """

    def __init__(self, records: Sequence[BoxRecord], class_names: Sequence[str],
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.records = list(records)
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        from torchvision import tv_tensors

        from visionforge.data.images import decode_image, to_float_image

        rec = self.records[i]
        image = decode_image(rec.path, channels=3)
        h, w = image.shape[-2:]
        if (w, h) != (rec.width, rec.height):
            raise DataError(f"{rec.path}: image is {w}x{h} but the annotation says "
                            f"{rec.width}x{rec.height}; fix the annotation's size")
        sample = {
            "image": tv_tensors.Image(image.contiguous()),
            "boxes": tv_tensors.BoundingBoxes(torch.from_numpy(rec.boxes), format="XYXY",
                                              canvas_size=(h, w)),
            "labels": torch.from_numpy(rec.labels),
            "iscrowd": torch.from_numpy(rec.iscrowd),
        }
        if self.transform is not None:
            sample = self.transform(sample)
        target = {"boxes": sample["boxes"].as_subclass(torch.Tensor).float(),
                  "labels": sample["labels"].long(), "iscrowd": sample["iscrowd"].long(),
                  "image_id": torch.tensor(rec.image_id)}
        return {"image": to_float_image(sample["image"]), "target": target}

    @staticmethod
    def collate_fn(batch: list[dict[str, Any]]) -> dict[str, Any]:
        return detection_collate(batch)


def detection_collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"image": [B, 3, H, W] (or a list when sizes differ), "targets": [dict, ...]}``."""
    images = [b["image"] for b in batch]
    same = all(im.shape == images[0].shape for im in images)
    return {"image": torch.stack(images) if same else images,
            "targets": [b["target"] for b in batch]}


def box_statistics(index: BoxIndex) -> dict[str, Any]:
    """Boxes per image, box sizes and class counts of ``index`` (for ``data check``)."""
    per_image = np.array([len(r.boxes) for r in index.records]) if index.records else np.zeros(1)
    boxes = [r.boxes for r in index.records if len(r.boxes)]
    wh = np.concatenate(boxes)[:, 2:] - np.concatenate(boxes)[:, :2] if boxes else np.zeros((0, 2))
    labels = np.concatenate([r.labels for r in index.records]) if index.records else np.zeros(0)
    counts = {n: int((labels == k + 1).sum()) for k, n in enumerate(index.class_names)}

    def stats(v: np.ndarray) -> dict[str, float]:
        if not len(v):
            return {}
        return {"min": float(v.min()), "median": float(np.median(v)), "mean": float(v.mean()),
                "max": float(v.max())}

    return {"images": len(index.records), "boxes": int(per_image.sum()),
            "boxes_per_image": stats(per_image), "box_width": stats(wh[:, 0]),
            "box_height": stats(wh[:, 1]), "class_counts": counts,
            "images_without_boxes": int((per_image == 0).sum()),
            "clipped_boxes": index.report.get("clipped_boxes", 0),
            "dropped_zero_area": len(index.report.get("dropped_zero_area", [])),
            "crowd_boxes": index.report.get("crowd_boxes", 0)}

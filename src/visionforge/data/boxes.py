"""Box annotations from COCO JSON, YOLO txt folders and Pascal VOC XML, as one record list.

Every reader returns a :class:`BoxIndex`: one :class:`BoxRecord` per image (path, size,
``xyxy`` pixel boxes, labels ``1..K``, crowd/difficult flags) plus the class names and a
report of what the bad-input policy did. The policy is the same for all formats:

- a box reaching outside the image is clipped to it (``on_box_outside="clip"``, counted)
  or refused with an error naming the file (``"error"``);
- a box with zero area (after clipping) is dropped and reported (file and box);
- an unknown category id / class index is an error naming the file and the id;
- an image without annotations is kept (a negative example) and counted.

Parsing is written here because no maintained library reads all three into torchvision's
target format without pulling a training framework along (pycocotools reads COCO only).
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError

__all__ = ["BoxRecord", "BoxIndex", "read_coco", "read_yolo", "read_voc", "BOX_POLICIES"]

BOX_POLICIES = ("clip", "error")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class BoxRecord:
    """One image and its boxes (``xyxy`` pixels, float32) with labels ``1..K``."""

    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    iscrowd: np.ndarray
    image_id: int = 0

    @property
    def dominant_label(self) -> int:
        """The most frequent label (0 for an image without boxes): the split's stratum."""
        return int(np.bincount(self.labels).argmax()) if len(self.labels) else 0


@dataclass
class BoxIndex:
    """Records of one dataset (or split), its class names and the cleaning report."""

    records: list[BoxRecord]
    class_names: list[str]
    report: dict[str, Any] = field(default_factory=dict)


def _empty_report() -> dict[str, Any]:
    return {"images": 0, "boxes": 0, "images_without_boxes": 0, "clipped_boxes": 0,
            "dropped_zero_area": [], "crowd_boxes": 0}


class _Cleaner:
    """Applies the bad-input policy to the boxes of one image and records what it did."""

    def __init__(self, on_box_outside: str) -> None:
        if on_box_outside not in BOX_POLICIES:
            raise DataError(f"on_box_outside must be one of {BOX_POLICIES}, got {on_box_outside!r}")
        self.policy = on_box_outside
        self.report = _empty_report()

    def record(self, path: Path, width: int, height: int, boxes: list[list[float]],
               labels: list[int], crowd: list[int], image_id: int) -> BoxRecord:
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
        cr = np.asarray(crowd, dtype=np.int64).reshape(-1)
        outside = ((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > width) | (b[:, 3] > height))
        if outside.any():
            if self.policy == "error":
                first = b[outside][0].round(2).tolist()
                raise DataError(
                    f"{path}: {int(outside.sum())} box(es) reach outside the {width}x{height} "
                    f"image (first: xyxy {first}); fix the annotation or pass "
                    "on_box_outside='clip'")
            self.report["clipped_boxes"] += int(outside.sum())
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        for box in b[~keep]:
            self.report["dropped_zero_area"].append({"file": str(path), "box": box.tolist()})
        b, lab, cr = b[keep], lab[keep], cr[keep]
        self.report["images"] += 1
        self.report["boxes"] += len(b)
        self.report["crowd_boxes"] += int(cr.sum())
        self.report["images_without_boxes"] += int(len(b) == 0)
        return BoxRecord(Path(path), int(width), int(height), b, lab, cr, image_id)


# -- COCO ----------------------------------------------------------------------------------
def _coco_image_path(images_dir: Path, file_name: str, ann_file: Path) -> Path:
    for base in (images_dir, ann_file.parent, ann_file.parent.parent):
        cand = base / file_name
        if cand.is_file():
            return cand
    raise DataError(f"{ann_file}: image {file_name!r} not found under {images_dir}; put the "
                    "images there or fix file_name")


def read_coco(images_dir: str | os.PathLike[str], annotation_file: str | os.PathLike[str], *,
              on_box_outside: str = "clip", class_names: list[str] | None = None) -> BoxIndex:
    """Read a COCO detection JSON (``bbox`` = ``[x, y, w, h]``, ``categories``, ``iscrowd``).

    Categories map to labels ``1..K`` in ascending id order (``class_names`` given: by
    name, so several splits share one numbering).
    """
    ann_file, images_dir = Path(annotation_file), Path(images_dir)
    try:
        data = json.loads(ann_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{ann_file}: cannot read COCO JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise DataError(f"{ann_file}: no {key!r} list; a COCO detection file has images, "
                            "annotations and categories")
    cats = sorted(data["categories"], key=lambda c: c["id"])
    names = list(class_names) if class_names else [str(c["name"]) for c in cats]
    label_of = {}
    for c in cats:
        if str(c["name"]) not in names:
            raise DataError(f"{ann_file}: category {c['name']!r} is not among {names}")
        label_of[c["id"]] = names.index(str(c["name"])) + 1
    per_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in data["annotations"]:
        if ann.get("category_id") not in label_of:
            raise DataError(
                f"{ann_file}: annotation {ann.get('id')} has unknown category_id "
                f"{ann.get('category_id')!r}; known ids: {sorted(label_of)}")
        if "bbox" not in ann:
            raise DataError(f"{ann_file}: annotation {ann.get('id')} has no 'bbox'")
        per_image.setdefault(ann["image_id"], []).append(ann)
    cleaner = _Cleaner(on_box_outside)
    records = []
    for img in data["images"]:
        anns = per_image.get(img["id"], [])
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                  a["bbox"][1] + a["bbox"][3]] for a in anns]
        path = _coco_image_path(images_dir, img["file_name"], ann_file)
        records.append(cleaner.record(
            path, img["width"], img["height"], boxes, [label_of[a["category_id"]] for a in anns],
            [int(a.get("iscrowd", 0)) for a in anns], int(img["id"])))
    return BoxIndex(records, names, cleaner.report)


# -- YOLO ----------------------------------------------------------------------------------
def _yolo_names(root: Path) -> list[str] | None:
    for base in (root, root.parent):
        txt = base / "classes.txt"
        if txt.is_file():
            return [ln.strip() for ln in txt.read_text().splitlines() if ln.strip()]
        for name in ("data.yaml", "dataset.yaml"):
            if (base / name).is_file():
                import yaml

                names = (yaml.safe_load((base / name).read_text()) or {}).get("names")
                if isinstance(names, dict):
                    return [str(names[k]) for k in sorted(names)]
                if isinstance(names, list):
                    return [str(n) for n in names]
    return None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except OSError as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from None


def read_yolo(images_dir: str | os.PathLike[str], labels_dir: str | os.PathLike[str], *,
              on_box_outside: str = "clip", class_names: list[str] | None = None) -> BoxIndex:
    """Read a YOLO folder pair: ``labels_dir/<stem>.txt`` lines ``class cx cy w h`` (0-1).

    Class names come from ``class_names``, ``classes.txt`` or ``data.yaml`` (``names``) next to
    the folders, else ``class0..``; an image without a label file has no boxes.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    names = class_names or _yolo_names(labels_dir.parent)
    cleaner = _Cleaner(on_box_outside)
    records, seen = [], 0
    for i, img in enumerate(sorted(p for p in images_dir.iterdir()
                                   if p.suffix.lower() in _IMAGE_SUFFIXES)):
        w, h = _image_size(img)
        boxes, labels = [], []
        txt = labels_dir / f"{img.stem}.txt"
        lines = txt.read_text().splitlines() if txt.is_file() else []
        for n, line in enumerate(lines, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                cls, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
            except (ValueError, TypeError):
                raise DataError(f"{txt}:{n}: expected 'class cx cy w h', got {line!r}") from None
            if cls < 0 or (names is not None and cls >= len(names)):
                raise DataError(f"{txt}:{n}: unknown class index {cls}; classes are 0.."
                                f"{len(names or []) - 1} ({names})")
            seen = max(seen, cls + 1)
            boxes.append([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                          (cy + bh / 2) * h])
            labels.append(cls + 1)
        records.append(cleaner.record(img, w, h, boxes, labels, [0] * len(labels), i))
    return BoxIndex(records, names or [f"class{k}" for k in range(seen)], cleaner.report)


# -- Pascal VOC ----------------------------------------------------------------------------
def _voc_objects(xml: Path) -> tuple[str, int, int, list[tuple[str, list[float], int]]]:
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError as exc:
        raise DataError(f"{xml}: not valid VOC XML ({exc})") from None
    size = root.find("size")
    if size is None:
        raise DataError(f"{xml}: no <size> element")
    w, h = int(float(size.findtext("width", "0"))), int(float(size.findtext("height", "0")))
    objs = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            raise DataError(f"{xml}: an <object> has no <bndbox>")
        # VOC pixel indices are 1-based and inclusive: x1 = xmin - 1, x2 = xmax
        box = [float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax")]
        box = [box[0] - 1, box[1] - 1, box[2], box[3]]
        objs.append((str(obj.findtext("name", "")).strip(), box,
                     int(float(obj.findtext("difficult", "0") or 0))))
    return str(root.findtext("filename", "")), w, h, objs


def read_voc(images_dir: str | os.PathLike[str], annotations_dir: str | os.PathLike[str], *,
             on_box_outside: str = "clip", class_names: list[str] | None = None,
             ids: list[str] | None = None) -> BoxIndex:
    """Read Pascal VOC XML files (``difficult`` objects become crowd boxes: ignored by mAP).

    Class names: ``class_names`` or every ``<name>`` found, sorted; ``ids`` limits the files
    (an ``ImageSets/Main/<split>.txt`` list).
    """
    images_dir, ann_dir = Path(images_dir), Path(annotations_dir)
    files = ([ann_dir / f"{i}.xml" for i in ids] if ids is not None
             else sorted(ann_dir.glob("*.xml")))
    parsed = [(x, *_voc_objects(x)) for x in files]
    names = list(class_names) if class_names else sorted({o[0] for p in parsed for o in p[4]})
    cleaner = _Cleaner(on_box_outside)
    records = []
    for i, (xml, fname, w, h, objs) in enumerate(parsed):
        unknown = [o[0] for o in objs if o[0] not in names]
        if unknown:
            raise DataError(f"{xml}: unknown class {unknown[0]!r}; classes are {names}")
        path = images_dir / fname if fname else images_dir / f"{xml.stem}.jpg"
        if not path.is_file():
            cands = [p for p in images_dir.glob(f"{xml.stem}.*") if p.suffix.lower()
                     in _IMAGE_SUFFIXES]
            if not cands:
                raise DataError(f"{xml}: image {path.name} not found in {images_dir}")
            path = cands[0]
        if not w or not h:
            w, h = _image_size(path)
        records.append(cleaner.record(path, w, h, [o[1] for o in objs],
                                      [names.index(o[0]) + 1 for o in objs],
                                      [o[2] for o in objs], i))
    return BoxIndex(records, names, cleaner.report)

"""COCO, YOLO and VOC readers give the same boxes; the bad-input policy does what it says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionforge.data.boxes import read_coco, read_voc, read_yolo
from visionforge.data.detection import (
    DetectionDataset,
    detection_collate,
    detection_transforms,
    find_detection_sources,
    read_detection_splits,
)
from visionforge.errors import DataError

W, H = 40, 30
#: image name -> [(class index 0-based, x1, y1, x2, y2)]
OBJECTS = {"a.png": [(0, 2, 3, 12, 13), (1, 20, 5, 38, 25)], "b.png": [(1, 5, 5, 15, 20)],
           "empty.png": []}
NAMES = ["cat", "dog"]


def _images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in OBJECTS:
        Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(folder / name)


def _coco(root: Path, objects=OBJECTS, cat_ids=(7, 9)) -> Path:
    _images(root / "images")
    images, anns = [], []
    for i, (name, objs) in enumerate(objects.items(), 1):
        images.append({"id": i, "file_name": name, "width": W, "height": H})
        for c, x1, y1, x2, y2 in objs:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": cat_ids[c],
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0})
    cats = [{"id": cat_ids[k], "name": n} for k, n in enumerate(NAMES)]
    path = root / "annotations.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _yolo(root: Path) -> None:
    _images(root / "images")
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("\n".join(NAMES))
    for name, objs in OBJECTS.items():
        if objs:
            lines = [f"{c} {(x1 + x2) / 2 / W} {(y1 + y2) / 2 / H} {(x2 - x1) / W} {(y2 - y1) / H}"
                     for c, x1, y1, x2, y2 in objs]
            (root / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines))


def _voc(root: Path) -> None:
    _images(root / "JPEGImages")
    (root / "Annotations").mkdir()
    for name, objs in OBJECTS.items():
        body = "".join(f"<object><name>{NAMES[c]}</name><difficult>0</difficult><bndbox>"
                       f"<xmin>{x1 + 1}</xmin><ymin>{y1 + 1}</ymin><xmax>{x2}</xmax>"
                       f"<ymax>{y2}</ymax></bndbox></object>" for c, x1, y1, x2, y2 in objs)
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{W}</width><height>{H}"
            f"</height><depth>3</depth></size>{body}</annotation>")


def _by_name(index) -> dict[str, tuple[list, list]]:
    return {r.path.name: (r.boxes.tolist(), r.labels.tolist()) for r in index.records}


def test_three_formats_read_the_same_boxes(tmp_path):
    _coco(tmp_path / "coco")
    _yolo(tmp_path / "yolo")
    _voc(tmp_path / "voc")
    coco = read_coco(tmp_path / "coco" / "images", tmp_path / "coco" / "annotations.json")
    yolo = read_yolo(tmp_path / "yolo" / "images", tmp_path / "yolo" / "labels")
    voc = read_voc(tmp_path / "voc" / "JPEGImages", tmp_path / "voc" / "Annotations")
    expected = {n: ([[float(v) for v in o[1:]] for o in objs], [o[0] + 1 for o in objs])
                for n, objs in OBJECTS.items()}
    for index in (coco, yolo, voc):
        assert index.class_names == NAMES
        got = _by_name(index)
        assert set(got) == set(expected)
        for name, (boxes, labels) in expected.items():
            assert labels == got[name][1]
            np.testing.assert_allclose(np.array(got[name][0]).reshape(-1, 4),
                                       np.array(boxes).reshape(-1, 4), atol=1e-4)
        assert index.report["images_without_boxes"] == 1 and index.report["boxes"] == 3
    assert {s: v[0] for s, v in find_detection_sources(tmp_path / "yolo").items()} == {
        "all": "yolo"}
    assert find_detection_sources(tmp_path / "voc")["all"][0] == "voc"


def test_bad_input_policy(tmp_path):
    objs = {"a.png": [(0, -5, 2, 10, 40), (1, 3, 3, 3, 9)], "b.png": [], "empty.png": []}
    ann = _coco(tmp_path, objs)
    index = read_coco(tmp_path / "images", ann)
    rec = next(r for r in index.records if r.path.name == "a.png")
    assert rec.boxes.tolist() == [[0.0, 2.0, 10.0, float(H)]]  # clipped to the image
    assert index.report["clipped_boxes"] == 1
    assert len(index.report["dropped_zero_area"]) == 1  # the zero-width box, with its file
    assert index.report["dropped_zero_area"][0]["file"].endswith("a.png")
    assert index.report["images_without_boxes"] == 2
    with pytest.raises(DataError, match=r"a\.png.*outside"):
        read_coco(tmp_path / "images", ann, on_box_outside="error")


def test_unknown_category_is_a_clear_error(tmp_path):
    ann = _coco(tmp_path)
    data = json.loads(ann.read_text())
    data["annotations"][0]["category_id"] = 123
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="unknown category_id 123"):
        read_coco(tmp_path / "images", ann)
    _yolo(tmp_path / "y")
    (tmp_path / "y" / "labels" / "b.txt").write_text("5 0.5 0.5 0.1 0.1")
    with pytest.raises(DataError, match=r"b\.txt:1: unknown class index 5"):
        read_yolo(tmp_path / "y" / "images", tmp_path / "y" / "labels")


def test_dataset_transforms_keep_boxes_with_the_image(tmp_path):
    _coco(tmp_path)
    splits, names = read_detection_splits(tmp_path, ratios=(1.0, 0.0, 0.0))
    assert names == NAMES and len(splits["train"].records) == 3
    ds = DetectionDataset(splits["train"].records, names, detection_transforms(24, train=True))
    batch = detection_collate([ds[i] for i in range(len(ds))])
    assert tuple(batch["image"].shape) == (3, 3, 24, 24)
    for t in batch["targets"]:
        b = t["boxes"]
        assert len(b) == len(t["labels"]) == len(t["iscrowd"])
        assert (b[:, 2] > b[:, 0]).all() and (b[:, :2] >= 0).all() and (b[:, 2:] <= 24).all()

"""Tissue composition and object counts on a hand-made label map."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from visionforge.errors import DataError
from visionforge.evaluation import object_counts, tissue_composition


@pytest.fixture
def label_dir(tmp_path):
    a = np.zeros((10, 10), np.uint8)
    a[0:2, 0:2] = 1  # object of 4 px
    a[5:8, 5:8] = 1  # object of 9 px
    a[9, 9] = 1  # object of 1 px (below min_size 2)
    a[0:5, 6:10] = 2  # 20 px of class 2
    Image.fromarray(a).save(tmp_path / "img_a.png")
    b = np.full((4, 5), 2, np.uint16)
    np.save(tmp_path / "img_b.npy", b.astype(np.int64))
    return tmp_path


def test_tissue_composition_csv(label_dir, tmp_path):
    out = tmp_path / "out" / "composition.csv"
    rows = tissue_composition(label_dir, out, class_names=["bg", "gland", "stroma"])
    a = rows[0]
    assert a["image"] == "img_a.png"
    assert (a["bg_pixels"], a["gland_pixels"], a["stroma_pixels"]) == (66, 14, 20)
    assert a["tissue_pixels"] == 34
    assert a["gland_percent"] == pytest.approx(100 * 14 / 34, abs=1e-3)
    assert a["gland_percent"] + a["stroma_percent"] == pytest.approx(100)
    assert rows[1]["stroma_percent"] == 100.0 and rows[1]["gland_pixels"] == 0
    with open(out) as fh:
        table = list(csv.DictReader(fh))
    assert [r["image"] for r in table] == ["img_a.png", "img_b.npy"]
    assert int(table[0]["stroma_pixels"]) == 20


def test_object_counts_csv(label_dir, tmp_path):
    out = tmp_path / "objects.csv"
    rows = object_counts(
        label_dir, ["gland", 2], out, class_names=["bg", "gland", "stroma"], min_size=2
    )
    a_gland = rows[0]
    assert a_gland["class"] == "gland" and a_gland["count"] == 2 and a_gland["sizes"] == [9, 4]
    assert rows[1]["count"] == 1 and rows[1]["sizes"] == [20]
    with open(out) as fh:
        table = list(csv.DictReader(fh))
    assert table[0]["sizes"] == "9;4"
    all_sizes = object_counts(label_dir, [1], min_size=1)[0]
    assert all_sizes["count"] == 3


def test_quantification_errors(tmp_path):
    with pytest.raises(DataError, match="no label maps"):
        tissue_composition(tmp_path)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8) + np.array([1, 2, 3], np.uint8)).save(
        tmp_path / "rgb.png"
    )
    with pytest.raises(DataError, match="rgb.png"):
        tissue_composition(tmp_path)

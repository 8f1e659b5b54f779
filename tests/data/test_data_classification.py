"""ClassificationDataset: layouts, bad-input policies and split manifests."""

from __future__ import annotations

import json

import pytest
import torch

from visionforge.data import (
    ClassificationDataset,
    kfold_indices,
    materialize,
    read_manifest,
    split_dataset,
)
from visionforge.errors import DataError


def test_data_class_folder_dataset(class_folder):
    ds = ClassificationDataset(class_folder, return_path=True)
    assert ds.classes == ["cat", "dog", "fish"]
    assert ds.class_to_idx == {"cat": 0, "dog": 1, "fish": 2}
    assert len(ds) == 25 and ds.class_counts() == {"cat": 10, "dog": 10, "fish": 5}
    s = ds[24]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 16, 16)
    assert s["label"].dtype == torch.int64 and int(s["label"]) == 2
    assert s["path"].endswith("fish_04.png")


def test_data_corrupt_image_error_and_skip(class_folder):
    bad = class_folder / "dog" / "dog_99.png"
    bad.write_bytes(b"garbage")
    ds = ClassificationDataset(class_folder)  # error mode: fails when the file is read
    idx = [str(p) for p, _ in ds.samples].index(str(bad))
    with pytest.raises(DataError, match=r"dog_99.png: cannot decode image"):
        ds[idx]
    with pytest.raises(DataError, match=r"dog_99.png"):
        ClassificationDataset(class_folder, verify=True)
    skipping = ClassificationDataset(class_folder, on_bad_image="skip")
    assert len(skipping) == 25
    assert [s["path"] for s in skipping.skipped] == [str(bad)]
    assert "cannot decode" in skipping.skipped[0]["reason"]
    assert skipping.report()["skipped"] == skipping.skipped
    with pytest.raises(Exception, match="on_bad_image"):
        ClassificationDataset(class_folder, on_bad_image="blank")


def test_data_empty_class_folder_and_empty_dataset(tmp_path, class_folder):
    (class_folder / "zebra").mkdir()
    with pytest.raises(DataError, match=r"zebra: class folder 'zebra' has no images"):
        ClassificationDataset(class_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders found"):
        ClassificationDataset(empty)
    with pytest.raises(DataError, match="dataset folder not found"):
        ClassificationDataset(tmp_path / "nope")
    onlybad = tmp_path / "onlybad" / "a"
    onlybad.mkdir(parents=True)
    (onlybad / "x.png").write_bytes(b"bad")
    with pytest.raises(DataError, match="empty"):
        ClassificationDataset(onlybad.parent, on_bad_image="skip")


def test_data_manifest_is_stratified_and_deterministic(tmp_path, class_folder):
    m1 = split_dataset(class_folder, tmp_path / "a.csv", seed=3)
    m2 = split_dataset(class_folder, tmp_path / "b.csv", seed=3)
    m3 = split_dataset(class_folder, tmp_path / "c.csv", seed=4)
    assert m1.read_bytes() == m2.read_bytes()
    assert m1.read_bytes() != m3.read_bytes()
    records = read_manifest(m1)
    per = {(r["label"], r["split"]): 0 for r in records}
    for r in records:
        per[(r["label"], r["split"])] += 1
    assert per[("cat", "train")] == 8 and per[("cat", "val")] == 1 and per[("cat", "test")] == 1
    assert per[("fish", "train")] == 4
    assert all(not r["path"].startswith("/") for r in records)  # relative: folder can move
    # no files were copied
    assert sorted(p.name for p in class_folder.iterdir()) == ["cat", "dog", "fish"]
    jm = split_dataset(class_folder, tmp_path / "m.json", seed=3)
    assert [(r["path"], r["split"]) for r in json.loads(jm.read_text())] == [
        (r["path"], r["split"]) for r in records
    ]
    train = ClassificationDataset(class_folder, "train", manifest=m1)
    val = ClassificationDataset(class_folder, "val", manifest=m1)
    test = ClassificationDataset(class_folder, "test", manifest=m1)
    assert (len(train), len(val), len(test)) == (20, 3, 2)
    assert train.classes == val.classes == ["cat", "dog", "fish"]
    assert not {p for p, _ in train.samples} & {p for p, _ in val.samples}


def test_data_default_manifest_split_folders_and_materialize(tmp_path, class_folder):
    with pytest.raises(DataError, match="visionforge data split"):
        ClassificationDataset(class_folder, "train")
    manifest = split_dataset(class_folder)
    assert manifest == class_folder / "splits.csv"
    assert len(ClassificationDataset(class_folder, "val")) == 3
    out = materialize(manifest, tmp_path / "copied", root=class_folder)
    assert len(list((out / "train").rglob("*.png"))) == 20
    ds = ClassificationDataset(out, "val")
    assert ds.classes == ["cat", "dog", "fish"] and len(ds) == 3
    with pytest.raises(DataError, match="pass split='train'"):
        ClassificationDataset(out)


def test_data_kfold_indices_cover_everything_once(class_folder):
    ds = ClassificationDataset(class_folder)
    folds = kfold_indices(ds.targets, k=5, seed=0)
    seen = sorted(i for _, val in folds for i in val)
    assert seen == list(range(len(ds)))
    assert kfold_indices(ds.targets, k=5, seed=0)[0][1].tolist() == folds[0][1].tolist()

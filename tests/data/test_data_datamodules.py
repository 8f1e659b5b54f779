"""Datamodules: local roots only, clear messages for missing data, loader defaults, safe CIFAR."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from visionforge.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    COCOSegmentationDataModule,
    ImageFolderDataModule,
    ImageNetDataModule,
    SegmentationDataModule,
    SignalDataModule,
    loader_kwargs,
)
from visionforge.data.cifar import safe_unpickle
from visionforge.errors import DataError
from visionforge.registry import DATAMODULES


def test_data_loader_defaults(monkeypatch):
    kw = loader_kwargs()
    assert 1 <= kw["num_workers"] <= 8 and kw["persistent_workers"] and kw["prefetch_factor"] >= 2
    assert kw["pin_memory"] == torch.cuda.is_available()
    assert loader_kwargs(num_workers=0) == {
        "num_workers": 0,
        "pin_memory": torch.cuda.is_available(),
    }


def test_data_image_folder_datamodule_zero_workers(tmp_path, class_folder):
    dm = DATAMODULES.build(
        "image_folder",
        class_folder,
        batch_size=4,
        image_size=16,
        num_workers=0,
        manifest_out=tmp_path / "run" / "splits.csv",
    )
    assert isinstance(dm, ImageFolderDataModule)
    dm.setup("fit")
    assert dm.num_classes == 3 and dm.class_names == ["cat", "dog", "fish"]
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (20, 3, 2)
    assert (tmp_path / "run" / "splits.csv").is_file()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["label"].shape == (4,)
    assert next(iter(dm.val_dataloader()))["image"].dtype == torch.float32


def test_data_segmentation_and_signal_datamodules(seg_folder):
    dm = SegmentationDataModule(
        seg_folder, num_classes=3, batch_size=2, image_size=16, num_workers=0, ratios=(0.5, 0.5, 0)
    )
    b = next(iter(dm.train_dataloader()))
    assert b["image"].shape == (2, 3, 16, 16) and b["mask"].shape == (2, 16, 16)
    assert len(dm.train_set) == 3 and len(dm.val_set) == 3 and dm.test_set is None
    x = np.random.default_rng(0).normal(size=(30, 3, 20)).astype(np.float32)
    y = np.array([0] * 24 + [1] * 6)
    from visionforge.data import SignalDataset

    sdm = SignalDataModule(train=SignalDataset(x, y), batch_size=10, balanced=True, num_workers=0)
    xb, yb, ids = next(iter(sdm.train_dataloader()))
    assert xb.shape == (10, 3, 20) and yb.dtype == torch.int64 and len(ids) == 10


def test_data_missing_roots_say_where_to_put_files(tmp_path):
    cases = [
        (
            CIFAR10DataModule(tmp_path / "c10"),
            r"CIFAR10 not found at .*c10.*cifar-10-batches-py.*never downloads",
        ),
        (CIFAR100DataModule(tmp_path / "c100"), r"cifar-100-python"),
        (ImageNetDataModule(tmp_path / "inet"), r"ImageNet train folder not found .*train/<wnid>"),
        (
            COCOSegmentationDataModule(tmp_path / "coco"),
            r"COCO dataset not found .*annotations/instances_train2017.json",
        ),
        (ImageFolderDataModule(tmp_path / "imgs"), r"image folder dataset not found"),
        (SegmentationDataModule(tmp_path / "seg", num_classes=2), r"images/\* \+ .*masks/\*"),
    ]
    for dm, pattern in cases:
        with pytest.raises(DataError, match=pattern):
            dm.setup()
    (tmp_path / "c10").mkdir()
    with pytest.raises(
        DataError, match=r"data_batch_1 not found. Download .*cifar-10-python.tar.gz"
    ):
        CIFAR10DataModule(tmp_path / "c10").setup()


def _write_cifar(
    root,
    n=20,
    batches=(
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ),
):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in batches:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [i % 10 for i in range(n)],
            b"batch_label": name.encode(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return folder


def test_data_cifar_python_batches_read_with_restricted_unpickler(tmp_path):
    _write_cifar(tmp_path)
    dm = CIFAR10DataModule(tmp_path, batch_size=8, num_workers=0, val_fraction=0.1)
    dm.setup()
    assert dm.class_names[:2] == ["c0", "c1"] and len(dm.test_set) == 20
    assert len(dm.train_set) + len(dm.val_set) == 100
    s = dm.test_set[3]
    assert s["image"].shape == (3, 32, 32) and int(s["label"]) == 3

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil").write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DataError, match=r"refused .*builtins.print is not allowed"):
        safe_unpickle(tmp_path / "evil")


def test_data_coco_segmentation_polygons(tmp_path, write_image, rgb):
    write_image(tmp_path / "images" / "train2017" / "a.jpg", rgb(0, 20))
    ann = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 20, "width": 20}],
        "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 18,
                "area": 100,
                "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 3,
                "area": 4,
                "iscrowd": 1,
                "segmentation": {"size": [20, 20], "counts": [15 * 20 + 15, 2, 18, 2, 20 * 20]},
            },
        ],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").write_text(json.dumps(ann))
    dm = COCOSegmentationDataModule(tmp_path, batch_size=1, image_size=20, num_workers=0)
    dm.setup()
    assert dm.class_names == ["background", "car", "dog"]
    ds = dm.train_set
    ds.transform = None
    mask = ds[0]["mask"]
    assert mask[2:9, 2:9].eq(2).all() and mask[15:17, 15:17].eq(1).all() and mask[12, 2] == 0

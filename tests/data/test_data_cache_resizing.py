"""Decoded-image cache (memory and disk, npy without pickle) and in-place image resizing."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from visionforge.data import ClassificationDataset
from visionforge.data.cache import DecodedCache, make_cache
from visionforge.data.datamodules import ImageFolderDataModule, SegmentationDataModule
from visionforge.data.resizing import set_image_size
from visionforge.errors import ConfigError


def _count_decodes(monkeypatch, module):
    calls = []
    real = module.decode_image

    def counting(path, channels=3):
        calls.append(str(path))
        return real(path, channels)

    monkeypatch.setattr(module, "decode_image", counting)
    return calls


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_cache_decodes_each_file_once_and_gives_same_samples(class_folder, tmp_path, monkeypatch,
                                                             mode):
    import visionforge.data.classification as cls_mod

    plain = ClassificationDataset(class_folder)
    cached = ClassificationDataset(class_folder, cache=DecodedCache(mode, tmp_path / "c"))
    calls = _count_decodes(monkeypatch, cls_mod)
    for _ in range(3):  # three "epochs"
        for i in range(len(cached)):
            assert torch.equal(cached[i]["image"], plain[i]["image"])
    n = len(cached)
    # plain decodes every time (3n); the cached dataset once per file (n)
    assert len(calls) == 3 * n + n
    assert cached.cache.misses == n and cached.cache.hits == 2 * n
    if mode == "disk":
        files = list((tmp_path / "c").rglob("*.npy"))
        assert len(files) == n
        # raw arrays: loadable without pickle
        assert np.load(files[0], allow_pickle=False).dtype == np.uint8


def test_disk_cache_survives_a_damaged_entry_and_notices_edited_files(tmp_path, write_image, rgb):
    img = write_image(tmp_path / "a" / "x.png", rgb(1))
    cache = DecodedCache("disk", tmp_path / "c")
    first = cache.get(img, lambda: rgb(1))
    entry = next((tmp_path / "c").rglob("*.npy"))
    entry.write_bytes(b"not an npy file")
    again = cache.get(img, lambda: rgb(1))  # unreadable entry: decoded again, rewritten
    assert np.array_equal(first, again)
    assert np.load(entry, allow_pickle=False).shape == first.shape
    write_image(img, rgb(2))
    os.utime(img, ns=(1, 10**9 + 12345))  # another size/mtime is another key
    assert np.array_equal(cache.get(img, lambda: rgb(2)), rgb(2))


def test_disk_cache_refuses_pickled_entries(tmp_path, write_image, rgb):
    img = write_image(tmp_path / "x.png", rgb(1))
    cache = DecodedCache("disk", tmp_path / "c")
    f = cache._file(cache.key(img))
    f.parent.mkdir(parents=True)
    np.save(f, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    out = cache.get(img, lambda: rgb(1))  # object array is not loaded; decoded instead
    assert out.dtype == np.uint8


def test_cache_setting_errors_and_none():
    assert make_cache("none") is None and make_cache(None) is None
    with pytest.raises(ConfigError, match="memory, disk|none, memory, disk"):
        make_cache("ram")


def test_datamodules_take_cache_setting(class_folder, seg_folder, tmp_path):
    dm = ImageFolderDataModule(class_folder, batch_size=4, image_size=8, num_workers=0,
                               cache="disk", cache_dir=tmp_path / "c")
    next(iter(dm.train_dataloader()))
    assert dm.train_set.cache is dm.val_set.cache and dm.train_set.cache.mode == "disk"
    seg = SegmentationDataModule(seg_folder, batch_size=2, image_size=8, num_workers=0,
                                 cache="memory")
    b = next(iter(seg.train_dataloader()))
    assert b["image"].shape[-2:] == (8, 8) and len(seg.cache) >= 2  # images and masks cached


def test_run_config_data_cache_reaches_datamodule(class_folder, tmp_path):
    from visionforge.config.loader import compose_config
    from visionforge.workflows.data_setup import prepare_data

    cfg = compose_config([f"data.root={class_folder}", "data.cache=memory"], env={}).cfg
    data = prepare_data(cfg.data, None)
    assert data.train.cache.mode == "memory"


def test_set_image_size_changes_train_transform_in_place(class_folder, seg_folder):
    dm = ImageFolderDataModule(class_folder, batch_size=4, image_size=16, num_workers=0)
    assert set_image_size(dm, 8) == 1
    assert dm.image_size == [8, 8]
    assert next(iter(dm.train_dataloader()))["image"].shape[-2:] == (8, 8)
    assert next(iter(dm.val_dataloader()))["image"].shape[-2:] == (16, 16)  # eval unchanged
    seg = SegmentationDataModule(seg_folder, batch_size=2, image_size=16, num_workers=0)
    assert set_image_size(seg.train_dataloader(), 8) >= 1
    b = next(iter(seg.train_dataloader()))
    assert b["image"].shape[-2:] == (8, 8) and b["mask"].shape[-2:] == (8, 8)
    with pytest.raises(ConfigError, match="square"):  # rot90 augmentation swaps h and w
        set_image_size(seg, (8, 12))
    with pytest.raises(ConfigError, match="image size"):
        set_image_size(dm, 0)

"""SegmentationDataset: pairing, validation with file names, colour masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visionforge.data import SegmentationDataset
from visionforge.errors import DataError


def test_data_segmentation_pairs(seg_folder):
    ds = SegmentationDataset(
        seg_folder / "images", seg_folder / "masks", num_classes=3, validate="full"
    )
    assert len(ds) == 6
    s = ds[0]
    assert s["image"].dtype == torch.float32 and s["image"].shape == (3, 16, 16)
    assert s["mask"].dtype == torch.int64 and s["mask"].shape == (16, 16)
    assert set(s["mask"].unique().tolist()) == {0, 1, 2}
    assert ds.class_histogram() == {0: 6 * (256 - 48 - 36), 1: 6 * 48, 2: 6 * 36}


def test_data_missing_mask_partner(seg_folder):
    (seg_folder / "masks" / "s3.png").unlink()
    with pytest.raises(DataError, match=r"1 images have no mask .*s3.png"):
        SegmentationDataset(seg_folder / "images", seg_folder / "masks")
    (seg_folder / "images" / "s3.png").unlink()
    (seg_folder / "masks" / "orphan.png").write_bytes(
        (seg_folder / "masks" / "s0.png").read_bytes()
    )
    with pytest.raises(DataError, match=r"masks have no image .*orphan.png"):
        SegmentationDataset(seg_folder / "images", seg_folder / "masks")


def test_data_mask_size_mismatch(seg_folder, write_image):
    write_image(seg_folder / "masks" / "s2.png", np.zeros((12, 16), np.uint8))
    with pytest.raises(DataError, match=r"s2.png is 16x16 but mask s2.png is 12x16"):
        SegmentationDataset(seg_folder / "images", seg_folder / "masks")


def test_data_mask_value_out_of_range(seg_folder, write_image):
    m = np.zeros((16, 16), np.uint8)
    m[0, 0] = 7
    m[1, 1] = 255
    write_image(seg_folder / "masks" / "s4.png", m)
    with pytest.raises(DataError, match=r"s4.png: mask values \[7, 255\] are outside \[0, 3\)"):
        SegmentationDataset(
            seg_folder / "images", seg_folder / "masks", num_classes=3, validate="full"
        )
    ds = SegmentationDataset(seg_folder / "images", seg_folder / "masks", num_classes=3)
    with pytest.raises(DataError, match=r"s4.png: mask values \[7\]"):
        SegmentationDataset(
            seg_folder / "images", seg_folder / "masks", num_classes=3, ignore_index=255
        )[4]
    with pytest.raises(DataError, match="s4.png"):
        ds[4]  # checked on load too, without validate="full"
    ok = SegmentationDataset(
        seg_folder / "images", seg_folder / "masks", num_classes=8, ignore_index=255
    )
    assert int(ok[4]["mask"][1, 1]) == 255


def test_data_rgb_colour_masks(tmp_path, write_image, rgb):
    colours = {(0, 0, 0): 0, (255, 0, 0): 1, (0, 0, 255): 2}
    for i in range(2):
        write_image(tmp_path / "img" / f"a{i}.jpg", rgb(i))
        m = np.zeros((16, 16, 3), np.uint8)
        m[:8] = (255, 0, 0)
        m[8:, 8:] = (0, 0, 255)
        write_image(tmp_path / "msk" / f"a{i}_mask.png", m)
    ds = SegmentationDataset(
        tmp_path / "img", tmp_path / "msk", num_classes=3, color_map=colours, mask_suffix="_mask"
    )
    mask = ds[1]["mask"]
    assert mask[:8].eq(1).all() and mask[8:, 8:].eq(2).all() and mask[8:, :8].eq(0).all()


def test_data_segmentation_skip_unreadable(seg_folder):
    (seg_folder / "images" / "s5.png").write_bytes(b"broken")
    ds = SegmentationDataset(seg_folder / "images", seg_folder / "masks", on_bad_image="skip")
    assert len(ds) == 5 and ds.skipped[0]["path"].endswith("s5.png")

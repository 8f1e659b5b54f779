"""Large image -> training tiles: modern (balanced canvases) and simple (grid), lazily read."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile
from PIL import Image

from visionforge.data import LazyImage, make_tiles
from visionforge.errors import DataError


def _imbalanced(tmp_path, size=256):
    """Class 1 covers most of the image, classes 2 and 3 are small islands; 0 = unannotated."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[:, : size * 3 // 4] = 1
    mask[20:50, 200:240] = 2
    mask[150:165, 210:225] = 3
    mask[100:110, 5:20] = 2
    img[mask == 2] = (250, 10, 10)
    ipath, mpath = tmp_path / "big.tif", tmp_path / "big_mask.tif"
    tifffile.imwrite(ipath, img)
    tifffile.imwrite(mpath, mask)
    return ipath, mpath


def _balance(counts, classes=(1, 2, 3)):
    vals = [counts.get(c, 0) for c in classes]
    return min(vals) / max(vals)


def test_data_tiles_modern_balanced_filled_deterministic(tmp_path):
    pair = _imbalanced(tmp_path)
    r1 = make_tiles([pair], tmp_path / "t1", "modern", 64, seed=7, num_tiles=5)
    r2 = make_tiles([pair], tmp_path / "t2", "modern", 64, seed=7, num_tiles=5)
    assert r1.num_tiles == r2.num_tiles == {"train": 5, "val": 1}
    assert r1.counts_after == r2.counts_after
    masks = sorted((tmp_path / "t1" / "train" / "masks").glob("*.png"))
    assert len(masks) == 5
    for m in masks:
        arr = np.asarray(Image.open(m))
        assert arr.shape == (64, 64)
        assert np.mean(arr != 0) >= 0.55  # canvas filled to >= 55 % before background
        other = tmp_path / "t2" / "train" / "masks" / m.name
        assert m.read_bytes() == other.read_bytes()  # same seed, same tiles
    for img in (tmp_path / "t1" / "train" / "images").glob("*.png"):
        assert img.read_bytes() == (tmp_path / "t2" / "train" / "images" / img.name).read_bytes()
    assert r1.counts_before[1] > 10 * r1.counts_before[3]
    assert _balance(r1.counts_after["train"]) > 3 * _balance(r1.counts_before)
    assert (tmp_path / "t1" / "tiles_report.json").is_file()
    r3 = make_tiles([pair], tmp_path / "t3", "modern", 64, seed=8, num_tiles=5)
    assert r3.counts_after != r1.counts_after


def test_data_tiles_simple_grid_and_min_fraction(tmp_path):
    pair = _imbalanced(tmp_path)
    r = make_tiles(
        [pair], tmp_path / "s", "simple", 64, overlap=0, min_fraction=0.5, val_fraction=0.0
    )
    # 4x4 grid; the last column (x >= 192) is only partly annotated
    names = sorted(p.stem for p in (tmp_path / "s" / "train" / "images").glob("*.png"))
    assert r.num_tiles["train"] == len(names) == 12 + 0  # columns x=0,64,128 of 4 rows
    assert all(not n.endswith("x192") for n in names)
    low = make_tiles(
        [pair], tmp_path / "s2", "simple", 64, overlap=32, min_fraction=0.01, val_fraction=0.0
    )
    m = tifffile.imread(pair[1])
    expected = sum(
        np.mean(m[y : y + 64, x : x + 64] != 0) >= 0.01
        for y in range(0, 193, 32)
        for x in range(0, 193, 32)
    )
    assert 40 < expected < 49  # stride 32 gives 7 x 7 positions; a few are unannotated
    assert low.num_tiles["train"] == expected
    tile = np.asarray(Image.open(tmp_path / "s" / "train" / "images" / f"{names[0]}.png"))
    full = tifffile.imread(pair[0])
    y, x = (int(v[1:]) for v in names[0].split("_")[-2:])
    assert np.array_equal(tile, full[y : y + 64, x : x + 64])
    assert sum(r.counts_after["train"].values()) == 12 * 64 * 64
    with pytest.raises(DataError, match="min_fraction"):
        make_tiles([pair], tmp_path / "s3", "simple", 64, min_fraction=1.01)


def test_data_tiles_read_windows_not_whole_image(tmp_path):
    """A 3 MB memory-mapped TIFF is tiled while numpy never holds more than a few windows."""
    size = 1024
    img = np.lib.format.open_memmap(tmp_path / "scratch.npy", "w+", np.uint8, (size, size, 3))
    img[:] = 7
    tifffile.imwrite(tmp_path / "huge.tif", img)
    mask = np.zeros((size, size), np.uint8)
    mask[:, :512] = 1
    mask[:64, 512:] = 2
    tifffile.imwrite(tmp_path / "huge_mask.tif", mask)
    del img, mask
    with LazyImage(tmp_path / "huge.tif") as lazy:
        assert lazy.mode == "memmap" and lazy.shape == (size, size, 3)
    tracemalloc.start()
    try:
        r = make_tiles(
            [(tmp_path / "huge.tif", tmp_path / "huge_mask.tif")],
            tmp_path / "out",
            "simple",
            128,
            min_fraction=0.2,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # left half (8 rows x 4 columns) + the top row of the right half (50 % class 2)
    assert r.num_tiles["train"] + r.num_tiles["val"] == 8 * 4 + 4
    assert r.max_window_pixels <= 256 * 256
    assert peak < size * size * 3 / 4, f"peak {peak} bytes: the image was read whole"


def test_data_lazy_reads_compressed_tiled_tiff_windows(tmp_path):
    arr = (np.arange(200 * 300 * 3) % 251).astype(np.uint8).reshape(200, 300, 3)
    tifffile.imwrite(tmp_path / "tiled.tif", arr, tile=(64, 64), compression="zlib")
    with LazyImage(tmp_path / "tiled.tif") as lazy:
        assert lazy.mode == "segments"
        for y, x, h, w in [(0, 0, 200, 300), (37, 51, 100, 70), (190, 290, 50, 50)]:
            assert np.array_equal(lazy.read(y, x, h, w), arr[y : y + h, x : x + w])
        with pytest.raises(DataError, match="outside"):
            lazy.read(500, 0, 10, 10)

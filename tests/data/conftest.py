"""Fixtures for the data tests: tiny image folders written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)
    return path


def rgb(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(name="write_image")
def _write_image_fixture():
    """The ``write_image(path, array)`` helper (PNG via Pillow, TIFF via tifffile)."""
    return write_image


@pytest.fixture(name="rgb")
def _rgb_fixture():
    """The ``rgb(seed, size=16)`` helper: a random uint8 RGB array."""
    return rgb


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    """root/<cat|dog|fish>/ with 10, 10 and 5 distinct 16x16 PNGs."""
    root = tmp_path / "animals"
    seed = 0
    for cls, n in (("cat", 10), ("dog", 10), ("fish", 5)):
        for i in range(n):
            write_image(root / cls / f"{cls}_{i:02d}.png", rgb(seed))
            seed += 1
    return root


@pytest.fixture
def seg_folder(tmp_path: Path) -> Path:
    """root/images/*.png + root/masks/*.png (values 0..2), 16x16, 6 pairs."""
    root = tmp_path / "seg"
    for i in range(6):
        write_image(root / "images" / f"s{i}.png", rgb(100 + i))
        mask = np.zeros((16, 16), np.uint8)
        mask[4:12, 2:8] = 1
        mask[10:, 10:] = 2
        write_image(root / "masks" / f"s{i}.png", mask)
    return root

"""Deep Zoom (DZI) tiles of a whole slide and of its label map, for the page's slide viewer.

The arithmetic is the Deep Zoom format's (what OpenSeadragon reads): level ``max_level`` is
the full image, each level below halves it (rounding up), down to 1x1 at level 0; a level is
cut into ``tile``-pixel squares with ``overlap`` extra pixels on the sides that have a
neighbour. The slide's pixels come from :class:`visionforge.slides.reader.SlideReader`
(level-0 boxes read at the tile's downsample); the labels from the pyramidal ``labels.tif``
of ``visionforge slides segment`` (by window, never whole), coloured per class.
Written here because no maintained Python library serves DZI from our slide reader
(``openslide.deepzoom`` needs OpenSlide itself, which the default tiffslide backend avoids).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DeepZoom", "TileOutOfRange", "slide_tile", "label_tile", "png_bytes", "jpeg_bytes"]


class TileOutOfRange(ValueError):
    """A level, column or row that the Deep Zoom pyramid does not have."""


@dataclass(frozen=True)
class DeepZoom:
    """The Deep Zoom pyramid of a ``width`` x ``height`` image."""

    width: int
    height: int
    tile: int = 254
    overlap: int = 1
    fmt: str = "jpeg"

    @property
    def max_level(self) -> int:
        return max(0, math.ceil(math.log2(max(self.width, self.height, 1))))

    def scale(self, level: int) -> int:
        """Downsample of ``level`` from the full image."""
        return 2 ** (self.max_level - level)

    def level_size(self, level: int) -> tuple[int, int]:
        """``(width, height)`` of ``level``."""
        self._check_level(level)
        s = self.scale(level)
        return max(1, math.ceil(self.width / s)), max(1, math.ceil(self.height / s))

    def grid(self, level: int) -> tuple[int, int]:
        """``(columns, rows)`` of tiles at ``level``."""
        w, h = self.level_size(level)
        return math.ceil(w / self.tile), math.ceil(h / self.tile)

    def tile_box(self, level: int, col: int, row: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` in ``level`` pixels of tile ``(col, row)``, overlap included."""
        cols, rows = self.grid(level)
        if not (0 <= col < cols and 0 <= row < rows):
            raise TileOutOfRange(f"level {level} has tiles 0..{cols - 1} x 0..{rows - 1}, "
                                 f"not ({col}, {row})")
        w, h = self.level_size(level)
        x0 = col * self.tile - (self.overlap if col > 0 else 0)
        y0 = row * self.tile - (self.overlap if row > 0 else 0)
        x1 = min(w, (col + 1) * self.tile + self.overlap)
        y1 = min(h, (row + 1) * self.tile + self.overlap)
        return x0, y0, x1 - x0, y1 - y0

    def xml(self) -> str:
        """The ``.dzi`` descriptor."""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
                f'Format="{self.fmt}" Overlap="{self.overlap}" TileSize="{self.tile}">'
                f'<Size Width="{self.width}" Height="{self.height}"/></Image>\n')

    def _check_level(self, level: int) -> None:
        if not 0 <= level <= self.max_level:
            raise TileOutOfRange(f"level must be 0..{self.max_level}, got {level}")


def slide_tile(reader: object, dz: DeepZoom, level: int, col: int, row: int) -> np.ndarray:
    """RGB ``uint8`` tile of a :class:`SlideReader` (``dz`` sized as its level 0)."""
    x, y, w, h = dz.tile_box(level, col, row)
    s = dz.scale(level)
    # read_at picks the pyramid level closest to (not coarser than) the downsample
    return reader.read_at(None, (x * s, y * s, w * s, h * s), downsample=s)  # type: ignore[attr-defined]


def label_levels(path: str | Path) -> list[tuple[int, int]]:
    """``(height, width)`` of every level of a pyramidal label TIFF (level 0 first)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return [tuple(int(v) for v in lv.shape[:2]) for lv in tif.series[0].levels]  # type: ignore[misc]


def label_tile(path: str | Path, dz: DeepZoom, level: int, col: int, row: int,
               colors: Sequence[Sequence[int]], hidden: Sequence[int] = ()) -> np.ndarray:
    """RGBA ``uint8`` tile of a label TIFF (``dz`` sized as its level 0): class colours, fully
    transparent for the ``hidden`` classes (background); nearest sampling, labels are never
    averaged."""
    import tifffile

    x, y, w, h = dz.tile_box(level, col, row)
    s = dz.scale(level)
    levels = label_levels(path)
    # the coarsest stored level whose pixels are not coarser than this tile's
    k, ds = 0, 1
    for i, (lh, _) in enumerate(levels):
        d = levels[0][0] / lh
        if d <= s * 1.01:
            k, ds = i, d
    step = max(1, round(s / ds))
    lh, lw = levels[k]
    r0, c0 = min(lh - 1, int(y * s / ds)), min(lw - 1, int(x * s / ds))
    r1, c1 = min(lh, r0 + h * step), min(lw, c0 + w * step)
    try:  # a window of the level (tifffile reads only the TIFF tiles it touches)
        window = np.asarray(tifffile.imread(path, selection=(slice(r0, r1), slice(c0, c1)),
                                            level=k))
    except Exception:  # noqa: BLE001 - tifffile without zarr support: read the level, then crop
        window = np.asarray(tifffile.imread(path, level=k))[r0:r1, c0:c1]
    labels = np.zeros((h, w), np.uint8)
    sampled = window[::step, ::step][:h, :w]
    labels[: sampled.shape[0], : sampled.shape[1]] = sampled
    palette = np.zeros((256, 4), np.uint8)
    for i, c in enumerate(colors[:256]):
        palette[i] = (*[int(v) for v in c[:3]], 0 if i in hidden else 255)
    return palette[labels]


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array[..., :3]).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()

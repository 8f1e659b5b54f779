"""Windowed reading of large images, so memory is bounded by the window, not the image."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.data.images import TIFF_EXTENSIONS, read_array
from visionforge.errors import DataError

__all__ = ["LazyImage"]
_log = logging.getLogger(__name__)


class LazyImage:
    """Read rectangular windows ``[y:y+h, x:x+w]`` of a (large) image file.

    * uncompressed contiguous TIFF: a read-only memory map (``tifffile.memmap``);
    * tiled or striped compressed TIFF: only the tiles/strips that overlap the
      window are read and decoded (tifffile segment decoding);
    * anything else (PNG, JPEG, planar TIFF): decoded once in full, with a log
      message, since those formats have no random access.

    ``mode`` tells which path is used; ``max_window_pixels`` and ``windows_read``
    record the largest window and how many windows were read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: file not found")
        self.windows_read = 0
        self.max_window_pixels = 0
        self._tf: Any = None
        self._array: Any = None
        self.mode = "full"
        if self.path.suffix.lower() in TIFF_EXTENSIONS:
            self._open_tiff()
        if self._array is None and self._tf is None:
            _log.info("%s: no random access for this format; decoding it in full", self.path)
            self._array = read_array(self.path)
        if self._array is not None:
            self.height, self.width = (int(v) for v in self._array.shape[:2])
            self.channels = 1 if self._array.ndim == 2 else int(self._array.shape[2])
            self.dtype = self._array.dtype

    def _open_tiff(self) -> None:
        import tifffile

        try:
            tf = tifffile.TiffFile(self.path)
        except Exception as exc:
            raise DataError(
                f"{self.path}: cannot open TIFF ({type(exc).__name__}: {exc})"
            ) from None
        page = tf.pages[0]
        contiguous = page.planarconfig == 1 or page.samplesperpixel == 1
        if page.is_memmappable and contiguous:
            self._array = tifffile.memmap(self.path, mode="r", page=0)
            if self._array.ndim == 3 and self._array.shape[-1] == 1:
                self._array = self._array[..., 0]
            self.mode = "memmap"
            tf.close()
            return
        if contiguous and page.imagedepth == 1 and page.dataoffsets:
            self._tf, self._page = tf, page
            self.mode = "segments"
            self.height, self.width = int(page.imagelength), int(page.imagewidth)
            self.channels = int(page.samplesperpixel)
            self.dtype = page.dtype
            self._chunk = tuple(int(v) for v in page.chunks[:2])  # tile or strip height, width
            self._grid = tuple(int(v) for v in page.chunked[:2])
            return
        tf.close()

    @property
    def shape(self) -> tuple[int, ...]:
        """``(H, W)`` or ``(H, W, C)`` like the decoded image."""
        return (
            (self.height, self.width)
            if self.channels == 1
            else (self.height, self.width, self.channels)
        )

    def read(self, y: int, x: int, h: int, w: int) -> np.ndarray:
        """The window clipped to the image, as a new array ``[h, w]`` or ``[h, w, C]``."""
        y0, x0 = max(int(y), 0), max(int(x), 0)
        y1, x1 = min(int(y) + int(h), self.height), min(int(x) + int(w), self.width)
        if y1 <= y0 or x1 <= x0:
            raise DataError(f"{self.path}: window ({y}, {x}, {h}, {w}) lies outside the image")
        self.windows_read += 1
        self.max_window_pixels = max(self.max_window_pixels, (y1 - y0) * (x1 - x0))
        if self._array is not None:
            return np.array(self._array[y0:y1, x0:x1])
        return self._read_segments(y0, x0, y1, x1)

    def _read_segments(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        page, fh = self._page, self._tf.filehandle
        th, tw = self._chunk
        ny, nx = self._grid
        out = np.empty((y1 - y0, x1 - x0, self.channels), dtype=self.dtype)
        indices = [
            ty * nx + tx
            for ty in range(y0 // th, min(math.ceil(y1 / th), ny))
            for tx in range(x0 // tw, min(math.ceil(x1 / tw), nx))
        ]
        kwargs: dict[str, Any] = {"_fullsize": page.is_tiled}
        if page.compression in {6, 7, 34892, 33007}:  # JPEG variants need shared tables
            kwargs["jpegtables"] = page.jpegtables
            kwargs["jpegheader"] = page.jpegheader
        offsets = [page.dataoffsets[i] for i in indices]
        counts = [page.databytecounts[i] for i in indices]
        for data, index in fh.read_segments(offsets, counts, indices=indices, flat=True):
            seg, (_, _, sy, sx, _), _ = page.decode(data, index, **kwargs)
            seg = seg.reshape(seg.shape[-3], seg.shape[-2], -1)
            ay0, ax0 = max(sy, y0), max(sx, x0)
            ay1, ax1 = min(sy + seg.shape[0], y1), min(sx + seg.shape[1], x1)
            if ay1 > ay0 and ax1 > ax0:
                out[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0] = seg[
                    ay0 - sy : ay1 - sy, ax0 - sx : ax1 - sx
                ]
        return out[:, :, 0] if self.channels == 1 else out

    def close(self) -> None:
        """Release the file handle / memory map."""
        if self._tf is not None:
            self._tf.close()
            self._tf = None
        self._array = None

    def __enter__(self) -> LazyImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LazyImage({str(self.path)!r}, shape={self.shape}, mode={self.mode!r})"

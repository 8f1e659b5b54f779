"""One reader for whole-slide images and plain large images.

:func:`open_slide` returns a :class:`SlideReader` whatever the file: a pyramidal slide read by
tiffslide (default, pure Python: ``.svs``, ``.ndpi``, ``.scn``, ``.bif``, ``.tif``/OME-TIFF) or
OpenSlide (also ``.mrxs``, ``.vms``, ``.dcm``...), or a plain PNG/JPEG held in memory. All
coordinates given to a reader are level-0 pixels ``(x, y)``; every read returns an RGB ``uint8``
array of shape ``(h, w, 3)``; areas outside the slide read as white (background).

Working resolution is chosen as CODAvision does: :meth:`SlideReader.level_for` picks the
pyramid level closest to (but not coarser than) the target µm/px, and :meth:`SlideReader.read_at`
reads there and resizes to the exact target.

The slide libraries are imported lazily, inside the functions that need them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from visionforge.errors import ConfigError, DataError

Backend = Literal["auto", "tiffslide", "openslide", "image"]
Box = tuple[int, int, int, int]

#: suffixes read by the in-memory PIL backend (no pyramid)
PLAIN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SUPPORTED_FORMATS = (
    "pyramidal slides (.svs, .ndpi, .scn, .bif, .tif/.tiff, OME-TIFF; with openslide also "
    ".mrxs, .vms, .vmu, .svslide, .dcm) and plain images (.tif/.tiff, .png, .jpg/.jpeg)"
)
#: a plain PNG/JPEG larger than this is refused (PIL decompression-bomb guard): ~800 MB as RGB
MAX_PLAIN_IMAGE_PIXELS = 2**28


class _Backend(Protocol):
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    properties: dict[str, Any]

    def read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LevelChoice:
    """Where to read for a target resolution.

    ``level`` is the pyramid level to read, ``level_downsample`` its downsample from level 0,
    ``downsample`` the exact target downsample; pixels read at ``level`` are resized by
    ``scale = level_downsample / downsample`` (≤ 1: the level is never coarser than the target).
    """

    level: int
    level_downsample: float
    downsample: float

    @property
    def scale(self) -> float:
        return self.level_downsample / self.downsample


def _to_rgb(region: np.ndarray) -> np.ndarray:
    """RGB uint8 from RGB/RGBA/grey; transparent pixels (outside the scan) become white."""
    arr = np.asarray(region)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[2] == 4:
        rgb = arr[..., :3].copy()
        rgb[arr[..., 3] == 0] = 255
        return rgb
    return np.ascontiguousarray(arr[..., :3])


class _SlideLibBackend:
    """tiffslide or openslide: both expose the OpenSlide API."""

    def __init__(self, slide: Any) -> None:
        self._slide = slide
        self.level_dimensions = tuple(tuple(int(v) for v in d) for d in slide.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in slide.level_downsamples)
        self.properties = dict(slide.properties)

    def read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        return _to_rgb(np.asarray(self._slide.read_region(location, level, size)))

    def close(self) -> None:
        self._slide.close()


class _ImageBackend:
    """A plain PNG/JPEG decoded once into memory (single level)."""

    def __init__(self, path: Path, max_pixels: int) -> None:
        from PIL import Image

        try:
            im = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise DataError(f"{path}: {exc}; convert it to a tiled pyramidal TIFF") from None
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise DataError(
                    f"{path}: {w}x{h} = {w * h:,} pixels is over the plain-image limit of "
                    f"{max_pixels:,} (decompression-bomb guard); convert it to a tiled pyramidal "
                    "TIFF, or pass max_image_pixels= to open_slide if you trust the file"
                )
            self._image = _to_rgb(np.asarray(im.convert("RGB")))
        self.level_dimensions = ((w, h),)
        self.level_downsamples = (1.0,)
        self.properties: dict[str, Any] = {}

    def read(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
        (x, y), (w, h) = location, size
        return self._image[y:y + h, x:x + w]

    def close(self) -> None:
        self._image = np.zeros((0, 0, 3), np.uint8)


def _metadata_mpp(properties: dict[str, Any]) -> tuple[float, float] | None:
    for prefix in ("openslide", "tiffslide"):
        x, y = properties.get(f"{prefix}.mpp-x"), properties.get(f"{prefix}.mpp-y")
        try:
            mx, my = float(x), float(y if y is not None else x)
        except (TypeError, ValueError):
            continue
        if mx > 0 and my > 0:
            return mx, my
    return None


class SlideReader:
    """A slide (or large image) opened for region reads; use :func:`open_slide` to make one.

    Attributes: ``path``, ``backend`` (``tiffslide``/``openslide``/``image``),
    ``level_dimensions`` (``(width, height)`` per level), ``level_downsamples``.
    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: Path, backend_name: str, backend: _Backend,
                 mpp: float | tuple[float, float] | None = None) -> None:
        self.path = path
        self.backend = backend_name
        self._backend = backend
        self.level_dimensions: tuple[tuple[int, int], ...] = backend.level_dimensions
        self.level_downsamples: tuple[float, ...] = backend.level_downsamples
        self.properties: dict[str, Any] = backend.properties
        if mpp is not None:
            mx, my = (mpp, mpp) if isinstance(mpp, int | float) else mpp
            if not (mx > 0 and my > 0):
                raise ConfigError(f"{path}: mpp= must be positive microns per pixel, got {mpp!r}")
            self._mpp: tuple[float, float] | None = (float(mx), float(my))
            self.mpp_source = "override"
        else:
            self._mpp = _metadata_mpp(self.properties)
            self.mpp_source = "metadata" if self._mpp else "missing"

    # -- properties ---------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        """Level-0 ``(width, height)``."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    @property
    def has_mpp(self) -> bool:
        return self._mpp is not None

    @property
    def mpp_xy(self) -> tuple[float, float]:
        """Level-0 microns per pixel ``(x, y)``; a :class:`DataError` when unknown."""
        if self._mpp is None:
            raise DataError(
                f"{self.path}: the file's metadata has no microns per pixel; pass it with "
                "mpp= (e.g. open_slide(path, mpp=0.5)) or work by downsample instead of µm/px"
            )
        return self._mpp

    @property
    def mpp(self) -> float:
        """Level-0 microns per pixel (mean of x and y)."""
        mx, my = self.mpp_xy
        return (mx + my) / 2.0

    # -- reads --------------------------------------------------------------------------------
    def read_region(self, location: tuple[int, int], level: int,
                    size: tuple[int, int]) -> np.ndarray:
        """RGB uint8 ``(h, w, 3)`` of ``size=(w, h)`` level pixels starting at level-0 ``(x, y)``.

        The part outside the slide is white.
        """
        if not 0 <= level < self.level_count:
            raise ConfigError(f"{self.path}: level {level} does not exist "
                              f"(levels 0..{self.level_count - 1})")
        w, h = int(size[0]), int(size[1])
        if w <= 0 or h <= 0:
            raise ConfigError(f"{self.path}: region size must be positive, got {size!r}")
        ds = self.level_downsamples[level]
        lw, lh = self.level_dimensions[level]
        # level-pixel window, clipped to the level so no backend ever pads on its own
        lx, ly = math.floor(location[0] / ds), math.floor(location[1] / ds)
        x0, y0, x1, y1 = max(lx, 0), max(ly, 0), min(lx + w, lw), min(ly + h, lh)
        out = np.full((h, w, 3), 255, np.uint8)
        if x1 > x0 and y1 > y0:
            loc0 = (round(x0 * ds), round(y0 * ds)) if (x0, y0) != (lx, ly) else location
            part = self._backend.read((int(loc0[0]), int(loc0[1])), level, (x1 - x0, y1 - y0))
            out[y0 - ly:y1 - ly, x0 - lx:x1 - lx] = part[: y1 - y0, : x1 - x0]
        return out

    def level_for(self, mpp: float | None = None, *, downsample: float | None = None) -> LevelChoice:
        """The level to read for a target ``mpp`` (µm/px) or ``downsample`` (give exactly one).

        The coarsest level whose downsample does not exceed the target (1 % tolerance), so the
        read is resized down (never up) to the exact target.
        """
        if (mpp is None) == (downsample is None):
            raise ConfigError("level_for: give exactly one of mpp= or downsample=")
        target = float(downsample) if downsample is not None else float(mpp) / self.mpp  # type: ignore[arg-type]
        if not target > 0:
            raise ConfigError(f"{self.path}: target resolution must be positive, got {target}")
        level = 0
        for i, ds in enumerate(self.level_downsamples):
            if ds <= target * 1.01:
                level = i
        return LevelChoice(level, self.level_downsamples[level], target)

    def read_at(self, mpp: float | None, box: Box, *, downsample: float | None = None) -> np.ndarray:
        """Level-0 ``box=(x0, y0, w, h)`` resampled to exactly ``mpp`` µm/px (or ``downsample``).

        Output shape ``(round(h / d), round(w / d), 3)`` where ``d`` is the target downsample.
        """
        choice = self.level_for(mpp, downsample=downsample) if mpp is not None \
            else self.level_for(downsample=downsample)
        x0, y0, w, h = (int(v) for v in box)
        out_w, out_h = max(1, round(w / choice.downsample)), max(1, round(h / choice.downsample))
        lvl_w = max(1, math.ceil(w / choice.level_downsample))
        lvl_h = max(1, math.ceil(h / choice.level_downsample))
        region = self.read_region((x0, y0), choice.level, (lvl_w, lvl_h))
        return resize_rgb(region, (out_w, out_h))

    def thumbnail(self, max_size: int = 1024) -> np.ndarray:
        """The whole slide, longest side ``max_size`` px at most (aspect kept)."""
        w, h = self.dimensions
        ds = max(w / max_size, h / max_size, 1.0)
        return self.read_at(None, (0, 0, w, h), downsample=ds)

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> SlideReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mpp = f"{self.mpp:.4g} µm/px ({self.mpp_source})" if self.has_mpp else "µm/px unknown"
        return (f"SlideReader({str(self.path)!r}, backend={self.backend!r}, "
                f"size={self.dimensions}, levels={self.level_count}, {mpp})")


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB uint8 image to ``size=(w, h)``: area average down, bilinear up."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    from PIL import Image

    shrink = size[0] < image.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize(size, method))


def _open_backend(path: Path, name: str, max_pixels: int) -> _Backend:
    if name == "image":
        return _ImageBackend(path, max_pixels)
    if name == "tiffslide":
        import tiffslide

        return _SlideLibBackend(tiffslide.TiffSlide(path))
    import openslide

    return _SlideLibBackend(openslide.OpenSlide(path))


def _candidates(path: Path, backend: str) -> list[str]:
    if backend != "auto":
        return [backend]
    if path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
        return ["image"]
    return ["tiffslide", "openslide"]


def open_slide(path: str | Path, backend: Backend = "auto", mpp: float | None = None, *,
               max_image_pixels: int = MAX_PLAIN_IMAGE_PIXELS) -> SlideReader:
    """Open a slide or large image for reading.

    ``backend``: ``auto`` (PIL for PNG/JPEG; tiffslide, then OpenSlide, for everything else),
    ``tiffslide``, ``openslide`` or ``image``. ``mpp`` overrides the microns per pixel in the
    metadata (needed when the file has none and you work in µm/px).
    Unreadable or unsupported files raise :class:`DataError` naming the file.
    """
    p = Path(path)
    if backend not in ("auto", "tiffslide", "openslide", "image"):
        raise ConfigError(f"backend={backend!r}: use auto, tiffslide, openslide or image")
    if not p.is_file():
        raise DataError(f"{p}: slide file not found")
    reasons = []
    for name in _candidates(p, backend):
        try:
            return SlideReader(p, name, _open_backend(p, name, max_image_pixels), mpp)
        except (DataError, ConfigError):
            raise
        except ImportError as exc:
            reasons.append(f"{name}: not installed ({exc}); pip install 'visionforge[slides]'")
        except Exception as exc:  # noqa: BLE001 - each library raises its own types
            reasons.append(f"{name}: {type(exc).__name__}: {exc}")
    raise DataError(f"{p}: cannot read this file as a slide or image ({'; '.join(reasons)}). "
                    f"Supported: {SUPPORTED_FORMATS}")

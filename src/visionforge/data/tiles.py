"""Training tiles from large annotated images (the CODAvision tiling job).

Two modes:

* ``simple``: a regular grid of ``tile_size`` crops (optional ``overlap``); crops
  whose annotated fraction (pixels != ``unlabeled``) is below ``min_fraction`` are dropped.
* ``modern``: class-balanced composite canvases. Annotated regions (per class, per
  ``tile_size`` block of the mask) are pasted onto an empty canvas, always choosing
  the class with the fewest pixels so far; each paste is augmented (rotation in
  5-degree steps, scale 0.6-0.95 or 1.1-1.4, hue jitter, blur) and fills only empty
  pixels. A canvas is done when >= ``fill_threshold`` (default 55 %) is filled;
  the rest becomes ``background_class``. Regions are split into train/val pools
  first, so no annotated region feeds both sides. Deterministic for a seed.

Images and masks are read through :class:`~visionforge.data.lazy.LazyImage`
windows, so peak memory follows the tile size, not the image size; a pair may also
be given as in-memory arrays (wrapped in :class:`ArrayImage`, the same window
interface), which is how :mod:`visionforge.slides.tiles` passes slide regions. Output:
``out_dir/{train,val}/{images,masks}/*.png`` (``.tif`` for non-8-bit images; ``fmt=``
picks ``png``/``tif``/``jpg`` for the images, masks stay lossless) and
``out_dir/tiles_report.json`` with pixel counts per class before and after.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.data.lazy import LazyImage
from visionforge.errors import ConfigError, DataError
from visionforge.io import atomic_write_json
from visionforge.progress import progress

__all__ = ["ArrayImage", "TilingResult", "make_tiles", "class_pixel_counts", "save_tile"]

MODES = ("modern", "simple")
#: image file formats for ``fmt=`` (masks are written lossless: PNG, or TIFF when ``fmt="tif"``)
FORMATS = ("png", "tif", "jpg")


class ArrayImage(LazyImage):
    """An in-memory array with :class:`~visionforge.data.lazy.LazyImage`'s window interface.

    ``close()`` only drops this object's reference; the caller's array is untouched.
    """

    def __init__(self, array: np.ndarray, name: str = "array") -> None:  # no file to open
        arr = np.asarray(array)
        self._array = arr[..., 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr
        self._tf = None
        self.path = Path(name)
        self.height, self.width = (int(v) for v in self._array.shape[:2])
        self.channels = 1 if self._array.ndim == 2 else int(self._array.shape[2])
        self.dtype = self._array.dtype
        self.max_window_pixels = 0
        self.windows_read = 0
        self.mode = "array"


@dataclass
class TilingResult:
    """What :func:`make_tiles` wrote, with class pixel counts before and after tiling."""

    out_dir: Path
    mode: str
    tile_size: int
    num_tiles: dict[str, int]
    counts_before: dict[int, int]
    counts_after: dict[str, dict[int, int]]
    max_window_pixels: int = 0
    report_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "mode": self.mode,
            "tile_size": self.tile_size,
            "num_tiles": self.num_tiles,
            "counts_before": {str(k): v for k, v in self.counts_before.items()},
            "counts_after": {
                s: {str(k): v for k, v in c.items()} for s, c in self.counts_after.items()
            },
            "max_window_pixels": self.max_window_pixels,
            **self.extra,
        }


def _blocks(h: int, w: int, size: int) -> list[tuple[int, int]]:
    return [(y, x) for y in range(0, h, size) for x in range(0, w, size)]


def _add_counts(total: dict[int, int], mask: np.ndarray) -> None:
    values, counts = np.unique(mask, return_counts=True)
    for v, c in zip(values.tolist(), counts.tolist()):
        total[int(v)] = total.get(int(v), 0) + int(c)


def class_pixel_counts(mask: LazyImage, block: int = 1024) -> dict[int, int]:
    """Pixel count per class of a (lazily read) mask, read ``block`` x ``block`` at a time."""
    total: dict[int, int] = {}
    for y, x in _blocks(mask.height, mask.width, block):
        _add_counts(total, mask.read(y, x, block, block))
    return dict(sorted(total.items()))


def save_tile(path_stem: Path, array: np.ndarray, fmt: str | None = None) -> Path:
    """Write one tile as ``path_stem`` + suffix and return the path.

    ``fmt=None``: PNG for 8-bit images, TIFF otherwise; ``"png"``/``"tif"``/``"jpg"`` force
    the format (JPEG only for 8-bit RGB/grey, quality 95, else PNG). Written to a temporary
    name and renamed, so a tile appears whole.
    """
    from PIL import Image

    path_stem.parent.mkdir(parents=True, exist_ok=True)
    eight_bit = array.dtype == np.uint8 and (array.ndim == 2 or array.shape[2] in (1, 3, 4))
    if fmt == "jpg" and eight_bit and (array.ndim == 2 or array.shape[2] in (1, 3)):
        target = path_stem.with_suffix(".jpg")
        tmp = target.with_name(f".{target.name}.tmp")
        Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array).save(
            tmp, format="JPEG", quality=95
        )
    elif eight_bit and fmt != "tif":
        target = path_stem.with_suffix(".png")
        tmp = target.with_name(f".{target.name}.tmp")
        Image.fromarray(
            array.squeeze(-1) if array.ndim == 3 and array.shape[2] == 1 else array
        ).save(tmp, format="PNG", compress_level=1)
    else:
        import tifffile

        target = path_stem.with_suffix(".tif")
        tmp = target.with_name(f".{target.name}.tmp")
        tifffile.imwrite(tmp, array)
    # rename makes each tile appear whole; an fsync per tile would dominate the run time
    os.replace(tmp, target)
    return target


def _write_pair(
    split_dir: Path,
    name: str,
    image: np.ndarray,
    labels: np.ndarray,
    counts: dict[int, int],
    fmt: str | None = None,
) -> None:
    """Save one tile and its mask under ``split_dir/{images,masks}`` and count its classes."""
    save_tile(split_dir / "images" / name, image, fmt)
    save_tile(
        split_dir / "masks" / name,
        labels.astype(np.uint8 if labels.max() < 256 else np.uint16),
        "tif" if fmt == "tif" else None,  # masks never go through JPEG
    )
    _add_counts(counts, labels)


def _window(item: Any, name: str) -> Any:
    if isinstance(item, ArrayImage):
        return item
    if isinstance(item, np.ndarray):
        return ArrayImage(item, name)
    return LazyImage(item)


def _open_pairs(pairs: Sequence[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if not pairs:
        raise DataError("make_tiles needs at least one (image, mask) pair")
    opened = []
    for k, (img_src, mask_src) in enumerate(pairs):
        img, mask = _window(img_src, f"array{k}"), _window(mask_src, f"array{k}_mask")
        if mask.channels != 1:
            raise DataError(f"{mask.path}: tiling needs a single-channel class-index mask")
        if (img.height, img.width) != (mask.height, mask.width):
            raise DataError(
                f"{img.path} is {img.height}x{img.width} but its mask {mask.path} is "
                f"{mask.height}x{mask.width}"
            )
        opened.append((img, mask))
    return opened


def _resolve_mode(mode: str | None) -> str:
    """``mode``, or VISIONFORGE_TILE_GENERATION_MODE / CODAVISION_TILE_GENERATION_MODE."""
    if mode is None:
        from visionforge.config.framework import resolve_setting

        mode = resolve_setting("tile_generation_mode")[0]
    if mode not in MODES:
        hint = " ('legacy' is a slide tiling mode: visionforge slides tiles)" if mode == "legacy" else ""
        raise ConfigError(f"tiling mode {mode!r}; choose 'modern' or 'simple'{hint}")
    return mode


def make_tiles(
    pairs: Sequence[tuple[Any, Any]],
    out_dir: str | os.PathLike[str],
    mode: str | None = None,
    tile_size: int = 512,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    unlabeled: int | None = 0,
    overlap: int = 0,
    min_fraction: float = 0.1,
    num_tiles: int | None = None,
    fill_threshold: float = 0.55,
    background_class: int = 0,
    fill_value: float = 0,
    max_pastes: int = 500,
    fmt: str | None = None,
    rotate: bool = True,
) -> TilingResult:
    """Cut ``(image, mask)`` pairs into training and validation tiles; see the module doc.

    Each pair item is a file path, an in-memory array or an :class:`ArrayImage`.
    ``fmt`` (``png``/``tif``/``jpg``) sets the image file format (default: PNG for 8-bit,
    TIFF otherwise); ``rotate=False`` turns off the rotation of modern-mode pastes.

    ``mode=None`` reads ``VISIONFORGE_TILE_GENERATION_MODE`` (or CODAvision's
    ``CODAVISION_TILE_GENERATION_MODE``), else ``modern``.

    ``num_tiles`` (modern mode) is the number of training canvases (validation gets
    ``val_fraction`` of that, at least one); by default about as many canvases as
    the annotated area would fill.
    """
    mode = _resolve_mode(mode)
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"fmt={fmt!r}: choose one of {', '.join(FORMATS)}")
    if tile_size < 8:
        raise ConfigError(f"tile_size must be >= 8, got {tile_size}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    out = Path(out_dir)
    opened = _open_pairs(pairs)
    try:
        before: dict[int, int] = {}
        for _, mask in opened:
            for k, v in class_pixel_counts(mask, max(tile_size, 256)).items():
                before[k] = before.get(k, 0) + v
        rng = np.random.default_rng(seed)
        if mode == "simple":
            if not 0 <= overlap < tile_size:
                raise ConfigError(f"overlap must be in [0, tile_size), got {overlap}")
            n, after = _simple(
                opened, out, tile_size, overlap, min_fraction, unlabeled, val_fraction, rng, fmt
            )
        else:
            if not 0 < fill_threshold <= 1:
                raise ConfigError(f"fill_threshold must be in (0, 1], got {fill_threshold}")
            canvas = _CanvasSettings(
                tile_size, fill_threshold, background_class, fill_value, max_pastes, fmt, rotate
            )
            n, after = _modern(opened, out, canvas, unlabeled, val_fraction, num_tiles, rng)
        max_window = max(max(i.max_window_pixels, m.max_window_pixels) for i, m in opened)
        result = TilingResult(
            out_dir=out,
            mode=mode,
            tile_size=tile_size,
            num_tiles=n,
            counts_before=dict(sorted(before.items())),
            counts_after={s: dict(sorted(c.items())) for s, c in after.items()},
            max_window_pixels=max_window,
            extra={"seed": seed, "sources": [[str(i.path), str(m.path)] for i, m in opened]},
        )
        result.report_path = atomic_write_json(out / "tiles_report.json", result.to_dict())
        return result
    finally:
        for img, mask in opened:
            img.close()
            mask.close()


def _simple(opened, out, size, overlap, min_fraction, unlabeled, val_fraction, rng, fmt=None):
    stride = size - overlap
    counts: dict[str, dict[int, int]] = {"train": {}, "val": {}}
    n = {"train": 0, "val": 0}
    for k, (img, mask) in progress(list(enumerate(opened)), "tiles"):
        if img.height < size or img.width < size:
            raise DataError(
                f"{img.path} ({img.height}x{img.width}) is smaller than tile_size={size}"
            )
        for y in range(0, img.height - size + 1, stride):
            for x in range(0, img.width - size + 1, stride):
                m = mask.read(y, x, size, size)
                frac = 1.0 if unlabeled is None else float(np.mean(m != unlabeled))
                if frac < min_fraction or frac == 0:
                    continue
                split = "val" if rng.random() < val_fraction else "train"
                name = f"{k:03d}_{img.path.stem}_y{y}_x{x}"
                _write_pair(
                    out / split, name, img.read(y, x, size, size), m, counts[split], fmt
                )
                n[split] += 1
    if n["train"] + n["val"] == 0:
        raise DataError(
            f"no tile reached min_fraction={min_fraction} of annotated pixels; "
            "lower min_fraction or tile_size"
        )
    return n, counts


@dataclass
class _Region:
    pair: int
    y: int
    x: int
    h: int
    w: int
    cls: int
    pixels: int


def _find_regions(opened, size, unlabeled) -> list[_Region]:
    regions = []
    for k, (_, mask) in enumerate(opened):
        for by, bx in _blocks(mask.height, mask.width, size):
            m = mask.read(by, bx, size, size)
            for c in np.unique(m).tolist():
                if unlabeled is not None and c == unlabeled:
                    continue
                ys, xs = np.nonzero(m == c)
                if len(ys) < 4:
                    continue
                y0, x0 = int(ys.min()), int(xs.min())
                regions.append(
                    _Region(
                        k,
                        by + y0,
                        bx + x0,
                        int(ys.max()) - y0 + 1,
                        int(xs.max()) - x0 + 1,
                        int(c),
                        len(ys),
                    )
                )
    if not regions:
        raise DataError("no annotated pixels found in the masks; nothing to tile")
    return regions


def _augment(img: np.ndarray, obj: np.ndarray, rng: np.random.Generator, rotate: bool = True):
    """Rotate (5-degree steps), scale, hue-jitter and blur a region and its object mask."""
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)
    scale_ref = float(np.iinfo(img.dtype).max) if np.issubdtype(img.dtype, np.integer) else 1.0
    t = t / scale_ref
    o = torch.from_numpy(obj.astype(np.uint8))[None]
    angle = 5.0 * int(rng.integers(0, 72)) if rotate else 0.0
    t = F.rotate(t, angle, InterpolationMode.BILINEAR, expand=True)
    o = F.rotate(o, angle, InterpolationMode.NEAREST, expand=True)
    s = float(rng.uniform(0.6, 0.95) if rng.random() < 0.5 else rng.uniform(1.1, 1.4))
    new = [max(1, round(t.shape[-2] * s)), max(1, round(t.shape[-1] * s))]
    t = F.resize(t, new, InterpolationMode.BILINEAR, antialias=True)
    o = F.resize(o, new, InterpolationMode.NEAREST)
    if t.shape[0] == 3:
        t = F.adjust_hue(t.clamp(0, 1), float(rng.uniform(-0.05, 0.05)))
    if rng.random() < 0.5 and min(t.shape[-2:]) >= 3:  # reflect padding needs >= 2 pixels
        t = F.gaussian_blur(t, [3, 3], [float(rng.uniform(0.1, 1.0))] * 2)
    arr = (t.clamp(0, 1) * scale_ref).permute(1, 2, 0).numpy()
    if np.issubdtype(img.dtype, np.integer):
        arr = np.rint(arr)
    return arr.astype(img.dtype), o[0].numpy().astype(bool)


@dataclass(frozen=True)
class _CanvasSettings:
    """How a modern-mode canvas is composed (see :func:`make_tiles`)."""

    size: int
    fill_threshold: float
    background_class: int
    fill_value: float
    max_pastes: int
    fmt: str | None = None
    rotate: bool = True


def _canvas(opened, pool, by_class, got, rng, settings: _CanvasSettings):
    size = settings.size
    img0 = opened[0][0]
    canvas = np.full((size, size, img0.channels), settings.fill_value, dtype=img0.dtype)
    labels = np.full((size, size), -1, dtype=np.int64)
    for _ in range(settings.max_pastes):
        if np.mean(labels >= 0) >= settings.fill_threshold:
            break
        cls = min(got, key=lambda c: (got[c], c))  # the class with the fewest pixels so far
        region = pool[by_class[cls][int(rng.integers(len(by_class[cls])))]]
        img, mask = opened[region.pair]
        patch = img.read(region.y, region.x, region.h, region.w)
        if patch.ndim == 2:
            patch = patch[:, :, None]
        obj = mask.read(region.y, region.x, region.h, region.w) == cls
        patch, obj = _augment(patch, obj, rng, settings.rotate)
        ph, pw = min(obj.shape[0], size), min(obj.shape[1], size)
        oy = int(rng.integers(0, obj.shape[0] - ph + 1))
        ox = int(rng.integers(0, obj.shape[1] - pw + 1))
        patch, obj = patch[oy : oy + ph, ox : ox + pw], obj[oy : oy + ph, ox : ox + pw]
        y, x = int(rng.integers(0, size - ph + 1)), int(rng.integers(0, size - pw + 1))
        free = obj & (labels[y : y + ph, x : x + pw] < 0)
        canvas[y : y + ph, x : x + pw][free] = patch[free]
        labels[y : y + ph, x : x + pw][free] = cls
        got[cls] += int(free.sum()) or 1  # a paste that landed nowhere still counts, no livelock
    labels[labels < 0] = settings.background_class
    return canvas, labels


def _modern(opened, out, settings: _CanvasSettings, unlabeled, val_fraction, num_tiles, rng):
    size = settings.size
    # regions come from half-tile blocks so one paste never covers more than ~1/4 canvas,
    # which lets the rarest-class-first rule actually balance the classes
    regions = _find_regions(opened, max(size // 2, 4), unlabeled)
    pools: dict[str, list[_Region]] = {"train": [], "val": []}
    by_cls: dict[int, list[_Region]] = {}
    for r in regions:
        by_cls.setdefault(r.cls, []).append(r)
    for cls_regions in by_cls.values():
        order = rng.permutation(len(cls_regions))
        n_val = int(round(val_fraction * len(cls_regions))) if len(cls_regions) > 1 else 0
        for j, i in enumerate(order):
            pools["val" if j < n_val else "train"].append(cls_regions[i])
    if num_tiles is None:
        annotated = sum(r.pixels for r in pools["train"])
        num_tiles = max(1, round(annotated / (size * size * settings.fill_threshold)))
    counts = {
        "train": num_tiles,
        "val": max(1, round(num_tiles * val_fraction)) if pools["val"] else 0,
    }
    after: dict[str, dict[int, int]] = {"train": {}, "val": {}}
    for split, n in counts.items():
        pool = pools[split]
        by_class: dict[int, list[int]] = {}
        for i, r in enumerate(pool):
            by_class.setdefault(r.cls, []).append(i)
        got = dict.fromkeys(sorted(by_class), 0)  # pasted pixels per class over the whole split
        for t in progress(range(n), f"{split} canvases"):
            canvas, labels = _canvas(opened, pool, by_class, got, rng, settings)
            _write_pair(
                out / split, f"canvas_{t:05d}", canvas, labels, after[split], settings.fmt
            )
    return counts, after

"""Training tiles from annotated slides (``visionforge slides tiles``).

:func:`make_slide_tiles` reads each slide at one working resolution (``mpp=`` µm/px, or
``downsample=``, CODAvision's *reduction factor*) through
:meth:`~visionforge.slides.reader.SlideReader.read_at`, rasterises its annotations with the
class map (:func:`~visionforge.slides.rasterize.rasterize`) over the annotated area (the
bounding box of its annotations; inside it, pixels under no annotation get the class map's
``unannotated`` value: the background class, or 255 = ignored), blanks the ``holdout``
rectangle, and writes a segmentation dataset in one of three modes:

* ``modern`` — class-balanced composite canvases of ``tile_size`` (the canvases of
  :func:`visionforge.data.tiles.make_tiles`, fed the slide regions as in-memory arrays).
* ``legacy`` — CODAvision's original (MATLAB-aligned) big-tile assembly: bounding boxes of the
  annotated regions (connected components per class) are pasted, whole, onto a big composite
  tile; the class to paste is the one with the fewest pixels so far (every 3rd paste the
  classes are taken in turn instead), the box is chosen at random among the unused boxes of
  that class (the pool refills when spent), every 3rd paste is rotated by a multiple of 90°,
  and each box goes to the centre of the largest empty area (a distance transform of the
  canvas at 1/5 resolution — the reduction factor of CODAvision's legacy placement). All
  annotated pixels of a box are pasted and overwrite what lies beneath. When 55 % of the big
  tile is filled, the unfilled pixels become the background class (white glass; CODAvision
  paints them black) and the big tile is cut into ``tile_size`` training tiles. Differences
  from CODAvision, on purpose: the big tile is ``n × n`` tiles with ``n ≤ 10`` sized to the
  tile count (CODAvision: 10,000 px), boxes are at most ``tile_size`` and at least
  ``tile_size/4`` wide, and boxes are split into train/val pools so no region feeds both.
* ``simple`` — a regular grid of ``tile_size`` crops over the annotated area; crops touching
  the holdout or less than 10 % annotated are dropped.

Output (what ``visionforge train`` reads as a pre-split segmentation folder):
``out_dir/{train,val}/{images,masks}/``, ``out_dir/manifest.csv`` (``tile, slide, x0, y0,
split``; composite tiles have slide ``composite`` and no position) and ``out_dir/tiles.json``
(working mpp, downsample, mode, seed, class names/colours, slides, holdout, tissue, skipped
slides and notes). The same inputs and ``seed`` give byte-identical tiles.

A slide that cannot be used (unreadable, malformed or empty annotations, annotations outside
the slide, layers missing from the class map, no µm/px where one is needed) is skipped and
reported (``result.skipped``, ``tiles.json["skipped"]``); the other slides still give tiles.
Only when no slide is usable does it raise :class:`DataError` listing every reason.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, DataError, VisionforgeError
from visionforge.slides.classmap import IGNORE_INDEX, ClassMap, load_class_map

log = logging.getLogger(__name__)

__all__ = ["MODES", "FORMATS", "SlideTilesResult", "make_slide_tiles", "parse_holdout"]

MODES = ("modern", "legacy", "simple")
FORMATS = ("png", "tif", "jpg")
FILL_TARGET = 0.55  # CODAvision: a composite tile is done when 55 % filled
SIMPLE_MIN_FRACTION = 0.1
LEGACY_PLACEMENT_REDUCTION = 5
LEGACY_TURN_EVERY = 3  # legacy: every 3rd paste takes the classes in turn and is rotated
LEGACY_MIN_BOX_PX = 30  # CODAvision skips boxes with fewer annotated pixels
Box = tuple[int, int, int, int]


@dataclass
class SlideTilesResult:
    """What :func:`make_slide_tiles` wrote."""

    out_dir: Path
    mode: str
    mpp: float | None
    downsample: float | None
    tile_size: int
    num_tiles: dict[str, int]
    slides: list[dict[str, Any]]
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, dict[int, int]] = field(default_factory=dict)
    tiles_json: Path | None = None
    manifest: Path | None = None


@dataclass
class _Region:
    """One slide's annotated area at the working resolution."""

    stem: str
    path: Path
    image: np.ndarray
    mask: np.ndarray
    box: Box  # level-0 (x0, y0, w, h) of the area
    downsample: float  # level-0 px per working px
    holdout: Box | None  # level-0
    holdout_px: tuple[int, int, int, int] | None  # working px (y0, y1, x0, x1) inside the area


@dataclass(frozen=True)
class _Settings:
    mode: str
    tile_size: int
    tile_count: int | None
    fmt: str
    rotate: bool
    seed: int
    val_fraction: float
    background: int  # label of unfilled composite pixels


# -- inputs -------------------------------------------------------------------------------------
def _annotation_path(slide: Path, annotations: Any, index: int) -> Path:
    """The annotation file of ``slide`` (see :func:`make_slide_tiles`)."""
    if annotations is None:
        for suffix in (".xml", ".geojson"):
            cand = slide.with_suffix(suffix)
            if cand.is_file():
                return cand
        raise DataError(f"{slide}: no annotation file beside it ({slide.with_suffix('.xml').name} "
                        f"or {slide.with_suffix('.geojson').name}); pass annotations=")
    if isinstance(annotations, Mapping):
        for key in (slide.stem, str(slide), slide.name):
            if key in annotations:
                return Path(annotations[key])
        raise DataError(f"{slide}: annotations= has no entry for {slide.stem!r}")
    if isinstance(annotations, str | os.PathLike):
        return Path(annotations)
    return Path(list(annotations)[index])


def parse_holdout(spec: Any, dimensions: tuple[int, int], stem: str = "") -> Box | None:
    """A holdout rectangle ``(x0, y0, w, h)`` in level-0 px from ``spec``.

    ``spec``: ``None``; ``(x0, y0, w, h)``; ``"right:0.25"`` (also ``left``/``top``/``bottom``:
    that fraction of the slide's width or height); ``"x0,y0,w,h"``; or a mapping from slide
    stem to one of these (slides it does not name have no holdout).
    """
    if isinstance(spec, Mapping):
        return parse_holdout(spec.get(stem), dimensions, stem)
    if spec is None or spec == "":
        return None
    W, H = dimensions
    if isinstance(spec, str) and ":" in spec:
        side, _, frac_s = spec.partition(":")
        try:
            f = float(frac_s)
        except ValueError:
            f = -1.0
        if side not in ("left", "right", "top", "bottom") or not 0 < f < 1:
            raise ConfigError(f"holdout={spec!r}: use SIDE:FRACTION with SIDE left/right/top/bottom "
                              "and 0 < FRACTION < 1 (e.g. right:0.25), or x0,y0,w,h")
        fw, fh = round(W * f), round(H * f)
        return {"left": (0, 0, fw, H), "right": (W - fw, 0, fw, H),
                "top": (0, 0, W, fh), "bottom": (0, H - fh, W, fh)}[side]
    try:
        vals = [int(round(float(v))) for v in (spec.split(",") if isinstance(spec, str) else spec)]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 4 or vals[2] <= 0 or vals[3] <= 0:
        raise ConfigError(f"holdout={spec!r}: expected (x0, y0, w, h) in level-0 px with w, h > 0, "
                          "or SIDE:FRACTION such as right:0.25")
    return vals[0], vals[1], vals[2], vals[3]


def _probe(paths: list[Path], skipped: list[dict[str, str]]) -> list[tuple[Path, float | None]]:
    """Open each slide once for its µm/px; unreadable slides go to ``skipped``."""
    from visionforge.slides.reader import open_slide

    out = []
    for p in paths:
        try:
            with open_slide(p) as reader:
                out.append((p, reader.mpp if reader.has_mpp else None))
        except VisionforgeError as exc:
            _skip(skipped, p, exc)
    return out


def _skip(skipped: list[dict[str, str]], path: Path, exc: Exception) -> None:
    msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
    log.warning("skipping slide: %s", msg)
    skipped.append({"slide": str(path), "reason": msg})


def _working_resolution(probed: list[tuple[Path, float | None]], mpp: float | None,
                        downsample: float | None, notes: list[str]) -> float | None:
    """The working µm/px (``None`` when slides lack µm/px and only a downsample is known)."""
    if mpp is not None and downsample is not None:
        raise ConfigError("give mpp= (µm/px) or downsample= (reduction factor), not both")
    for name, v in (("mpp", mpp), ("downsample", downsample)):
        if v is not None and not float(v) > 0:
            raise ConfigError(f"{name}={v!r} must be a positive number")
    if mpp is not None:
        return float(mpp)
    known = [m for _, m in probed if m is not None]
    if not probed or len(known) < len(probed):
        return None
    work = known[0] * float(downsample or 1.0)
    if any(abs(m / known[0] - 1) > 0.01 for m in known):
        notes.append(f"slides have different µm/px ({sorted({round(m, 4) for m in known})}); each "
                     f"is resampled to the working {work:.4g} µm/px")
    return work


def _slide_downsample(path: Path, slide_mpp: float | None, work_mpp: float | None,
                      downsample: float | None) -> float:
    if work_mpp is None:
        return float(downsample or 1.0)
    if slide_mpp is None:
        raise DataError(f"{path}: the slide has no µm/px in its metadata, so it cannot be read at "
                        f"{work_mpp:.4g} µm/px; pass downsample= instead of mpp=, or convert it")
    return work_mpp / slide_mpp


# -- one slide ----------------------------------------------------------------------------------
def _annotated_box(anns: list[Any], dims: tuple[int, int]) -> Box:
    b = np.array([a.geometry.bounds for a in anns], dtype=np.float64)
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(dims[0], math.ceil(x1)), min(dims[1], math.ceil(y1))
    return x0, y0, x1 - x0, y1 - y0


def _blank_holdout(region: _Region) -> None:
    """Mark the holdout as ignored (255) and white, so none of its pixels reaches a tile."""
    if region.holdout is None:
        return
    bx, by, _, _ = region.box
    hx, hy, hw, hh = region.holdout
    d = region.downsample
    H, W = region.mask.shape
    ys, ye = max(0, math.floor((hy - by) / d)), min(H, math.ceil((hy + hh - by) / d))
    xs, xe = max(0, math.floor((hx - bx) / d)), min(W, math.ceil((hx + hw - bx) / d))
    if ye > ys and xe > xs:
        region.mask[ys:ye, xs:xe] = IGNORE_INDEX
        region.image[ys:ye, xs:xe] = 255
        region.holdout_px = (ys, ye, xs, xe)


def _load_region(path: Path, ann_path: Path, class_map: ClassMap, d: float, holdout: Any,
                 warnings: list[str]) -> tuple[_Region, dict[str, Any]]:
    """Read one slide's annotated area at downsample ``d``; :class:`DataError` if unusable."""
    from visionforge.slides.annotations import read_annotations
    from visionforge.slides.rasterize import clip_to_slide, rasterize
    from visionforge.slides.reader import open_slide
    from visionforge.slides.tissue import tissue_mask

    anns_set = read_annotations(ann_path)
    warnings.extend(anns_set.warnings)
    kept = [a for a in anns_set if not class_map.is_ignored(a.layer)]
    if not kept:
        raise DataError(f"{ann_path}: no annotations to make tiles from (empty file, or every "
                        "layer is in ignore_layers)")
    class_map.check(kept, ann_path)
    with open_slide(path) as reader:
        anns, clip_warn = clip_to_slide(kept, reader.dimensions, ann_path)
        warnings.extend(clip_warn)
        box = _annotated_box(anns, reader.dimensions)
        mask = rasterize(anns, class_map, box, d, source=ann_path)
        image = np.array(reader.read_at(None, box, downsample=d))
        tissue = tissue_mask(reader, max_size=512).to_dict()
        hold = parse_holdout(holdout, reader.dimensions, path.stem)
    region = _Region(path.stem, path, image, mask, box, d, hold, None)
    _blank_holdout(region)
    if not np.any(region.mask != IGNORE_INDEX):
        raise DataError(f"{ann_path}: no annotated pixels left outside the holdout "
                        f"{list(hold) if hold else ''} at downsample {d:.4g}")
    return region, {k: tissue[k] for k in ("mode", "cutoff", "auto", "fraction", "empty")}


# -- modes --------------------------------------------------------------------------------------
def _annotated_px(regions: list[_Region]) -> int:
    return int(sum(np.count_nonzero(r.mask != IGNORE_INDEX) for r in regions))


def _default_count(regions: list[_Region], size: int) -> int:
    return max(1, round(_annotated_px(regions) / (size * size * FILL_TARGET)))


def _rows_for(out: Path, split: str) -> list[dict[str, Any]]:
    files = sorted((out / split / "images").glob("*")) if (out / split / "images").is_dir() else []
    return [{"tile": f.relative_to(out).as_posix(), "slide": "composite", "x0": "", "y0": "",
             "split": split} for f in files if not f.name.startswith(".")]


def _tiles_modern(regions: list[_Region], out: Path, s: _Settings):
    from visionforge.data.tiles import ArrayImage, make_tiles

    pairs = [(ArrayImage(r.image, r.stem), ArrayImage(r.mask, f"{r.stem}_mask")) for r in regions]
    res = make_tiles(pairs, out, "modern", s.tile_size, val_fraction=s.val_fraction, seed=s.seed,
                     unlabeled=IGNORE_INDEX, num_tiles=s.tile_count or _default_count(regions, s.tile_size),
                     background_class=s.background, fill_value=255, fmt=s.fmt, rotate=s.rotate)
    return _rows_for(out, "train") + _rows_for(out, "val"), res.counts_after


def _crop(arr: np.ndarray, y: int, x: int, size: int, fill: int) -> np.ndarray:
    """``arr[y:y+size, x:x+size]`` padded with ``fill`` past the edge."""
    part = arr[y:y + size, x:x + size]
    if part.shape[:2] == (size, size):
        return part
    out = np.full((size, size) + arr.shape[2:], fill, arr.dtype)
    out[:part.shape[0], :part.shape[1]] = part
    return out


def _touches(hold: tuple[int, int, int, int] | None, y: int, x: int, size: int) -> bool:
    return hold is not None and y < hold[1] and hold[0] < y + size and x < hold[3] and hold[2] < x + size


def _tiles_simple(regions: list[_Region], out: Path, s: _Settings, rng: np.random.Generator):
    from visionforge.data.tiles import _add_counts, _write_pair

    size = s.tile_size
    cands = []
    for k, r in enumerate(regions):
        H, W = r.mask.shape
        for y in range(0, max(H - size // 2, 1), size):
            for x in range(0, max(W - size // 2, 1), size):
                m = _crop(r.mask, y, x, size, IGNORE_INDEX)
                if not _touches(r.holdout_px, y, x, size) and np.mean(m != IGNORE_INDEX) >= SIMPLE_MIN_FRACTION:
                    cands.append((k, y, x))
    if not cands:
        raise DataError(f"no {size}-px grid tile is {SIMPLE_MIN_FRACTION:.0%} annotated outside the "
                        "holdout; lower tile_size or use mode=modern")
    order = rng.permutation(len(cands))
    want_train = s.tile_count or len(cands)
    want_val = _n_val(want_train, s)
    n_total = min(len(cands), want_train + want_val) if s.tile_count else len(cands)
    n_val = min(want_val, n_total - 1)
    val = set(rng.permutation(n_total)[:n_val].tolist())
    rows, counts = [], {"train": {}, "val": {}}
    for j, i in enumerate(sorted(order[:n_total].tolist(), key=lambda i: cands[i])):
        k, y, x = cands[i]
        split = "val" if j in val else "train"
        r = regions[k]
        name = f"{r.stem}_y{y}_x{x}"
        mask = _crop(r.mask, y, x, size, IGNORE_INDEX)
        _write_pair(out / split, name, _crop(r.image, y, x, size, 255), mask, {}, s.fmt)
        _add_counts(counts[split], mask)
        rows.append({"tile": f"{split}/images/{name}.{s.fmt}", "slide": r.stem,
                     "x0": r.box[0] + round(x * r.downsample), "y0": r.box[1] + round(y * r.downsample),
                     "split": split})
    return rows, counts


def _n_val(n_train: int, s: _Settings) -> int:
    return max(1, round(n_train * s.val_fraction)) if s.val_fraction > 0 else 0


# -- legacy (CODAvision big tiles) --------------------------------------------------------------
@dataclass(frozen=True)
class _Box:
    region: int
    y: int
    x: int
    h: int
    w: int
    cls: int


def _legacy_boxes(regions: list[_Region], size: int) -> list[_Box]:
    """Bounding boxes of the connected annotated regions of each class (clamped to the size limits)."""
    from scipy import ndimage

    lo = max(4, size // 4)
    boxes = []
    for k, r in enumerate(regions):
        H, W = r.mask.shape
        for c in np.unique(r.mask).tolist():
            if c == IGNORE_INDEX:
                continue
            comp, _ = ndimage.label(r.mask == c)
            for sl in ndimage.find_objects(comp):
                y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                for by in range(y0, y1, size):  # a region wider than a tile is cut into tile-size boxes
                    for bx in range(x0, x1, size):
                        h, w = min(size, y1 - by), min(size, x1 - bx)
                        cy, cx = by + h // 2, bx + w // 2
                        h, w = min(max(h, lo), H), min(max(w, lo), W)
                        yy, xx = min(max(0, cy - h // 2), H - h), min(max(0, cx - w // 2), W - w)
                        if np.count_nonzero(r.mask[yy:yy + h, xx:xx + w] != IGNORE_INDEX) >= LEGACY_MIN_BOX_PX:
                            boxes.append(_Box(k, yy, xx, h, w, int(c)))
    if not boxes:
        raise DataError("no annotated region is large enough for legacy tiles; use mode=modern")
    return boxes


class _BigTile:
    """One legacy composite tile being filled (labels 255 = still empty)."""

    def __init__(self, side: int, margin: int) -> None:
        self.margin = margin
        n = side + 2 * margin
        self.image = np.full((n, n, 3), 255, np.uint8)
        self.labels = np.full((n, n), IGNORE_INDEX, np.uint8)

    @property
    def fill(self) -> float:
        m = self.margin
        return float(np.mean(self.labels[m:-m or None, m:-m or None] != IGNORE_INDEX))

    def place(self, rng: np.random.Generator, ph: int, pw: int) -> tuple[int, int]:
        """Top-left corner centring a ``ph × pw`` box on the largest empty area (CODAvision)."""
        from scipy import ndimage

        rsf = LEGACY_PLACEMENT_REDUCTION
        empty = self.labels[::rsf, ::rsf] == IGNORE_INDEX
        dist = ndimage.distance_transform_edt(empty)
        edge = max(1, self.margin // rsf)
        dist[:edge], dist[-edge:], dist[:, :edge], dist[:, -edge:] = 0, 0, 0, 0
        best = np.argwhere(dist == dist.max())
        cy, cx = (best[int(rng.integers(len(best)))] * rsf).tolist()
        n = self.labels.shape[0]
        return min(max(0, cy - ph // 2), n - ph), min(max(0, cx - pw // 2), n - pw)

    def paste(self, y: int, x: int, image: np.ndarray, labels: np.ndarray) -> np.ndarray:
        fx = labels != IGNORE_INDEX
        self.labels[y:y + labels.shape[0], x:x + labels.shape[1]][fx] = labels[fx]
        self.image[y:y + labels.shape[0], x:x + labels.shape[1]][fx] = image[fx]
        return labels[fx]


def _legacy_class(count: int, classes: list[int], got: dict[int, int], prev: int | None) -> int:
    if count % LEGACY_TURN_EVERY == 1:  # every 3rd paste: the classes in turn
        return classes[(count // LEGACY_TURN_EVERY) % len(classes)]
    ranked = {c: (got[c] if c != prev or len(classes) == 1 else max(got.values()) + 1) for c in classes}
    return min(ranked, key=lambda c: (ranked[c], c))


def _legacy_big_tile(regions: list[_Region], pool: list[_Box], side: int, s: _Settings,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    by_cls: dict[int, list[int]] = {}
    for i, b in enumerate(pool):
        by_cls.setdefault(b.cls, []).append(i)
    classes = sorted(by_cls)
    unused = {c: list(v) for c, v in by_cls.items()}
    got = dict.fromkeys(classes, 0)
    tile = _BigTile(side, max(4, s.tile_size // 8))
    prev, count = None, 0
    max_pastes = 400 * max(1, (side // s.tile_size) ** 2)
    while tile.fill < FILL_TARGET and count < max_pastes:
        count += 1
        cls = _legacy_class(count, classes, got, prev)
        if not unused[cls]:  # every box of this class used once: start over (CODAvision)
            unused[cls] = list(by_cls[cls])
        b = pool[unused[cls].pop(int(rng.integers(len(unused[cls]))))]
        r = regions[b.region]
        img, lab = r.image[b.y:b.y + b.h, b.x:b.x + b.w], r.mask[b.y:b.y + b.h, b.x:b.x + b.w]
        if s.rotate and count % LEGACY_TURN_EVERY == 1:
            k = int(rng.integers(4))
            img, lab = np.rot90(img, k), np.rot90(lab, k)
        y, x = tile.place(rng, *lab.shape)
        for c, n in zip(*np.unique(tile.paste(y, x, img, lab), return_counts=True)):
            if int(c) in got:
                got[int(c)] += int(n)
        prev = cls
    m = tile.margin
    labels, image = tile.labels[m:m + side, m:m + side], tile.image[m:m + side, m:m + side]
    labels[labels == IGNORE_INDEX] = s.background
    return image, labels


def _split_pools(boxes: list[Any], val_fraction: float, rng: np.random.Generator) -> dict[str, list[Any]]:
    """Per class, ``val_fraction`` of the boxes to val and the rest to train (none in both)."""
    pools: dict[str, list[Any]] = {"train": [], "val": []}
    by_cls: dict[int, list[Any]] = {}
    for b in boxes:
        by_cls.setdefault(b.cls, []).append(b)
    for c in sorted(by_cls):
        items = by_cls[c]
        n_val = int(round(val_fraction * len(items))) if len(items) > 1 else 0
        for j, i in enumerate(rng.permutation(len(items))):
            pools["val" if j < n_val else "train"].append(items[i])
    return pools


def _tiles_legacy(regions: list[_Region], out: Path, s: _Settings, rng: np.random.Generator):
    from visionforge.data.tiles import _write_pair

    size = s.tile_size
    pools = _split_pools(_legacy_boxes(regions, size), s.val_fraction, rng)
    n_train = s.tile_count or _default_count(regions, size)
    wanted = {"train": n_train, "val": _n_val(n_train, s) if pools["val"] else 0}
    rows, counts = [], {"train": {}, "val": {}}
    for split, n in wanted.items():
        per_side = max(1, min(10, math.isqrt(max(n, 1))))
        t = 0
        for big in range(math.ceil(n / per_side**2)):
            image, labels = _legacy_big_tile(regions, pools[split], per_side * size, s, rng)
            for y in range(0, per_side * size, size):
                for x in range(0, per_side * size, size):
                    if t < n:
                        name = f"big{big:03d}_y{y}_x{x}"
                        _write_pair(out / split, name, image[y:y + size, x:x + size],
                                    labels[y:y + size, x:x + size], counts[split], s.fmt)
                        rows.append({"tile": f"{split}/images/{name}.{s.fmt}", "slide": "composite",
                                     "x0": "", "y0": "", "split": split})
                        t += 1
    return rows, counts


# -- driver -------------------------------------------------------------------------------------
def _prepare_out(out: Path) -> None:
    """Empty a previous tiles folder (ours: it has tiles.json); refuse a foreign non-empty one."""
    if out.exists() and any(out.iterdir()):
        if not (out / "tiles.json").is_file():
            raise ConfigError(f"{out}: folder exists and is not a tiles folder (no tiles.json); "
                              "choose an empty or new out_dir")
        for name in ("train", "val"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("manifest.csv", "tiles.json", "tiles_report.json"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _check_settings(mode: str, tile_size: int, tile_count: int | None, fmt: str,
                    val_fraction: float) -> None:
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: choose one of {', '.join(MODES)}")
    if fmt not in FORMATS:
        raise ConfigError(f"fmt={fmt!r}: choose one of {', '.join(FORMATS)}")
    if not isinstance(tile_size, int) or tile_size < 16:
        raise ConfigError(f"tile_size={tile_size!r} must be an integer >= 16")
    if tile_count is not None and (not isinstance(tile_count, int) or tile_count < 1):
        raise ConfigError(f"tile_count={tile_count!r} must be a positive integer (or None: automatic)")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction={val_fraction!r} must be in [0, 1)")


def _class_lists(cm: ClassMap) -> tuple[list[str], list[list[int]]]:
    """Class names and colours indexed by label value (gaps named ``class_<i>``)."""
    n = max(c.index for c in cm.classes) + 1
    names, colors = [f"class_{i}" for i in range(n)], [[0, 0, 0] for _ in range(n)]
    for c in cm.classes:
        names[c.index], colors[c.index] = c.name, list(c.color)
    return names, colors


def _load_all(paths: list[Path], annotations: Any, cm: ClassMap, mpp: float | None,
              downsample: float | None, holdout: Any, report: dict[str, Any]):
    """Every usable slide's region; failures go to ``report["skipped"]``."""
    skipped, notes = report["skipped"], report["notes"]
    probed = _probe(paths, skipped)
    work = _working_resolution(probed, mpp, downsample, notes)
    regions = []
    for p, slide_mpp in probed:
        try:
            d = _slide_downsample(p, slide_mpp, work, downsample)
            region, tissue = _load_region(p, _annotation_path(p, annotations, paths.index(p)),
                                          cm, d, holdout, notes)
        except VisionforgeError as exc:
            _skip(skipped, p, exc)
            continue
        regions.append(region)
        report["tissue"][p.stem] = tissue
        if region.holdout is not None:
            report["holdout"][p.stem] = list(region.holdout)
        report["slides"].append({"slide": str(p), "stem": p.stem, "mpp": slide_mpp, "downsample": d,
                                 "box": list(region.box), "shape": list(region.mask.shape)})
    if not regions:
        reasons = "; ".join(s["reason"] for s in skipped) or "no slides given"
        raise DataError(f"no slide gave training tiles: {reasons}")
    return regions, work


def make_slide_tiles(slides: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                     out_dir: str | os.PathLike[str], *, annotations: Any = None,
                     class_map: ClassMap | str | os.PathLike[str], mpp: float | None = None,
                     downsample: float | None = None, mode: str | None = None, tile_size: int = 256,
                     tile_count: int | None = None, fmt: str = "png", rotate: bool = True,
                     seed: int = 0, holdout: Any = None, val_fraction: float = 0.1) -> SlideTilesResult:
    """Write training tiles from annotated slides; see the module doc for the modes.

    ``annotations``: ``None`` (beside each slide, same stem, ``.xml`` then ``.geojson``), one
    path, a list aligned with ``slides`` or a mapping ``{slide stem: path}``. ``class_map``: a
    :class:`ClassMap` or its YAML path. ``mpp`` / ``downsample``: the working resolution (give
    at most one; default: the first slide's resolution, other slides resampled to its µm/px).
    ``tile_count``: training tiles (validation gets ``val_fraction`` of it, at least one);
    ``None`` = about as many as the annotated area fills (``simple``: every grid tile).
    ``holdout``: see :func:`parse_holdout`; recorded in ``tiles.json`` for evaluation.
    ``mode=None``: ``VISIONFORGE_TILE_GENERATION_MODE`` (or ``CODAVISION_TILE_GENERATION_MODE``),
    else ``modern``.
    """
    if mode is None:  # VISIONFORGE_TILE_GENERATION_MODE / CODAVISION_TILE_GENERATION_MODE
        from visionforge.config.framework import resolve_setting

        mode = resolve_setting("tile_generation_mode")[0]
    _check_settings(mode, tile_size, tile_count, fmt, val_fraction)
    cm = class_map if isinstance(class_map, ClassMap) else load_class_map(class_map)
    paths = [Path(slides)] if isinstance(slides, str | os.PathLike) else [Path(p) for p in slides]
    out = Path(out_dir)
    report: dict[str, Any] = {"skipped": [], "notes": [], "tissue": {}, "holdout": {}, "slides": []}
    regions, work = _load_all(paths, annotations, cm, mpp, downsample, holdout, report)
    _prepare_out(out)
    background = cm.background_index if cm.background_index is not None else cm.fill_index
    settings = _Settings(mode, tile_size, tile_count, fmt, rotate, seed, val_fraction, background)
    rng = np.random.default_rng(seed)
    writer = {"modern": lambda: _tiles_modern(regions, out, settings),
              "simple": lambda: _tiles_simple(regions, out, settings, rng),
              "legacy": lambda: _tiles_legacy(regions, out, settings, rng)}[mode]
    rows, counts = writer()
    return _write_outputs(out, rows, counts, settings, cm, class_map, work, regions, report)


def _write_outputs(out: Path, rows: list[dict[str, Any]], counts: dict[str, dict[int, int]],
                   s: _Settings, cm: ClassMap, class_map: Any, work: float | None,
                   regions: list[_Region], report: dict[str, Any]) -> SlideTilesResult:
    from visionforge.io import atomic_write, atomic_write_json

    with atomic_write(out / "manifest.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["tile", "slide", "x0", "y0", "split"])
        writer.writeheader()
        writer.writerows(rows)
    num = {split: sum(r["split"] == split for r in rows) for split in ("train", "val")}
    names, colors = _class_lists(cm)
    downsample = regions[0].downsample
    meta = {
        "mpp": work, "downsample": downsample, "tile_size": s.tile_size, "mode": s.mode,
        "seed": s.seed, "format": s.fmt, "rotate": s.rotate, "tile_count": s.tile_count,
        "val_fraction": s.val_fraction, "num_tiles": num, "class_names": names,
        "class_colors": colors, "background_index": s.background, "ignore_index": IGNORE_INDEX,
        "class_map": str(class_map) if not isinstance(class_map, ClassMap) else cm.source,
        "counts": {k: {str(c): n for c, n in sorted(v.items())} for k, v in counts.items()},
        **report,
    }
    path = atomic_write_json(out / "tiles.json", meta)
    for note in report["notes"]:
        log.info("%s", note)
    return SlideTilesResult(out, s.mode, work, downsample, s.tile_size, num, report["slides"],
                            report["skipped"], report["notes"],
                            {k: dict(sorted(v.items())) for k, v in counts.items()},
                            path, out / "manifest.csv")

"""Whole-slide segmentation, streamed tile by tile: :func:`segment_slides`.

Each slide is read at the model's training resolution (model.json ``"slide_mpp"``, or
``mpp=``) one band of rows at a time; tiles of the model's input size overlap and their logits
are blended (Gaussian weights, :func:`visionforge.inference.sliding_window.stream_sliding_window`,
the same grid and arithmetic as ``Predictor.predict_large`` on the whole array). In memory:
one band of ``tile`` rows of logits, that band's raw RGB rows (``uint8``; tiles are
preprocessed per batch), the tile batch; finished label rows go straight into a tiled pyramidal
TIFF (256² tiles, levels /4 and /16 as SubIFDs) and into streamed statistics (pixel counts,
connected objects merged across bands, finished objects retired as a size histogram). Tiles without tissue (tissue mask from
the thumbnail) are not run and are labelled background; inside tissue tiles the model's own
prediction (its background class included) is kept. Per-class logit offsets
(``class_bias``; by default the model dir's ``calibration.json`` from
:mod:`visionforge.slides.calibrate`) are added to the blended logits before the argmax.

Per slide, ``out_dir/<stem>/``: ``labels.tif``, ``overlay.png``, ``tissue.png``,
``composition.csv``, ``objects.csv``, ``slide.json``; per batch ``composition.csv`` and
``summary.json``. Slides are spread over processes with Lightning Fabric (``devices`` /
``num_nodes`` / ``strategy``; one slide per rank, round robin).
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, VisionforgeError
from visionforge.io import atomic_write, atomic_write_json, read_json
from visionforge.slides.composition import BandStats, composition_row, write_csv

__all__ = ["SlideResult", "segment_slides", "write_label_tiff", "default_colors", "TIFF_TILE"]

TIFF_TILE = 256
PYRAMID = (4, 16)
PathLike = str | os.PathLike[str]


@dataclass
class SlideResult:
    """What happened to one slide: ``status`` ``ok``/``failed``/``skipped`` (+ ``reason``)."""

    slide: Path
    status: str
    out_dir: Path
    reason: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    resumed: bool = False


@dataclass(frozen=True)
class _Settings:
    mpp: float | None  # working µm/px; None: work by ``downsample`` (slides without µm/px)
    downsample: float | None
    tile_batch: int
    overlap: float
    tissue: bool
    tissue_mode: str
    tissue_cutoff: float | None
    tissue_method: str
    min_object_px: int
    backend: str
    class_bias: np.ndarray | None = None  # logit offsets [S] added before the argmax


def default_colors(class_names: Sequence[str]) -> list[list[int]]:
    """A colour per class: white for background/whitespace, distinct colours otherwise."""
    base = [(40, 60, 200), (150, 90, 20), (200, 40, 40), (40, 160, 60), (160, 60, 170),
            (230, 160, 30), (30, 170, 170), (120, 120, 120)]
    out, k = [], 0
    for name in class_names:
        if name.lower() in ("background", "whitespace"):
            out.append([255, 255, 255])
        else:
            out.append(list(base[k % len(base)]))
            k += 1
    return out


def _background_index(class_names: Sequence[str]) -> int:
    for i, n in enumerate(class_names):
        if n.lower() in ("background", "whitespace"):
            return i
    return 0


# -- the streamed label map ------------------------------------------------------------------
def _label_rows(pred: Any, reader: Any, downsample: float, shape: tuple[int, int],
                keep: Callable[[int, int], bool] | None, s: _Settings,
                background: int) -> Iterator[np.ndarray]:
    """Finished label rows ``[k, W]`` (uint8) of the slide at the working resolution."""
    from visionforge.inference.sliding_window import stream_sliding_window

    h, w = shape

    def read_rows(y0: int, y1: int) -> np.ndarray:
        """Raw RGB rows as a channels-first ``uint8`` view: tiles are preprocessed per batch
        (``pred.preprocess_tiles``), so no float32 copy of a full-width band exists."""
        box = (0, round(y0 * downsample), round(w * downsample), round((y1 - y0) * downsample))
        rgb = reader.read_at(None, box, downsample=downsample)
        if rgb.shape[:2] != (y1 - y0, w):  # rounding at a non-integer downsample
            fit = np.full((y1 - y0, w, 3), 255, np.uint8)
            hh, ww = min(rgb.shape[0], y1 - y0), min(rgb.shape[1], w)
            fit[:hh, :ww] = rgb[:hh, :ww]
            rgb = fit
        return rgb[..., :3].transpose(2, 0, 1)

    tile = tuple(pred.input_shape[1:])
    for _, total, weight in stream_sliding_window(
        shape, read_rows, pred.dense_logits, tile, num_classes=len(pred.class_names),
        overlap=s.overlap, tile_batch=s.tile_batch, keep=keep, prepare=pred.preprocess_tiles,
    ):
        covered = weight > 0
        # in place: the band's finished rows are ours until the generator's next step
        np.divide(total, weight, out=total, where=covered[None])
        if s.class_bias is not None:  # calibration offsets (visionforge.slides.calibrate)
            total += s.class_bias[:, None, None]
        labels = total.argmax(0).astype(np.uint8)
        labels[~covered] = background
        yield labels


def _rechunk(rows: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """Regroup row blocks into blocks of exactly ``size`` rows (the last may be shorter)."""
    pending: list[np.ndarray] = []
    have = 0
    for block in rows:
        pending.append(block)
        have += len(block)
        while have >= size:
            joined = np.concatenate(pending)
            yield joined[:size]
            rest = joined[size:]
            pending, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.concatenate(pending)


def write_label_tiff(path: PathLike, shape: tuple[int, int], rows: Iterator[np.ndarray], *,
                     mpp: float | None, description: dict[str, Any],
                     observe: Callable[[np.ndarray], None] | None = None,
                     tile: int = TIFF_TILE, levels: Sequence[int] = PYRAMID) -> np.ndarray:
    """Write label rows (top to bottom) as a tiled pyramidal uint8 TIFF; returns level /4.

    Level 0 is written tile by tile as the rows arrive (never held whole); the reduced levels
    (nearest: every ``ds``-th pixel, labels are not averaged) are SubIFDs. ``description`` is
    stored as JSON in the ImageDescription; ``mpp`` as the resolution tags (pixels per cm).
    ``observe`` sees every ``tile``-row band once.
    """
    import tifffile

    h, w = shape
    first = levels[0] if levels else 1
    reduced: list[np.ndarray] = []

    def tiles() -> Iterator[np.ndarray]:
        for band in _rechunk(rows, tile):
            if observe is not None:
                observe(band)
            reduced.append(band[::first, ::first])
            padded = np.zeros((tile, math.ceil(w / tile) * tile), np.uint8)
            padded[: len(band), :w] = band
            for x in range(0, padded.shape[1], tile):
                yield padded[:, x : x + tile]

    res = {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"} if mpp else {}
    kept = [ds for ds in levels if h // ds >= 1 and w // ds >= 1]
    common = {"photometric": "minisblack", "compression": "zlib", "metadata": None}
    with atomic_write(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=h * w > 2**31) as tw:
        # maxworkers=1: tiles are compressed as they come (threads would buffer up to 256 MB)
        tw.write(tiles(), shape=(h, w), dtype=np.uint8, tile=(tile, tile), subifds=len(kept),
                 description=json.dumps(description), maxworkers=1, **common, **res)
        low = np.concatenate(reduced) if reduced else np.zeros((0, 0), np.uint8)
        for ds in kept:
            level = low[:: ds // first, :: ds // first] if ds != first else low
            lres = {"resolution": (1e4 / (mpp * ds), 1e4 / (mpp * ds)),
                    "resolutionunit": "CENTIMETER"} if mpp else {}
            tw.write(level, tile=(tile, tile), subfiletype=1, **common, **lres)
    return low


# -- pictures ---------------------------------------------------------------------------------
def _write_overlay(thumb: np.ndarray, low: np.ndarray, names: Sequence[str],
                   colors: Sequence[Sequence[int]], background: int, path: Path) -> Path:
    """Thumbnail with the labels tinted in their colours and a legend on the right."""
    from PIL import Image, ImageDraw

    th, tw = thumb.shape[:2]
    labels = np.asarray(Image.fromarray(low).resize((tw, th), Image.Resampling.NEAREST))
    pal = np.asarray(colors, np.float32)
    out = thumb[..., :3].astype(np.float32)
    tinted = labels != background
    out[tinted] = 0.5 * out[tinted] + 0.5 * pal[labels[tinted]]
    row_h, legend_w = 22, 200
    canvas = Image.new("RGB", (tw + legend_w, max(th, row_h * (len(names) + 1))), "white")
    canvas.paste(Image.fromarray(out.astype(np.uint8)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, (name, col) in enumerate(zip(names, colors, strict=True)):
        y = 8 + i * row_h
        draw.rectangle([tw + 10, y, tw + 26, y + 16], fill=tuple(col), outline=(0, 0, 0))
        draw.text((tw + 34, y + 2), str(name), fill=(0, 0, 0))
    with atomic_write(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def _tissue_keep(tm: Any, downsample: float, tile: tuple[int, int]) -> Callable[[int, int], bool]:
    """``keep(y, x)``: does the tile at working ``(y, x)`` touch tissue in the thumbnail mask?"""
    mask, scale = tm.mask, downsample / tm.downsample  # working px -> mask px
    th, tw = tile

    def keep(y: int, x: int) -> bool:
        y0, x0 = int(y * scale), int(x * scale)
        y1, x1 = max(y0 + 1, math.ceil((y + th) * scale)), max(x0 + 1, math.ceil((x + tw) * scale))
        return bool(mask[y0:y1, x0:x1].any())

    return keep


# -- one slide --------------------------------------------------------------------------------
def _segment_one(pred: Any, path: Path, out: Path, s: _Settings,
                 bias_record: dict[str, Any]) -> dict[str, Any]:
    """Segment one slide into ``out``; returns the slide.json fields (status ok/skipped)."""
    from dataclasses import replace

    from visionforge.slides.reader import open_slide
    from visionforge.slides.tissue import tissue_mask, write_tissue_preview

    names = list(pred.class_names)
    colors = pred.meta.get("class_colors") or default_colors(names)
    bg = _background_index(names)
    with open_slide(path) as reader:
        d = s.mpp / reader.mpp if s.mpp is not None else float(s.downsample or 1.0)
        work_mpp = reader.mpp * d if reader.has_mpp else None
        w0, h0 = reader.dimensions
        shape = (max(1, round(h0 / d)), max(1, round(w0 / d)))
        thumb = reader.thumbnail(1024)
        tm = replace(tissue_mask(thumb, s.tissue_mode, s.tissue_cutoff, method=s.tissue_method),
                     downsample=w0 / thumb.shape[1], source=str(path))
        out.mkdir(parents=True, exist_ok=True)
        write_tissue_preview(thumb, tm, out / "tissue.png")
        info: dict[str, Any] = {
            "mpp": work_mpp, "slide_mpp": reader.mpp if reader.has_mpp else None, "downsample": d, "shape": list(shape),
            "tissue": {**tm.to_dict(), "used": s.tissue}, "class_names": names,
            "class_colors": colors, "class_bias": bias_record}
        if s.tissue and tm.empty:
            return {**info, "status": "skipped", "reason": tm.message}
        tile = tuple(pred.input_shape[1:])
        keep = _tissue_keep(tm, d, tile) if s.tissue else None
        counted = {"run": 0, "skipped": 0}

        def keep_counted(y: int, x: int) -> bool:
            ok = keep is None or keep(y, x)
            counted["run" if ok else "skipped"] += 1
            return ok

        stats = BandStats(len(names), [i for i in range(len(names)) if i != bg])
        desc = {"visionforge": "slide labels", "class_names": names, "class_colors": colors,
                "mpp": work_mpp, "downsample": d, "background": bg, "slide": path.name}
        rows = _label_rows(pred, reader, d, shape, keep_counted, s, bg)
        low = write_label_tiff(out / "labels.tif", shape, rows, mpp=work_mpp, description=desc,
                               observe=stats.feed)
    _write_overlay(thumb, low, names, colors, bg, out / "overlay.png")
    comp = composition_row(path.stem, stats.counts, names, bg, work_mpp)
    write_csv(out / "composition.csv", [comp])
    objects = stats.objects(names, s.min_object_px)
    write_csv(out / "objects.csv", [{"Image name": path.stem, **o} for o in objects])
    return {**info, "status": "ok", "reason": None, "composition": comp, "tiles": counted,
            "objects": {o["class"]: o["count"] for o in objects}}


def _run_slide(pred: Any, path: Path, out: Path, s: _Settings, resume: bool,
               bias_record: dict[str, Any]) -> SlideResult:
    """Segment (or resume) one slide; any error becomes a ``failed`` result, not an exception.

    A slide finished with other class offsets is done again.
    """
    record = out / "slide.json"
    if resume and record.is_file():
        try:
            old = read_json(record)
        except Exception:  # noqa: BLE001 - a damaged record means: do it again
            old = {}
        same_bias = (old.get("class_bias") or {}).get("values") == bias_record["values"]
        if old.get("status") == "ok" and (out / "labels.tif").is_file() and same_bias:
            return SlideResult(path, "ok", out, None, old, resumed=True)
    start = time.perf_counter()
    try:
        info = _segment_one(pred, path, out, s, bias_record)
    except (VisionforgeError, OSError, ValueError) as exc:
        info = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:  # noqa: BLE001 - one bad slide must not stop the batch
        info = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5)}
    info = {"slide": str(path), **info, "seconds": round(time.perf_counter() - start, 3)}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(record, info)
    return SlideResult(path, info["status"], out, info.get("reason"), info)


# -- the batch --------------------------------------------------------------------------------
def _resolve_mpp(meta: dict[str, Any], mpp: float | None,
                 model_dir: Path) -> tuple[float | None, float | None]:
    """``(working µm/px, None)``, or ``(None, downsample)`` for a model trained by downsample."""
    value = mpp if mpp is not None else meta.get("slide_mpp")
    if value is None and meta.get("slide_downsample"):
        return None, _positive(meta["slide_downsample"], "slide_downsample")
    if value is None:
        raise ConfigError(
            f"{model_dir / 'model.json'} has no \"slide_mpp\" (the µm/px the model was trained "
            "at); pass mpp= (e.g. segment_slides(..., mpp=1.0) or `slides segment ... mpp=1.0`)")
    return _positive(value, "mpp"), None


def _positive(value: Any, key: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r} must be a number") from None
    if not out > 0:
        raise ConfigError(f"{key}={value!r} must be positive")
    return out


def _slide_dirs(slides: Sequence[PathLike], out_dir: Path) -> list[tuple[Path, Path]]:
    paths = [Path(p) for p in slides]
    if not paths:
        raise ConfigError("segment_slides: no slides given")
    stems: dict[str, Path] = {}
    for p in paths:
        if p.stem in stems and stems[p.stem] != p:
            raise ConfigError(f"two slides share the name {p.stem!r} ({stems[p.stem]}, {p}): "
                              "their outputs would clash in out_dir; rename one")
        stems[p.stem] = p
    return [(p, out_dir / p.stem) for p in dict.fromkeys(paths)]


class _Single:
    """The one-process stand-in for a Fabric object."""

    global_rank, world_size, device = 0, 1, "auto"

    def barrier(self) -> None:
        pass


def _launch(devices: int | str, num_nodes: int, strategy: str) -> Any:
    """A Fabric launched over ``devices × num_nodes`` processes, or :class:`_Single`."""
    spread = str(devices) not in ("1", "auto") or int(num_nodes) > 1
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if not spread and world <= 1:
        return _Single()
    if not spread:  # launched by torchrun/SLURM: take the launcher's processes
        devices = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        num_nodes = max(1, world // int(devices))
    from lightning.fabric import Fabric

    fabric = Fabric(accelerator="auto", devices=devices, num_nodes=int(num_nodes),
                    strategy="ddp" if strategy == "auto" else strategy)
    fabric.launch()
    return fabric


def _write_batch(out_dir: Path, results: list[SlideResult], model_dir: Path, s: _Settings,
                 world: int) -> None:
    rows = [r.info["composition"] for r in results if r.status == "ok" and "composition" in r.info]
    header = list(dict.fromkeys(k for row in rows for k in row)) if rows else ["Image name"]
    write_csv(out_dir / "composition.csv", rows, header)
    atomic_write_json(out_dir / "summary.json", {
        "model_dir": str(model_dir), "mpp": s.mpp, "downsample": s.downsample, "processes": world,
        "class_bias": None if s.class_bias is None else s.class_bias.tolist(),
        "counts": {st: sum(r.status == st for r in results) for st in ("ok", "failed", "skipped")},
        "slides": [{"slide": str(r.slide), "status": r.status, "reason": r.reason,
                    "out": str(r.out_dir), "seconds": r.info.get("seconds"),
                    "resumed": r.resumed} for r in results],
    })


def segment_slides(
    model_dir: PathLike,
    slides: Sequence[PathLike],
    out_dir: PathLike,
    *,
    mpp: float | None = None,
    tile_batch: int = 8,
    overlap: float = 0.25,
    tissue: bool = True,
    tissue_mode: str = "he",
    tissue_cutoff: float | None = None,
    tissue_method: str = "triangle",
    min_object_px: int = 32,
    resume: bool = True,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    backend: str = "auto",
    class_bias: Any = "auto",
) -> list[SlideResult]:
    """Segment whole slides with a model dir; see the module docstring for the outputs.

    Args:
        mpp: working µm/px (default: model.json's ``"slide_mpp"``; a model trained on tiles
            cut by downsample, with ``"slide_downsample"`` only, works at that downsample).
        tile_batch: tiles per forward pass (bounds the memory in flight).
        overlap: share of a tile overlapping its neighbour (blended with Gaussian weights).
        tissue, tissue_mode, tissue_cutoff, tissue_method: restrict to the tissue mask
            (``he``/``grayscale``; cutoff found by ``triangle`` or ``otsu`` unless given); a
            slide without tissue is reported as ``skipped``.
        min_object_px: smallest connected object counted in ``objects.csv`` (working px).
        resume: skip slides whose ``slide.json`` says ``ok``.
        devices, num_nodes, strategy: spread slides over processes (Lightning Fabric);
            one slide per rank, round robin; rank 0 writes the batch files.
        backend: Predictor backend on CPU (``auto``/``torch``/``onnxruntime``).
        class_bias: per-class offsets added to the blended logits before the argmax:
            ``auto`` (the model dir's ``calibration.json`` from ``slides calibrate`` when there
            is one), ``none``, or one number per class (``"0,0.3,-0.1"`` or a sequence); see
            :func:`visionforge.slides.calibrate.resolve_class_bias`. Recorded in slide.json.

    Returns:
        One :class:`SlideResult` per slide (every rank gets all of them); a failing slide is
        ``failed`` with its reason, and the other slides are still done.
    """
    from visionforge.inference import Predictor
    from visionforge.models.model_dir import read_model_meta
    from visionforge.slides.calibrate import resolve_class_bias
    from visionforge.slides.tissue import METHODS

    model_dir, out = Path(model_dir), Path(out_dir)
    meta = read_model_meta(model_dir)
    if meta.get("task") != "segmentation" or not meta.get("class_names"):
        raise ConfigError(f"{model_dir}: segment_slides needs a segmentation model with "
                          f"class_names in model.json (task is {meta.get('task')!r})")
    bias = resolve_class_bias(class_bias, model_dir, meta["class_names"])
    if tissue_method not in METHODS:
        raise ConfigError(f"tissue_method={tissue_method!r}: use one of {', '.join(METHODS)}")
    s = _Settings(*_resolve_mpp(meta, mpp, model_dir), int(tile_batch), float(overlap),
                  bool(tissue), tissue_mode, tissue_cutoff, tissue_method, int(min_object_px), backend,
                  None if bias.values is None else np.asarray(bias.values, np.float32))
    jobs = _slide_dirs(slides, out)
    out.mkdir(parents=True, exist_ok=True)
    fabric = _launch(devices, num_nodes, strategy)
    rank, world = fabric.global_rank, fabric.world_size
    mine = jobs[rank::world]
    done: dict[Path, SlideResult] = {}
    if mine:
        pred = Predictor(model_dir, backend=backend, batch_size=s.tile_batch,
                         device=str(fabric.device))
        for path, slide_out in mine:
            done[path] = _run_slide(pred, path, slide_out, s, resume, bias.to_dict())
    fabric.barrier()
    results = [done.get(p) or _read_result(p, o) for p, o in jobs]
    if rank == 0:
        _write_batch(out, results, model_dir, s, world)
    fabric.barrier()
    return results


def _read_result(path: Path, out: Path) -> SlideResult:
    info = read_json(out / "slide.json")
    return SlideResult(path, info.get("status", "failed"), out, info.get("reason"), info,
                       resumed=False)

"""The slide report: CODAvision's evaluation PDF for a folder of segmented slides.

:func:`write_slide_report` reads what ``slides segment`` wrote (``<out>/<slide stem>/slide.json``,
``labels.tif``, ``composition.csv``) and writes one A4 PDF (matplotlib ``PdfPages``, no extra
dependency) with, in order:

1. a title page: model, slides (with their status; failed and skipped slides say why), date,
   library versions, the colour legend, and why any section below was left out;
2. the confusion matrix on held-out annotated regions (annotations rasterised at the working
   resolution, compared pixel by pixel with ``labels.tif``), with per-class precision, recall
   and IoU;
3. annotation-check pages (slide thumbnail + annotation overlay, one per slide);
4. classification-check pages (slide thumbnail + prediction overlay from ``labels.tif``);
5. composition tables (each slide's ``composition.csv``);
6. runtimes (``slide.json`` seconds, status, size).

A section with nothing to show is left out and the title page says why. The numbers behind the
confusion matrix go to ``<pdf stem>_metrics.json`` next to the PDF.
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.io import atomic_write, atomic_write_json, read_json
from visionforge.slides.classmap import IGNORE_INDEX, ClassMap, load_class_map

__all__ = ["write_slide_report", "heldout_confusion", "confusion_scores", "read_label_window"]

PathLike = str | Path
Box = tuple[int, int, int, int]
A4 = (8.27, 11.69)
THUMB_PX = 1024
ANNOTATION_SUFFIXES = (".xml", ".geojson", ".json")
SECTIONS = ("confusion matrix", "annotation check", "classification check", "composition", "runtimes")


@dataclass
class SlideEntry:
    """One slide's segmentation folder and what the report found for it."""

    stem: str
    folder: Path
    info: dict[str, Any]
    slide_path: Path | None = None
    annotation_path: Path | None = None
    region: Box | None = None
    notes: list[str] = field(default_factory=list)
    _annotations: Any = None

    def annotations(self) -> Any:
        """The slide's annotations (read once)."""
        from visionforge.slides.annotations import read_annotations

        if self._annotations is None and self.annotation_path is not None:
            self._annotations = read_annotations(self.annotation_path)
        return self._annotations

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def downsample(self) -> float:
        return float(self.info.get("downsample") or 1.0)

    @property
    def labels(self) -> Path:
        return self.folder / "labels.tif"


# -- gathering ---------------------------------------------------------------------------------
def _entries(segment_dir: Path) -> list[SlideEntry]:
    if not segment_dir.is_dir():
        raise DataError(f"{segment_dir}: segmentation folder not found (the out= folder of "
                        "`visionforge slides segment`)")
    out = []
    for js in sorted(segment_dir.glob("*/slide.json")):
        try:
            info = read_json(js)
        except Exception as exc:  # noqa: BLE001 - any unreadable JSON is reported the same way
            raise DataError(f"{js}: cannot read slide.json ({exc})") from None
        if not isinstance(info, Mapping):
            raise DataError(f"{js}: slide.json must hold a JSON object")
        out.append(SlideEntry(js.parent.name, js.parent, dict(info)))
    if not out:
        raise DataError(f"{segment_dir}: no <slide>/slide.json found; run `visionforge slides "
                        "segment MODEL_DIR SLIDE... out=DIR` and pass that DIR")
    return out


def _tiles_info(regions: Any) -> tuple[dict[str, Any] | None, Path | None]:
    """``tiles.json`` content and path when ``regions`` names a tiles folder or file."""
    if regions is None or isinstance(regions, Mapping):
        return None, None
    p = Path(regions)
    js = p / "tiles.json" if p.is_dir() else p
    if not js.is_file():
        raise DataError(f"regions={regions}: no tiles.json there; pass the out_dir of "
                        "`visionforge slides tiles` or a {slide_stem: [x0, y0, w, h]} mapping")
    info = read_json(js)
    if not isinstance(info, Mapping):
        raise DataError(f"{js}: tiles.json must hold a JSON object")
    return dict(info), js


def _regions(regions: Any, tiles: dict[str, Any] | None, source: Path | None) -> dict[str, Box]:
    raw = regions if isinstance(regions, Mapping) else (tiles or {}).get("holdout") or {}
    if not isinstance(raw, Mapping):
        raise DataError(f"{source}: 'holdout' must map slide stems to [x0, y0, w, h]")
    out = {}
    for stem, box in raw.items():
        if box is None:
            continue
        vals = list(box) if isinstance(box, Sequence) and not isinstance(box, str) else []
        if len(vals) != 4 or not all(isinstance(v, int | float) for v in vals) or min(vals[2:]) <= 0:
            raise DataError(f"{source or 'regions'}: held-out region of {stem!r} must be "
                            f"[x0, y0, w, h] in level-0 pixels with w, h > 0, got {box!r}")
        out[str(stem)] = tuple(int(round(v)) for v in vals)
    return out


def _class_map(class_map: Any, tiles: dict[str, Any] | None, tiles_src: Path | None,
               entries: list[SlideEntry]) -> ClassMap | None:
    """The class map given, else the one tiles.json names, else one from slide.json's classes."""
    if isinstance(class_map, ClassMap):
        return class_map
    if class_map is not None:
        return load_class_map(class_map)
    cm_path = (tiles or {}).get("class_map")
    if cm_path:
        p = Path(cm_path)
        p = p if p.is_absolute() or p.is_file() or tiles_src is None else tiles_src.parent / p
        if p.is_file():
            return load_class_map(p)
    for e in entries:
        names = e.info.get("class_names")
        if names:
            colors = e.info.get("class_colors")
            bg = "background" if "background" in names else None
            return ClassMap.from_layers(list(names), [tuple(c) for c in colors] if colors else None, bg)
    return None


def _find_slide(entry: SlideEntry, segment_dir: Path, tiles: dict[str, Any] | None) -> Path | None:
    candidates = []
    if entry.info.get("slide"):
        s = Path(str(entry.info["slide"]))
        candidates += [s, segment_dir / s, entry.folder / s]
    candidates += [Path(str(s)) for s in (tiles or {}).get("slides") or [] if Path(str(s)).stem == entry.stem]
    return next((c for c in candidates if c.is_file()), None)


def _find_annotations(entry: SlideEntry, annotations: Any) -> Path | None:
    """``annotations``: None (beside the slide), a folder, one file, or {stem: file}."""
    if isinstance(annotations, Mapping):
        given = annotations.get(entry.stem)
        return Path(given) if given is not None else None
    if annotations is not None and Path(annotations).is_file():
        return Path(annotations)
    base = Path(annotations) / entry.stem if annotations is not None else (
        entry.slide_path.with_suffix("") if entry.slide_path else None)
    if base is None:
        return None
    return next((base.with_name(base.name + s) for s in ANNOTATION_SUFFIXES
                 if base.with_name(base.name + s).is_file()), None)


# -- evaluation ----------------------------------------------------------------------------------
def read_label_window(path: PathLike, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of level 0 of a label TIFF, read by window."""
    import tifffile

    try:
        return np.asarray(tifffile.imread(path, selection=(slice(*rows), slice(*cols)), level=0))
    except Exception:  # noqa: BLE001 - older tifffile/zarr: read the page, then crop
        try:
            return np.asarray(tifffile.imread(path, level=0))[slice(*rows), slice(*cols)]
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: cannot read the label TIFF ({exc})") from None


def _label_shape(path: PathLike) -> tuple[int, int]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return tuple(int(v) for v in tif.series[0].levels[0].shape[:2])  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: cannot read the label TIFF ({exc})") from None


def heldout_confusion(labels_path: PathLike, annotations: Any, class_map: ClassMap, region: Box,
                      downsample: float) -> tuple[np.ndarray, dict[str, int]]:
    """Pixel confusion matrix (rows true, columns predicted, classes in index order) of one
    held-out level-0 ``region`` and counts of the pixels compared and left out.

    Truth is ``rasterize(annotations, class_map, region, downsample)``; pixels the class map
    leaves unannotated (``unannotated: ignore``) or whose prediction is no class are left out.
    """
    from visionforge.slides.rasterize import rasterize

    truth = rasterize(annotations, class_map, region, downsample, source=str(labels_path))
    x0, y0 = round(region[0] / downsample), round(region[1] / downsample)
    height, width = _label_shape(labels_path)
    h, w = min(truth.shape[0], height - y0), min(truth.shape[1], width - x0)
    if h <= 0 or w <= 0 or x0 < 0 or y0 < 0:
        raise DataError(f"{labels_path}: held-out region {list(region)} lies outside the label map "
                        f"({width}x{height} px at downsample {downsample:g})")
    truth = truth[:h, :w]
    pred = read_label_window(labels_path, (y0, y0 + h), (x0, x0 + w))
    indices = sorted(c.index for c in class_map.classes)
    lut = np.full(256, -1, np.int64)
    lut[indices] = np.arange(len(indices))
    t, p = lut[truth.astype(np.int64)], lut[np.clip(pred.astype(np.int64), 0, 255)]
    unannotated = int(np.count_nonzero(truth == IGNORE_INDEX))
    keep = (t >= 0) & (p >= 0)
    n = len(indices)
    cm = np.bincount(t[keep] * n + p[keep], minlength=n * n).reshape(n, n)
    counts = {"compared": int(keep.sum()), "unannotated": unannotated,
              "no_prediction": int(np.count_nonzero((t >= 0) & (p < 0)))}
    return cm, counts


def confusion_scores(cm: np.ndarray) -> dict[str, Any]:
    """Per-class precision, recall, IoU and support, overall accuracy and mean IoU (NaN-free:
    an undefined score is ``None``; the mean IoU is over classes present in truth or prediction)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp, rows, cols = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    union = rows + cols - tp

    def ratio(a: np.ndarray, b: np.ndarray) -> list[float | None]:
        return [float(x / y) if y > 0 else None for x, y in zip(a, b, strict=True)]

    iou = ratio(tp, union)
    present = [v for v in iou if v is not None]
    return {"precision": ratio(tp, cols), "recall": ratio(tp, rows), "iou": iou,
            "support": [int(v) for v in rows], "predicted": [int(v) for v in cols],
            "accuracy": float(tp.sum() / cm.sum()) if cm.sum() else None,
            "mean_iou": float(np.mean(present)) if present else None}


def _evaluate(entries: list[SlideEntry], cmap: ClassMap | None, notes: dict[str, str]) -> dict[str, Any] | None:
    if cmap is None:
        notes["confusion matrix"] = "no class map (pass class_map= or tiles=TILES_DIR)"
        return None
    per_slide, total = {}, None
    for e in entries:
        if e.region is None:
            continue
        why = ("segmentation " + e.status if not e.ok else "no labels.tif" if not e.labels.is_file()
               else "no annotation file found" if e.annotation_path is None else None)
        if why:
            e.notes.append(f"held-out region not evaluated: {why}")
            continue
        _check_classes(e, cmap)
        cm, counts = heldout_confusion(e.labels, e.annotations(), cmap, e.region, e.downsample)
        per_slide[e.stem] = {"region": list(e.region), "confusion_matrix": cm.tolist(), **counts,
                             **confusion_scores(cm)}
        total = cm if total is None else total + cm
    if total is None or not total.sum():
        notes["confusion matrix"] = ("no held-out regions given (pass regions= or tiles=TILES_DIR)"
                                     if not any(e.region for e in entries)
                                     else "no held-out region could be evaluated (see the slide list)")
        return None
    names = [c.name for c in sorted(cmap.classes, key=lambda c: c.index)]
    return {"class_names": names, "confusion_matrix": total.tolist(), **confusion_scores(total),
            "slides": per_slide}


def _check_classes(entry: SlideEntry, cmap: ClassMap) -> None:
    """The model's classes (slide.json) must be the class map's, index for index."""
    names = entry.info.get("class_names")
    if not names:
        return
    by_index = {c.index: c.name.casefold() for c in cmap.classes}
    bad = [f"{i}: {n!r} vs {cmap_name!r}" for i, n in enumerate(names)
           if (cmap_name := by_index.get(i)) is not None and cmap_name != str(n).casefold()]
    if bad:
        raise DataError(f"{entry.folder / 'slide.json'}: the model's classes do not match the class "
                        f"map {cmap.source} ({'; '.join(bad)}); pass the class map used for training")


# -- drawing -------------------------------------------------------------------------------------
def _page(title: str | None = None) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4, dpi=100)
    if title:
        fig.text(0.07, 0.955, title, fontsize=15, weight="bold", va="top")
    return fig


def _text_block(fig: Any, y: float, lines: Sequence[str], size: float = 9.5, x: float = 0.07) -> float:
    """Write ``lines`` from height ``y`` (figure fraction) down; return the height below them."""
    step = size * 1.45 / 72 / A4[1]
    for i, line in enumerate(lines):
        bold = line.startswith("## ")
        fig.text(x, y - i * step, line[3:] if bold else line, fontsize=size + (1.5 if bold else 0),
                 weight="bold" if bold else "normal", va="top", family="DejaVu Sans")
    return y - len(lines) * step


def _colors01(cmap: ClassMap) -> dict[int, np.ndarray]:
    return {c.index: np.asarray(c.color, np.float64) / 255.0 for c in cmap.classes}


def _legend(fig: Any, y: float, cmap: ClassMap) -> float:
    """The colour legend: one swatch per class (index, name, RGB)."""
    from matplotlib.patches import Rectangle

    y = _text_block(fig, y, ["## Colour legend"])
    row = 0.024
    for i, c in enumerate(sorted(cmap.classes, key=lambda c: c.index)):
        yy = y - (i + 0.6) * row
        fig.patches.append(Rectangle((0.08, yy - 0.008), 0.045, 0.016, transform=fig.transFigure,
                                     facecolor=np.asarray(c.color) / 255, edgecolor="black", lw=0.6))
        extra = " (background: not coloured on the check pages)" if c.name == cmap.background else ""
        fig.text(0.14, yy, f"{c.index}  {c.name}   RGB {tuple(c.color)}{extra}", fontsize=9.5, va="center")
    return y - (len(cmap.classes) + 0.8) * row


def _title_page(pdf: Any, ctx: dict[str, Any]) -> None:
    import textwrap

    fig = _page("Slide segmentation report")
    lines = [f"Date: {ctx['date']}", f"Segmentation folder: {ctx['segment_dir']}",
             f"Model: {ctx['model']}", *ctx["extra"], ""]
    entries: list[SlideEntry] = ctx["entries"]
    lines.append(f"## Slides ({len(entries)}: {sum(e.ok for e in entries)} ok)")
    shown = entries[:16]
    for e in shown:
        why = f" — {e.info.get('reason')}" if not e.ok and e.info.get("reason") else ""
        lines.append(f"  {e.stem}: {'ok' if e.ok else e.status.upper()}{why}")
        lines += [f"      {n}" for n in e.notes[:2]]
    if len(entries) > len(shown):
        lines.append(f"  ... and {len(entries) - len(shown)} more (see Runtimes)")
    lines += ["", "## Sections"]
    for s in SECTIONS:
        lines.append(f"  {s}: " + (f"omitted — {ctx['notes'][s]}" if s in ctx["notes"] else
                                   f"page {ctx['pages'][s]}"))
    metrics = ctx.get("metrics")
    if metrics:
        px = sum(s["compared"] for s in metrics["slides"].values())
        lines += ["", f"Held-out regions: pixel accuracy {_f(metrics['accuracy'])}, "
                      f"mean IoU {_f(metrics['mean_iou'])} over {px:,} annotated pixels"]
    y = _text_block(fig, 0.91, [_clip(line, 105) for line in lines])
    if ctx["class_map"] is not None:
        y = _legend(fig, y - 0.01, ctx["class_map"])
    vers = textwrap.wrap(", ".join(f"{k} {v}" for k, v in ctx["versions"].items()), 120)
    _text_block(fig, min(y - 0.01, 0.05 + 0.018 * (len(vers) + 1)), ["## Versions", *vers], size=8)
    _footer(fig, 1)
    pdf.savefig(fig)


def _f(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _footer(fig: Any, page: int) -> None:
    fig.text(0.5, 0.025, f"visionforge slide report — page {page}", ha="center", fontsize=8, color="grey")


def _table(ax: Any, header: Sequence[str], rows: Sequence[Sequence[str]], size: float = 9) -> None:
    """A table filling ``ax``; columns as wide as their longest cell, long headers on two lines."""
    ax.axis("off")
    head = [h.rsplit(" ", 1)[0] + "\n" + h.rsplit(" ", 1)[1] if len(h) > 12 and " " in h else h
            for h in header]
    longest = [max([len(line) for line in h.split("\n")] + [len(str(r[i])) for r in rows] + [5]) + 2
               for i, h in enumerate(head)]
    tab = ax.table(cellText=[list(r) for r in rows], colLabels=head, loc="upper center",
                   cellLoc="center", colWidths=[n / sum(longest) for n in longest])
    tab.auto_set_font_size(False)
    tab.set_fontsize(size)
    tab.scale(1, 1.35)
    for (r, _), cell in tab.get_celld().items():
        if r == 0:
            cell.set_facecolor("#e6e6e6")
            cell.set_text_props(weight="bold")
            cell.set_height(cell.get_height() * (2 if any("\n" in h for h in head) else 1))


def _confusion_page(pdf: Any, metrics: dict[str, Any], page: int) -> None:
    import matplotlib.image as mpimg

    from visionforge.evaluation.plots import plot_confusion_matrix

    fig = _page("Confusion matrix on held-out annotated regions")
    names = metrics["class_names"]
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_confusion_matrix(metrics["confusion_matrix"], names, Path(tmp) / "cm.png")
        img = mpimg.imread(png)
    h, w = img.shape[:2]
    width = 0.86
    height = width * A4[0] / A4[1] * h / w
    ax = fig.add_axes((0.07, 0.92 - height, width, height))
    ax.imshow(img)
    ax.axis("off")
    rows = [[n, _f(p), _f(r), _f(i), f"{s:,}", f"{q:,}"] for n, p, r, i, s, q in zip(
        names, metrics["precision"], metrics["recall"], metrics["iou"], metrics["support"],
        metrics["predicted"], strict=True)]
    top = 0.9 - height
    y = _text_block(fig, top, [f"Rows: annotated class; columns: predicted class. Pixel accuracy "
                               f"{_f(metrics['accuracy'])}, mean IoU {_f(metrics['mean_iou'])}."])
    tab_h = 0.03 * (len(rows) + 1)
    _table(fig.add_axes((0.07, y - tab_h - 0.01, 0.86, tab_h)),
           ["class", "precision", "recall", "IoU", "annotated px", "predicted px"], rows)
    lines = ["Regions (level-0 px x0, y0, w, h):"] + [
        f"  {stem}: {s['region']}  — {s['compared']:,} px compared, {s['unannotated']:,} unannotated "
        f"and {s['no_prediction']:,} without prediction left out; mean IoU {_f(s['mean_iou'])}"
        for stem, s in list(metrics["slides"].items())[:12]]
    _text_block(fig, y - tab_h - 0.04, [_clip(line, 120) for line in lines], size=8.5)
    _footer(fig, page)
    pdf.savefig(fig)


def _thumbnail(entry: SlideEntry) -> tuple[np.ndarray, float] | None:
    """Slide thumbnail (longest side ``THUMB_PX``) and its level-0 downsample; None if unreadable."""
    from visionforge.slides.reader import open_slide

    if entry.slide_path is None:
        return None
    try:
        with open_slide(entry.slide_path) as slide:
            w, h = slide.dimensions
            ds = max(w / THUMB_PX, h / THUMB_PX, 1.0)
            return slide.read_at(None, (0, 0, w, h), downsample=ds), ds
    except DataError as exc:
        entry.notes.append(f"slide not readable: {exc}")
        return None


def _prediction_thumb(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """``labels.tif`` at ``shape`` (nearest), read from the smallest pyramid level big enough."""
    import tifffile
    from PIL import Image

    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        fit = [lv for lv in levels if lv.shape[0] >= shape[0] and lv.shape[1] >= shape[1]]
        level = min(fit, key=lambda lv: lv.shape[0] * lv.shape[1]) if fit else levels[0]
        arr = np.asarray(level.asarray())
    if arr.ndim == 3:
        arr = arr[..., 0]
    return np.asarray(Image.fromarray(arr.astype(np.uint8)).resize(shape[::-1], Image.Resampling.NEAREST))


def _blend(rgb: np.ndarray, labels: np.ndarray, cmap: ClassMap, alpha: float = 0.55) -> np.ndarray:
    """Class colours over the image; background and unlabelled pixels stay as they are."""
    out = rgb.astype(np.float64) / 255.0
    for index, color in _colors01(cmap).items():
        if index == cmap.background_index:
            continue
        sel = labels == index
        out[sel] = (1 - alpha) * out[sel] + alpha * color
    return np.clip(out, 0, 1)


def _check_page(pdf: Any, title: str, entry: SlideEntry, thumb: np.ndarray, overlay: np.ndarray,
                ds: float, caption: str, page: int) -> None:
    from matplotlib.patches import Rectangle

    fig = _page(title)
    fig.text(0.07, 0.92, _clip(f"{entry.stem} — {caption}", 110), fontsize=10, va="top")
    for k, (img, label) in enumerate(((thumb, "slide"), (overlay, caption))):
        ax = fig.add_axes((0.07, 0.49 - k * 0.44, 0.86, 0.41))
        ax.imshow(img, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if entry.region is not None:
            x0, y0, w, h = (v / ds for v in entry.region)
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, ec="black", ls="--", lw=1.2))
    if entry.region is not None:
        fig.text(0.07, 0.045, "dashed box: held-out region used for the confusion matrix", fontsize=8)
    _footer(fig, page)
    pdf.savefig(fig)


def _check_pages(entries: list[SlideEntry], cmap: ClassMap | None) -> tuple[list[tuple], list[tuple]]:
    """(annotation-check, classification-check) page specs, one per slide that has the data."""
    from visionforge.slides.rasterize import rasterize

    ann_pages, cls_pages = [], []
    for e in entries:
        got = _thumbnail(e)
        if got is None:
            continue
        thumb, ds = got
        region = (0, 0, round(thumb.shape[1] * ds), round(thumb.shape[0] * ds))
        if cmap is not None and e.annotation_path is not None:
            truth = rasterize(e.annotations(), cmap, region, ds, source=e.annotation_path)
            truth = truth[: thumb.shape[0], : thumb.shape[1]]
            ann_pages.append((e, thumb, _blend(thumb, truth, cmap), ds, f"annotations ({e.annotation_path.name})"))
        if cmap is not None and e.ok and e.labels.is_file():
            pred = _prediction_thumb(e.labels, thumb.shape[:2])
            cls_pages.append((e, thumb, _blend(thumb, pred, cmap), ds, "prediction (labels.tif)"))
    return ann_pages, cls_pages


def _composition(entries: list[SlideEntry]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per slide row of composition.csv): tissue % per class, then pixels."""
    header: list[str] = []
    rows: list[dict[str, str]] = []
    for e in entries:
        path = e.folder / "composition.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                rows.append({"slide": e.stem, **row})
                header += [k for k in row if k not in header and k.endswith((" TC(%)", " PC"))]
    if not header:
        return [], []
    header.sort(key=lambda k: not k.endswith("TC(%)"))  # tissue % first, pixel counts after
    return ["slide", *header], [[r["slide"], *(_num(r.get(k, "")) for k in header)] for r in rows]


def _num(text: str) -> str:
    try:
        v = float(text)
    except ValueError:
        return text
    return f"{int(v):,}" if v.is_integer() and abs(v) >= 100 else f"{v:.2f}"


def _table_pages(pdf: Any, title: str, header: list[str], rows: list[list[str]], page: int,
                 note: str = "", fixed: int = 1, per_page: int = 32, max_cols: int = 7) -> int:
    """``header``/``rows`` over as many A4 pages as needed (the first ``fixed`` columns repeat)."""
    col_chunks = [header[fixed:][i:i + max_cols - fixed] for i in range(0, max(1, len(header) - fixed), max_cols - fixed)]
    for cols in col_chunks:
        idx = list(range(fixed)) + [header.index(c) for c in cols]
        for start in range(0, len(rows), per_page):
            chunk = rows[start:start + per_page]
            fig = _page(title)
            if note:
                _text_block(fig, 0.92, [note], size=9)
            h = 0.028 * (len(chunk) + 1)
            _table(fig.add_axes((0.05, 0.88 - h, 0.9, h)), [_clip(header[i], 22) for i in idx],
                   [[_clip(r[i], 40) for i in idx] for r in chunk], size=8.5)
            _footer(fig, page)
            pdf.savefig(fig)
            page += 1
    return page


def _runtime_rows(entries: list[SlideEntry]) -> list[list[str]]:
    rows = []
    for e in entries:
        i = e.info
        secs = i.get("seconds")
        shape = i.get("shape")
        rows.append([e.stem, e.status, _f(float(secs), 1) if isinstance(secs, int | float) else "n/a",
                     "x".join(str(v) for v in shape) if isinstance(shape, list) else "",
                     _f(i.get("mpp"), 3) if isinstance(i.get("mpp"), int | float) else "",
                     _f(float(i["downsample"]), 2) if isinstance(i.get("downsample"), int | float) else "",
                     str(i.get("reason") or "")])
    return rows


def _table_page_count(header: list[str], rows: list[list[str]], fixed: int = 1, per_page: int = 32,
                      max_cols: int = 7) -> int:
    return math.ceil(max(1, len(header) - fixed) / (max_cols - fixed)) * math.ceil(len(rows) / per_page)


def _model_text(model_dir: PathLike | None, segment_dir: Path) -> str:
    """Model name, task and folder from model.json (model_dir=, else summary.json's model_dir)."""
    if model_dir is None and (segment_dir / "summary.json").is_file():
        summary = read_json(segment_dir / "summary.json")
        model_dir = summary.get("model_dir") or summary.get("model") if isinstance(summary, Mapping) else None
    if model_dir is None:
        return "not recorded (pass model_dir=)"
    meta_path = Path(model_dir) / "model.json"
    meta = read_json(meta_path) if meta_path.is_file() else {}
    parts = [str(meta.get("name") or "?"), f"task {meta['task']}" if meta.get("task") else "",
             f"slide_mpp {meta['slide_mpp']}" if meta.get("slide_mpp") else ""]
    return f"{', '.join(p for p in parts if p)} ({model_dir})" if meta else f"{model_dir} (no model.json)"


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    from visionforge.evaluation.report import collect_versions

    out = collect_versions()
    for pkg in ("tiffslide", "openslide-python", "tifffile", "shapely"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    return out


def write_slide_report(segment_dir: PathLike, out_pdf: PathLike | None = None, *,
                       model_dir: PathLike | None = None, annotations: Any = None,
                       class_map: ClassMap | PathLike | None = None,
                       regions: Mapping[str, Sequence[float]] | PathLike | None = None) -> Path:
    """Write the slide report PDF for ``segment_dir`` (the out= folder of ``slides segment``).

    Args:
        out_pdf: the PDF (default ``segment_dir/report.pdf``); the confusion-matrix numbers go
            to ``<stem>_metrics.json`` beside it. Both are written atomically.
        model_dir: the model folder, for the title page (default: summary.json's ``model_dir``).
        annotations: None (``<slide stem>.xml``/``.geojson`` beside each slide), a folder holding
            ``<stem>.xml``/``.geojson``, one file, or ``{slide_stem: file}``.
        class_map: class-map YAML or :class:`ClassMap` (default: the one tiles.json names, else
            the classes in slide.json).
        regions: held-out level-0 rectangles ``{slide_stem: [x0, y0, w, h]}`` or the tiles
            folder (its tiles.json ``holdout``); None leaves the confusion matrix out.
    """
    seg = Path(segment_dir)
    out = Path(out_pdf) if out_pdf is not None else seg / "report.pdf"
    entries = _entries(seg)
    tiles, tiles_src = _tiles_info(regions)
    boxes = _regions(regions, tiles, tiles_src)
    cmap = _class_map(class_map, tiles, tiles_src, entries)
    for e in entries:
        e.slide_path = _find_slide(e, seg, tiles)
        e.annotation_path = _find_annotations(e, annotations)
        key = next((k for k in boxes if e.stem in (k, Path(k).stem)), None)  # "x" or "x.svs"
        e.region = boxes[key] if key is not None else None
        if e.slide_path is None:
            e.notes.append(f"slide file not found ({e.info.get('slide') or 'slide.json has no slide'}): "
                           "no check pages")
    missing = sorted(k for k in boxes if not any(e.stem in (k, Path(k).stem) for e in entries))
    notes: dict[str, str] = {}
    metrics = _evaluate(entries, cmap, notes)
    ann_pages, cls_pages = _check_pages(entries, cmap)
    comp_header, comp_rows = _composition(entries)
    run_rows = _runtime_rows(entries)
    run_header = ["slide", "status", "seconds", "label size", "µm/px", "downsample", "reason"]
    _omit_notes(notes, cmap, ann_pages, cls_pages, comp_rows, entries)
    counts = {"confusion matrix": 0 if metrics is None else 1, "annotation check": len(ann_pages),
              "classification check": len(cls_pages),
              "composition": _table_page_count(comp_header, comp_rows) if comp_rows else 0,
              "runtimes": _table_page_count(run_header, run_rows)}
    pages, nxt = {}, 2
    for s in SECTIONS:
        pages[s], nxt = nxt, nxt + counts[s]
    ctx = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "segment_dir": seg,
           "model": _model_text(model_dir, seg), "entries": entries, "notes": notes, "pages": pages,
           "metrics": metrics, "class_map": cmap, "versions": _versions(),
           "extra": [f"Held-out regions given for slides not in this folder: {', '.join(missing)}"]
           if missing else []}
    _write_pdf(out, ctx, ann_pages, cls_pages, (comp_header, comp_rows), (run_header, run_rows))
    atomic_write_json(out.with_name(f"{out.stem}_metrics.json"), {
        "report": str(out), "model": ctx["model"], "evaluation": metrics, "regions_without_segmentation": missing,
        "sections": {s: ({"omitted": notes[s]} if s in notes else {"page": pages[s], "pages": counts[s]})
                     for s in SECTIONS},
        "slides": {e.stem: {"status": e.status, "reason": e.info.get("reason"), "notes": e.notes}
                   for e in entries}})
    return out


def _omit_notes(notes: dict[str, str], cmap: ClassMap | None, ann_pages: list, cls_pages: list,
                comp_rows: list, entries: list[SlideEntry]) -> None:
    """Why each empty section is left out (the title page prints these)."""
    if not ann_pages:
        notes["annotation check"] = (
            "no class map" if cmap is None else "no slide file found" if not any(e.slide_path for e in entries)
            else "no annotation file found beside the slides (pass annotations=)")
    if not cls_pages:
        notes["classification check"] = (
            "no class map" if cmap is None else "no slide segmented successfully" if not any(e.ok for e in entries)
            else "no slide file or labels.tif found")
    if not comp_rows:
        notes["composition"] = "no composition.csv with `<class> TC(%)` / `<class> PC` columns"


def _write_pdf(out: Path, ctx: dict[str, Any], ann_pages: list, cls_pages: list,
               composition: tuple[list[str], list[list[str]]], runtimes: tuple[list[str], list[list[str]]]) -> None:
    from matplotlib.backends.backend_pdf import PdfPages

    pages = ctx["pages"]
    with atomic_write(out) as tmp, PdfPages(tmp, metadata={"Title": "visionforge slide report"}) as pdf:
        _title_page(pdf, ctx)
        if ctx["metrics"] is not None:
            _confusion_page(pdf, ctx["metrics"], pages["confusion matrix"])
        for title, specs, start in (("Annotation check", ann_pages, pages["annotation check"]),
                                    ("Classification check", cls_pages, pages["classification check"])):
            for k, (entry, thumb, overlay, ds, caption) in enumerate(specs):
                _check_page(pdf, title, entry, thumb, overlay, ds, caption, start + k)
        if composition[1]:
            _table_pages(pdf, "Tissue composition", *composition, pages["composition"],
                         note="TC(%): share of tissue pixels; PC: pixel count at the working resolution "
                              "(from each slide's composition.csv)")
        total = sum(float(e.info["seconds"]) for e in ctx["entries"]
                    if isinstance(e.info.get("seconds"), int | float))
        _table_pages(pdf, "Runtimes", *runtimes, pages["runtimes"],
                     note=f"Seconds per slide from slide.json; total {total:.1f} s")

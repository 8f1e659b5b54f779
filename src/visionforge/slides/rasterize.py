"""Annotations ⇄ label masks.

:func:`rasterize` paints annotation polygons into a ``uint8`` label mask for a level-0 region at a
downsample, class by class in the class map's overlap order (the winner painted last), holes left
unpainted. :func:`mask_to_annotations` traces a label mask back to polygons (with holes) using
``skimage.measure.find_contours``.

Pixel convention: mask pixel ``(row, col)`` covers level-0 ``[x0 + col·d, x0 + (col+1)·d)`` and is
inside a polygon when its centre ``(x0 + (col+½)·d, y0 + (row+½)·d)`` is. Contours are traced at
the 0.5 iso-level between pixel centres, so a traced mask rasterises back to itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, DataError
from visionforge.slides.annotations import Annotation, polygonal
from visionforge.slides.classmap import ClassMap

Box = tuple[float, float, float, float]


def clip_to_slide(annotations: Iterable[Annotation], dimensions: tuple[int, int],
                  source: str | Path = "annotations") -> tuple[list[Annotation], list[str]]:
    """Clip annotations to the slide ``(width, height)``; warnings name each clipped region.

    An annotation entirely outside the slide raises :class:`DataError` (wrong slide for this
    annotation file, or coordinates in another unit).
    """
    from shapely.geometry import box

    width, height = dimensions
    frame = box(0, 0, width, height)
    kept, warnings = [], []
    for i, ann in enumerate(annotations):
        bounds = tuple(round(v, 1) for v in ann.geometry.bounds)
        if not ann.geometry.intersects(frame) or ann.geometry.intersection(frame).area == 0:
            raise DataError(
                f"{source}: layer {ann.layer!r} region {i + 1} (bounds {bounds}) lies entirely "
                f"outside the slide ({width}x{height} px); check that the annotation file belongs "
                "to this slide and uses level-0 pixel coordinates"
            )
        if not ann.geometry.within(frame):
            warnings.append(f"{source}: layer {ann.layer!r} region {i + 1} (bounds {bounds}) "
                            f"extends past the slide ({width}x{height} px); clipped")
            ann = Annotation(ann.layer, polygonal(ann.geometry.intersection(frame)), ann.layer_id, ann.color)
        kept.append(ann)
    return kept, warnings


def _spans(poly: Any, x0: float, y0: float, d: float, shape: tuple[int, int]) -> np.ndarray:
    """Scanline spans ``(row, col_start, col_end)`` of mask pixels whose centres lie in ``poly``.

    Even-odd rule over the exterior and hole rings together, so holes stay empty; vectorised
    over all edges (one pass, no per-pixel polygon tests).
    """
    height, width = shape
    edges = []
    for ring in [poly.exterior, *poly.interiors]:
        xy = np.asarray(ring.coords, dtype=np.float64)
        cols, rows = (xy[:, 0] - x0) / d - 0.5, (xy[:, 1] - y0) / d - 0.5
        edges.append(np.column_stack([cols[:-1], rows[:-1], cols[1:], rows[1:]]))
    e = np.concatenate(edges)
    ylo, yhi = np.minimum(e[:, 1], e[:, 3]), np.maximum(e[:, 1], e[:, 3])
    # half-open [ylo, yhi): each row centre is crossed an even number of times per ring
    r_start = np.clip(np.ceil(ylo), 0, height).astype(np.int64)
    r_end = np.clip(np.ceil(yhi), 0, height).astype(np.int64)
    count = r_end - r_start
    keep = count > 0
    e, r_start, count = e[keep], r_start[keep], count[keep]
    if not len(e):
        return np.zeros((0, 3), np.int64)
    edge = np.repeat(np.arange(len(e)), count)
    rows = r_start[edge] + (np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count))
    x1, y1, x2, y2 = e[edge].T
    xs = x1 + (rows - y1) * (x2 - x1) / (y2 - y1)
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    start = np.clip(np.ceil(xs[0::2]), 0, width).astype(np.int64)
    stop = np.clip(np.ceil(xs[1::2]), 0, width).astype(np.int64)
    return np.column_stack([rows[0::2], start, stop])


def _paint(geoms: list[Any], x0: float, y0: float, d: float, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of the union of ``geoms`` (Polygons/MultiPolygons) at pixel centres."""
    spans = [_spans(p, x0, y0, d, shape) for g in geoms for p in getattr(g, "geoms", [g])
             if not p.is_empty]
    spans = [s for s in spans if len(s)]
    if not spans:
        return np.zeros(shape, dtype=bool)
    s = np.concatenate(spans)
    s = s[s[:, 1] < s[:, 2]]
    width = shape[1] + 1
    # +1 at each span start, -1 at its end; a running sum > 0 means "inside some polygon"
    diff = np.bincount(s[:, 0] * width + s[:, 1], minlength=shape[0] * width).astype(np.int32)
    diff -= np.bincount(s[:, 0] * width + s[:, 2], minlength=shape[0] * width).astype(np.int32)
    return np.cumsum(diff.reshape(shape[0], width), axis=1)[:, :-1] > 0


def rasterize(annotations: Iterable[Annotation], class_map: ClassMap, region: Box,
              downsample: float = 1.0, *, source: str | Path = "annotations") -> np.ndarray:
    """Label mask (``uint8``, ``(round(h/d), round(w/d))``) of level-0 ``region=(x0, y0, w, h)``.

    Pixels under no annotation get ``class_map.fill_index``; where layers overlap the class
    first in ``class_map.overlap_order`` wins. Layers missing from the class map raise
    :class:`DataError` listing them all.
    """
    from shapely.geometry import box

    anns = list(annotations)
    class_map.check(anns, source)
    if downsample <= 0:
        raise ConfigError(f"downsample must be positive, got {downsample}")
    x0, y0, w, h = (float(v) for v in region)
    d = float(downsample)
    out = np.full((max(1, round(h / d)), max(1, round(w / d))), class_map.fill_index, dtype=np.uint8)
    window = box(x0 - d, y0 - d, x0 + w + d, y0 + h + d)
    by_class: dict[int, list[Any]] = {}
    for ann in anns:
        spec = None if class_map.is_ignored(ann.layer) else class_map.class_for(ann.layer, ann.layer_id)
        if spec is not None and ann.geometry.intersects(window):
            by_class.setdefault(spec.index, []).append(ann.geometry)
    for spec in class_map.paint_order:
        geoms = by_class.get(spec.index)
        if not geoms:
            continue
        parts = [g if g.within(window) else polygonal(g.intersection(window)) for g in geoms]
        out[_paint(parts, x0, y0, d, out.shape)] = spec.index
    return out


def trace_mask(binary: np.ndarray, downsample: float = 1.0, origin: tuple[float, float] = (0, 0),
               simplify: float = 0.0) -> list[Any]:
    """Polygons (with holes, level-0 coordinates) outlining the ``True`` pixels of ``binary``.

    ``simplify`` is a tolerance in mask pixels (0 keeps every contour vertex).
    """
    import shapely
    from shapely.geometry import Polygon
    from shapely.strtree import STRtree
    from skimage.measure import find_contours

    d, (x0, y0) = float(downsample), origin
    # padding closes every contour; 'low' orientation makes outer rings positive, holes negative
    contours = find_contours(np.pad(binary.astype(np.float32), 1), 0.5)
    shells, holes = [], []
    for c in contours:
        xy = np.column_stack([x0 + (c[:, 1] - 0.5) * d, y0 + (c[:, 0] - 0.5) * d])
        if len(xy) < 4:
            continue
        x, y = xy[:, 0], xy[:, 1]
        signed = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        (shells if signed > 0 else holes).append(Polygon(xy))
    if not shells:
        return []
    owner: dict[int, list[Any]] = {}
    tree = STRtree(shells)
    areas = np.array([s.area for s in shells])
    for hole in holes:
        found = tree.query(hole.representative_point(), predicate="within")
        found = [i for i in found if shells[i].area > hole.area]
        if found:  # the innermost enclosing shell owns the hole
            owner.setdefault(int(min(found, key=lambda i: areas[i])), []).append(hole.exterior)
    polys = [Polygon(s.exterior, owner.get(i, [])) for i, s in enumerate(shells)]
    if simplify > 0:
        polys = list(shapely.simplify(np.array(polys, dtype=object), simplify * d, preserve_topology=True))
    return [p for p in polys if not p.is_empty]


def mask_to_annotations(mask: np.ndarray, class_map: ClassMap, downsample: float = 1.0,
                        origin: tuple[float, float] = (0, 0), *, skip: Sequence[str] | None = None,
                        simplify: float = 0.0) -> list[Annotation]:
    """Trace a label mask back to annotations: one per connected region, layer = class name.

    ``skip`` lists class names not traced (default: the class map's background class).
    ``layer_id`` is ``class index + 1`` (Aperio ids start at 1).
    """
    skipped = set(skip if skip is not None else ([class_map.background] if class_map.background else []))
    out: list[Annotation] = []
    for spec in class_map.classes:
        if spec.name in skipped or not np.any(mask == spec.index):
            continue
        for poly in trace_mask(mask == spec.index, downsample, origin, simplify):
            out.append(Annotation(spec.name, poly, spec.index + 1, spec.color))
    return out

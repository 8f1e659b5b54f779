"""Tissue composition and object counts of slide label maps, computed from streamed bands.

A slide's label map is never held whole: :class:`BandStats` is fed the finished label rows
top to bottom and keeps pixel counts per class and connected objects per class. Objects are
labelled per band with ``scipy.ndimage.label`` (8-connected) and merged across band borders
with a union-find, so an object cut by a band border is counted once with its full size —
the same counts as ``ndimage.label`` on the whole array.

CSV columns follow CODAvision: ``Image name``, ``<class> PC`` (pixel count) for every class,
``<class> TC(%)`` (share of the tissue, i.e. of the non-background pixels) for the tissue
classes; then ours: ``total PC``, ``tissue PC``, ``mpp``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.io import atomic_write_text

__all__ = ["BandStats", "composition_row", "write_csv", "COMPOSITION_EXTRA"]

#: our columns after CODAvision's
COMPOSITION_EXTRA = ("total PC", "tissue PC", "mpp")


def composition_row(image_name: str, counts: Sequence[int], class_names: Sequence[str],
                    background: int, mpp: float | None = None) -> dict[str, Any]:
    """One CODAvision composition row from per-class pixel ``counts``."""
    counts = [int(c) for c in counts]
    tissue = sum(c for i, c in enumerate(counts) if i != background)
    row: dict[str, Any] = {"Image name": image_name}
    for name, c in zip(class_names, counts, strict=True):
        row[f"{name} PC"] = c
    for i, (name, c) in enumerate(zip(class_names, counts, strict=True)):
        if i != background:
            row[f"{name} TC(%)"] = round(100.0 * c / tissue, 4) if tissue else 0.0
    row.update({"total PC": sum(counts), "tissue PC": tissue, "mpp": mpp})
    return row


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]],
              header: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV (atomically); the header is the first row's keys by default."""
    buf = io.StringIO()
    cols = list(header) if header is not None else (list(rows[0]) if rows else [])
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in cols])
    return atomic_write_text(path, buf.getvalue())


class _UnionFind:
    """Object ids with sizes; ``union`` merges two objects split by a band border.

    Arrays grow by doubling (id 0 is "no object"), so feeding many bands copies little.
    """

    def __init__(self) -> None:
        self.parent = np.zeros(1024, np.int64)
        self.size = np.zeros(1024, np.int64)
        self.n = 1  # ids in use: 0 .. n-1

    def add(self, sizes: np.ndarray) -> int:
        """Register ``len(sizes)`` new objects; returns the id offset (ids are offset+1..)."""
        offset, end = self.n - 1, self.n + len(sizes)
        if end > len(self.parent):
            cap = max(end, 2 * len(self.parent))
            self.parent = np.resize(self.parent, cap)
            self.size = np.resize(self.size, cap)
        self.parent[self.n : end] = np.arange(self.n, end)
        self.size[self.n : end] = sizes
        self.n = end
        return offset

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = int(self.parent[root])
        while self.parent[a] != root:  # path compression
            self.parent[a], a = root, int(self.parent[a])
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.size[ra] += self.size[rb]

    def roots(self) -> np.ndarray:
        """The root of every id ``0 .. n-1`` (pointer jumping)."""
        p = self.parent[: self.n].copy()
        while True:
            q = p[p]
            if np.array_equal(q, p):
                return p
            p = q

    def sizes(self) -> np.ndarray:
        """Sizes of the merged objects (roots only)."""
        p = self.roots()
        return self.size[1 : self.n][p[1:] == np.arange(1, len(p))]

    def retire(self, last: np.ndarray) -> tuple[np.ndarray, _UnionFind, np.ndarray]:
        """Split off the objects that no longer touch the band's last row (``last``: its
        global ids): returns their sizes, a fresh union-find holding only the open objects,
        and ``last`` renumbered into it. Keeps memory bounded by one band, not the slide."""
        root = self.roots()
        ids = np.arange(self.n)
        is_root = (root == ids) & (ids > 0)
        open_roots = np.unique(root[last[last > 0]])
        done = is_root.copy()
        done[open_roots] = False
        fresh = _UnionFind()
        fresh.add(self.size[open_roots])
        renum = np.where(last > 0, np.searchsorted(open_roots, root[last]) + 1, 0)
        return self.size[: self.n][done], fresh, renum


class BandStats:
    """Pixel counts and connected objects per class of a label map fed in row bands.

    Args:
        num_classes: class count (labels are ``0 .. num_classes - 1``).
        object_classes: classes whose connected objects are counted.
    """

    def __init__(self, num_classes: int, object_classes: Sequence[int]) -> None:
        self.counts = np.zeros(num_classes, np.int64)
        self._uf = {c: _UnionFind() for c in object_classes}
        self._last: dict[int, np.ndarray] = {}  # per class: global ids of the previous last row
        # per class: sizes of finished objects as a histogram {size: count} (few distinct sizes)
        self._done: dict[int, dict[int, int]] = {c: {} for c in object_classes}

    def feed(self, band: np.ndarray) -> None:
        """Add the next rows (``[k, W]`` integer labels) of the map."""
        from scipy import ndimage

        self.counts += np.bincount(band.ravel(), minlength=len(self.counts))[: len(self.counts)]
        for c, uf in self._uf.items():
            lab, n = ndimage.label(band == c, structure=np.ones((3, 3), bool))
            if n == 0:
                self._last[c] = np.zeros(band.shape[1], np.int64)
                continue
            offset = uf.add(np.bincount(lab.ravel())[1:])

            def ids(row: np.ndarray, offset: int = offset) -> np.ndarray:  # band -> global ids
                return np.where(row > 0, row.astype(np.int64) + offset, 0)

            prev = self._last.get(c)
            if prev is not None:
                self._merge(uf, prev, ids(lab[0]))
            finished, self._uf[c], self._last[c] = uf.retire(ids(lab[-1]))
            hist = self._done[c]
            for size, n in zip(*np.unique(finished, return_counts=True)):
                hist[int(size)] = hist.get(int(size), 0) + int(n)

    @staticmethod
    def _merge(uf: _UnionFind, above: np.ndarray, below: np.ndarray) -> None:
        pairs = set()
        for shift in (-1, 0, 1):  # 8-connectivity: the pixel above and its two neighbours
            a = above[max(0, shift): len(above) + min(0, shift)]
            b = below[max(0, -shift): len(below) + min(0, -shift)]
            hit = (a > 0) & (b > 0)
            pairs.update(zip(a[hit].tolist(), b[hit].tolist()))
        for a, b in pairs:
            uf.union(a, b)

    def objects(self, class_names: Sequence[str], min_px: int) -> list[dict[str, Any]]:
        """One dict per counted class: ``class``, ``count``, ``total PC``, ``mean size``,
        ``max size`` of the objects of at least ``min_px`` pixels."""
        out = []
        for c, uf in self._uf.items():
            hist = dict(self._done[c])
            for size in uf.sizes().tolist():  # objects still open at the last row
                hist[int(size)] = hist.get(int(size), 0) + 1
            kept = {size: n for size, n in hist.items() if size >= min_px}
            count, total = sum(kept.values()), sum(size * n for size, n in kept.items())
            out.append({"class": class_names[c], "count": count, "total PC": total,
                        "mean size": round(total / count, 3) if count else 0.0,
                        "max size": max(kept) if kept else 0,
                        "min_object_px": int(min_px)})
        return out

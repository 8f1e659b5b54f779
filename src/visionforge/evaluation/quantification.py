"""CODAvision-style quantification of predicted label maps.

``tissue_composition`` counts pixels per class in each label map and gives each
class's share of the non-background ("tissue") pixels; ``object_counts`` finds
connected components of selected classes above a minimum size (scipy.ndimage)
and records their sizes. Both write CSV files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.io import atomic_write_text

__all__ = [
    "LABEL_MAP_SUFFIXES",
    "read_label_map",
    "list_label_maps",
    "tissue_composition",
    "object_counts",
]

LABEL_MAP_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".bmp")
PathLike = str | os.PathLike[str]


def read_label_map(path: PathLike) -> np.ndarray:
    """Read a 2-D integer label map from PNG/TIFF/BMP (single channel) or ``.npy``."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(p)
        else:
            from PIL import Image

            with Image.open(p) as im:
                arr = np.asarray(im)
    except Exception as exc:
        raise DataError(f"{p}: cannot read label map ({exc})") from None
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and np.all(arr[..., :3] == arr[..., :1]):
        arr = arr[..., 0]  # a grey label map saved as RGB(A)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(
            f"{p}: a label map must be a 2-D integer image of class indices, got shape "
            f"{arr.shape} and dtype {arr.dtype}"
        )
    return arr


def list_label_maps(folder: PathLike) -> list[Path]:
    """Label-map files directly inside ``folder`` (sorted); errors if there are none."""
    d = Path(folder)
    if not d.is_dir():
        raise DataError(f"{d}: label-map folder not found")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in LABEL_MAP_SUFFIXES)
    if not files:
        raise DataError(f"{d}: no label maps ({', '.join(LABEL_MAP_SUFFIXES)}) found")
    return files


def _write_csv(path: PathLike, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is not None:
        if len(class_names) < num_classes:
            raise DataError(
                f"label maps contain class index {num_classes - 1} but only "
                f"{len(class_names)} class names were given"
            )
        return list(class_names)
    return [f"class_{i}" for i in range(num_classes)]


def tissue_composition(
    label_dir: PathLike,
    out_csv: PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    background: int | Sequence[int] | None = 0,
) -> list[dict[str, Any]]:
    """Per-image pixel counts per class and each class's % of non-background pixels.

    Returns one dict per image (``image``, ``total_pixels``, ``tissue_pixels``,
    ``<class>_pixels``, ``<class>_percent``); with ``out_csv`` also writes them.
    ``background`` classes (default 0) are counted but excluded from the percentages.
    """
    files = list_label_maps(label_dir)
    maps = [(f, read_label_map(f)) for f in files]
    if any(int(m.min()) < 0 for _, m in maps):
        raise DataError(f"{label_dir}: label maps contain negative class indices")
    num = max(int(m.max()) for _, m in maps) + 1
    num = max(num, len(class_names) if class_names else 0)
    names = _names(class_names, num)
    bg = (
        set()
        if background is None
        else ({background} if isinstance(background, int) else set(background))
    )
    fg = [c for c in range(num) if c not in bg]
    rows = []
    for f, m in maps:
        counts = np.bincount(m.reshape(-1).astype(np.int64), minlength=num)
        tissue = int(sum(counts[c] for c in fg))
        row: dict[str, Any] = {
            "image": f.name,
            "total_pixels": int(m.size),
            "tissue_pixels": tissue,
        }
        for c in range(num):
            row[f"{names[c]}_pixels"] = int(counts[c])
        for c in fg:
            row[f"{names[c]}_percent"] = round(100.0 * counts[c] / tissue, 4) if tissue else 0.0
        rows.append(row)
    if out_csv is not None:
        header = list(rows[0])
        _write_csv(out_csv, header, [[r[h] for h in header] for r in rows])
    return rows


def object_counts(
    label_dir: PathLike,
    classes: Sequence[int | str],
    out_csv: PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
    min_size: int = 1,
    connectivity: int = 2,
) -> list[dict[str, Any]]:
    """Connected objects of each selected class per image, above ``min_size`` pixels.

    Returns one dict per (image, class): ``image``, ``class``, ``count``,
    ``total_pixels``, ``mean_size``, ``sizes`` (object sizes in pixels, largest first,
    ``;``-separated in the CSV). ``connectivity`` 2 joins diagonal neighbours, 1 does not.
    """
    from scipy import ndimage

    if connectivity not in (1, 2):
        raise ValueError("connectivity must be 1 (edges) or 2 (edges and corners)")
    files = list_label_maps(label_dir)
    structure = ndimage.generate_binary_structure(2, connectivity)
    ids = []
    for c in classes:
        if isinstance(c, str) and not c.isdigit():
            if not class_names or c not in class_names:
                raise DataError(f"class {c!r} is not in class_names {list(class_names or [])}")
            ids.append(list(class_names).index(c))
        else:
            ids.append(int(c))
    rows = []
    for f in files:
        m = read_label_map(f)
        for c in ids:
            labelled, n = ndimage.label(m == c, structure=structure)
            sizes = np.bincount(labelled.reshape(-1))[1:] if n else np.zeros(0, dtype=np.int64)
            sizes = np.sort(sizes[sizes >= min_size])[::-1]
            name = class_names[c] if class_names and c < len(class_names) else f"class_{c}"
            rows.append(
                {
                    "image": f.name,
                    "class": name,
                    "count": int(sizes.size),
                    "total_pixels": int(sizes.sum()),
                    "mean_size": round(float(sizes.mean()), 3) if sizes.size else 0.0,
                    "sizes": [int(s) for s in sizes],
                }
            )
    if out_csv is not None:
        header = ["image", "class", "count", "total_pixels", "mean_size", "sizes"]
        _write_csv(
            out_csv,
            header,
            [[*(r[h] for h in header[:-1]), ";".join(map(str, r["sizes"]))] for r in rows],
        )
    return rows

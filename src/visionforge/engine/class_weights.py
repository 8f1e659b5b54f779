"""Class weights from data: median-frequency balancing for masks, inverse frequency for labels
(scikit-learn's ``"balanced"`` rule).

Example:
    >>> import numpy as np
    >>> masks = [np.array([[0, 0], [0, 1]]), np.array([[0, 0], [0, 0]])]
    >>> segmentation_class_weights(masks, 2).round(3).tolist()
    [0.643, 2.25]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError

__all__ = [
    "MASK_EXTENSIONS",
    "segmentation_class_weights",
    "mask_class_statistics",
    "classification_class_weights",
    "read_mask",
]

_log = logging.getLogger(__name__)
MASK_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".gif", ".npy")


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one label mask (class index per pixel) as a 2-D integer array."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(path)
        elif suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in ("L", "P", "I", "I;16", "1"):
                    raise DataError(
                        f"mask {path} has image mode {im.mode!r}; masks must be single-channel "
                        "class-index images (mode L, P or I)"
                    )
                arr = np.asarray(im)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read mask {path}: {exc}") from exc
    arr = np.squeeze(arr)
    if arr.ndim != 2:
        raise DataError(f"mask {path} has shape {arr.shape}; expected a 2-D class-index image")
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DataError(f"mask {path} holds non-integer values; expected class indices")
    return arr.astype(np.int64, copy=False)


def _iter_masks(source: Any) -> Iterable[tuple[str, np.ndarray]]:
    if isinstance(source, (str, os.PathLike)):
        root = Path(source)
        if not root.is_dir():
            raise DataError(f"mask folder {root} does not exist or is not a folder")
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in MASK_EXTENSIONS)
        if not files:
            raise DataError(
                f"mask folder {root} holds no masks ({', '.join(MASK_EXTENSIONS)} files)"
            )
        for p in files:  # one file in memory at a time
            yield str(p), read_mask(p)
    else:
        for i, m in enumerate(source):
            if isinstance(m, (str, os.PathLike)):
                yield str(m), read_mask(m)
            else:
                arr = np.asarray(m.cpu() if hasattr(m, "cpu") else m)
                yield f"mask #{i}", arr.astype(np.int64, copy=False)


def mask_class_statistics(
    masks: Any, num_classes: int, *, ignore_index: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ``(pixel_counts, image_pixels)`` over a mask folder or iterable of masks.

    ``pixel_counts[c]`` is the number of pixels labelled ``c``; ``image_pixels[c]``
    is the total pixel count of the masks that contain ``c`` (ignored pixels left out).
    """
    if num_classes < 1:
        raise DataError(f"num_classes must be >= 1, got {num_classes}")
    pixel_counts = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    seen = 0
    for name, mask in _iter_masks(masks):
        flat = mask.ravel()
        if ignore_index is not None:
            flat = flat[flat != ignore_index]
        if flat.size == 0:
            continue
        lo, hi = int(flat.min()), int(flat.max())
        if lo < 0 or hi >= num_classes:
            raise DataError(
                f"{name} has class values {lo}..{hi} outside 0..{num_classes - 1}; "
                "fix num_classes or pass ignore_index for unlabelled pixels"
            )
        counts = np.bincount(flat, minlength=num_classes)
        pixel_counts += counts
        image_pixels[counts > 0] += flat.size
        seen += 1
    if seen == 0:
        raise DataError("no labelled mask pixels found to compute class weights from")
    return pixel_counts, image_pixels


def segmentation_class_weights(
    masks: Any,
    num_classes: int,
    *,
    ignore_index: int | None = None,
    clip: tuple[float, float] = (0.1, 10.0),
) -> np.ndarray:
    """Median-frequency-balanced class weights from a mask folder or iterable of masks.

    ``freq_c = pixels of class c / total pixels of the masks that contain c``;
    ``weight_c = median(freq) / freq_c`` clipped to ``clip`` (default [0.1, 10]).
    The median runs over the classes that occur; a class that never occurs gets
    weight 1.0 (with a warning) since no frequency can be measured for it.
    Masks are read one at a time (PNG/BMP/GIF via Pillow, TIFF via tifffile, ``.npy``).
    """
    pixel_counts, image_pixels = mask_class_statistics(
        masks, num_classes, ignore_index=ignore_index
    )
    present = image_pixels > 0
    freq = np.zeros(num_classes, dtype=np.float64)
    freq[present] = pixel_counts[present] / image_pixels[present]
    median = float(np.median(freq[present]))
    weights = np.ones(num_classes, dtype=np.float64)
    weights[present] = median / freq[present]
    weights[present] = np.clip(weights[present], clip[0], clip[1])
    if not present.all():
        _log.warning(
            "classes %s never occur in the masks; their class weight is set to 1.0",
            np.flatnonzero(~present).tolist(),
        )
    return weights


def classification_class_weights(
    labels: Iterable[int] | np.ndarray, num_classes: int
) -> np.ndarray:
    """Inverse-frequency class weights ``N / (n_present * count_c)`` from labels.

    This is scikit-learn's ``compute_class_weight("balanced", ...)`` over the classes that
    occur: a weight of 1 for a perfectly balanced set, and the count-weighted mean of the
    weights is 1, so the loss scale is unchanged. A class with no samples gets weight 1.0
    (with a warning); it never contributes to the loss, so its weight only matters if later
    data contains it.
    """
    from sklearn.utils.class_weight import compute_class_weight

    arr = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
    arr = arr.astype(np.int64).ravel()
    if arr.size == 0:
        raise DataError("no labels given to compute class weights from")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise DataError(
            f"labels range {arr.min()}..{arr.max()} lies outside 0..{num_classes - 1}; "
            "check num_classes"
        )
    present = np.bincount(arr, minlength=num_classes) > 0
    weights = np.ones(num_classes, dtype=np.float64)
    # sklearn rejects classes absent from y, so it sees only the present ones.
    weights[present] = compute_class_weight("balanced", classes=np.flatnonzero(present), y=arr)
    if not present.all():
        _log.warning(
            "classes %s have no samples; their class weight is set to 1.0",
            np.flatnonzero(~present).tolist(),
        )
    return weights

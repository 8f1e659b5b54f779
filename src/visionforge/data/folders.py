"""Finding images in the class-folder layout ``root/<class>/*.<ext>``."""

from __future__ import annotations

import os
from pathlib import Path

from visionforge.data.images import IMAGE_EXTENSIONS, list_images
from visionforge.errors import DataError

__all__ = ["SPLIT_NAMES", "find_classes", "scan_class_folders", "split_dirs"]

SPLIT_NAMES = ("train", "val", "test")
_EXT_HINT = ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)


def find_classes(root: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the (non-hidden) sub-folders of ``root``."""
    r = Path(root)
    if not r.is_dir():
        raise DataError(f"{r}: dataset folder not found; expected {r}/<class_name>/<image files>")
    return sorted(p.name for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan_class_folders(
    root: str | os.PathLike[str],
    classes: list[str] | None = None,
    *,
    allow_missing: bool = False,
) -> tuple[list[str], list[tuple[Path, int]]]:
    """``(classes, [(path, class_index), ...])`` for ``root/<class>/*``.

    An empty class folder or a folder without any class folder/image is a
    :class:`DataError` that names the folder. With ``allow_missing`` a class in
    ``classes`` that has no folder under ``root`` is allowed (e.g. absent from ``val/``).
    """
    r = Path(root)
    found = find_classes(r)
    if classes is None:
        classes = found
    if not classes:
        loose = list_images(r) if r.is_dir() else []
        hint = (
            f" ({len(loose)} images lie directly in it; move them into one sub-folder per class)"
            if loose
            else ""
        )
        raise DataError(
            f"{r}: no class folders found{hint}; expected {r}/<class_name>/<image files>"
        )
    items: list[tuple[Path, int]] = []
    for idx, name in enumerate(classes):
        d = r / name
        if not d.is_dir():
            if allow_missing:
                continue
            raise DataError(f"{d}: class folder missing")
        files = list_images(d)
        if not files:
            raise DataError(
                f"{d}: class folder {name!r} has no images ({_EXT_HINT}); "
                "add images or remove the folder"
            )
        items.extend((f, idx) for f in files)
    if not items:
        raise DataError(f"{r}: dataset is empty (no {_EXT_HINT} files in its class folders)")
    return classes, items


def split_dirs(root: str | os.PathLike[str]) -> dict[str, Path]:
    """The ``train``/``val``/``test`` sub-folders of ``root`` that exist ({} for a flat layout)."""
    r = Path(root)
    return {s: r / s for s in SPLIT_NAMES if (r / s).is_dir()}

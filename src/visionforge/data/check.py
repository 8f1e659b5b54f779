"""``check_dataset``: one pass over a dataset folder that finds what would hurt training.

Reports counts per class and split, image size / channel / dtype statistics,
unreadable files, byte-identical duplicates (an error when they cross splits:
that is leakage), empty class folders, unpaired or mis-sized masks and the mask
class histogram. Layouts: ``root/<class>/*``, ``root/{train,val,test}/<class>/*``,
``root/[split/]{images,masks}``, optionally with a manifest (``splits.csv``).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.data.folders import SPLIT_NAMES, find_classes
from visionforge.data.images import is_image_file, list_images, load_mask, read_array
from visionforge.data.splits import DEFAULT_MANIFEST, read_manifest
from visionforge.errors import DataError
from visionforge.io import atomic_write_json

__all__ = ["check_dataset", "format_report", "REPORT_NAME"]

REPORT_NAME = "data_check.json"


def _hash(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Checker:
    def __init__(self, root: Path, num_classes: int | None) -> None:
        self.root = root
        self.num_classes = num_classes
        self.counts: dict[str, dict[str, int]] = {}
        self.sizes: Counter[str] = Counter()
        self.channels: Counter[int] = Counter()
        self.dtypes: Counter[str] = Counter()
        self.corrupt: list[dict[str, str]] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.hashes: dict[str, list[tuple[str, str]]] = {}
        self.mask_hist: Counter[int] = Counter()
        self.heights: list[int] = []
        self.widths: list[int] = []

    def image(self, path: Path, split: str) -> np.ndarray | None:
        self.hashes.setdefault(_hash(path), []).append((split, str(path)))
        try:
            arr = read_array(path)
        except DataError as exc:
            self.corrupt.append({"path": str(path), "reason": str(exc)})
            return None
        h, w = arr.shape[:2]
        self.heights.append(h)
        self.widths.append(w)
        self.sizes[f"{h}x{w}"] += 1
        self.channels[1 if arr.ndim == 2 else arr.shape[2]] += 1
        self.dtypes[str(arr.dtype)] += 1
        return arr

    def class_folders(self, base: Path, split: str) -> None:
        counts = self.counts.setdefault(split, {})
        classes = find_classes(base)
        if not classes:
            self.errors.append(f"{base}: no class folders (expected {base}/<class>/<images>)")
        for cls in classes:
            files = list_images(base / cls)
            others = [
                p
                for p in (base / cls).iterdir()
                if p.is_file() and not is_image_file(p) and not p.name.startswith(".")
            ]
            if others:
                self.warnings.append(
                    f"{base / cls}: {len(others)} non-image files ignored, e.g. {others[0].name}"
                )
            counts[cls] = len(files)
            if not files:
                self.errors.append(f"{base / cls}: class folder {cls!r} has no images")
            for f in files:
                self.image(f, split)

    def seg_pairs(self, base: Path, split: str) -> None:
        from visionforge.data.segmentation import check_mask_values

        images = {p.stem: p for p in list_images(base / "images")}
        masks = {p.stem: p for p in list_images(base / "masks")}
        self.counts.setdefault(split, {})["pairs"] = len(images.keys() & masks.keys())
        for stem in sorted(images.keys() - masks.keys()):
            self.errors.append(f"{images[stem]}: no mask with stem {stem!r} in {base / 'masks'}")
        for stem in sorted(masks.keys() - images.keys()):
            self.errors.append(f"{masks[stem]}: mask without an image in {base / 'images'}")
        if not images:
            self.errors.append(f"{base / 'images'}: no images")
        for stem in sorted(images.keys() & masks.keys()):
            arr = self.image(images[stem], split)
            try:
                mask = load_mask(masks[stem])
            except DataError as exc:
                self.corrupt.append({"path": str(masks[stem]), "reason": str(exc)})
                continue
            if arr is not None and arr.shape[:2] != mask.shape:
                self.errors.append(
                    f"{images[stem]} is {arr.shape[0]}x{arr.shape[1]} but its mask is {mask.shape[0]}x{mask.shape[1]}"
                )
            try:
                check_mask_values(mask, self.num_classes, None, masks[stem])
            except DataError as exc:
                self.errors.append(str(exc))
            values, counts = np.unique(mask, return_counts=True)
            for v, c in zip(values.tolist(), counts.tolist()):
                self.mask_hist[int(v)] += int(c)

    def manifest(self, path: Path) -> None:
        for rec in read_manifest(path):
            split = str(rec.get("split") or "all")
            p = Path(rec["path"])
            p = p if p.is_absolute() else self.root / p
            counts = self.counts.setdefault(split, {})
            counts[str(rec["label"])] = counts.get(str(rec["label"]), 0) + 1
            if not p.is_file():
                self.errors.append(f"{path}: listed file {p} does not exist")
                continue
            self.image(p, split)

    def report(self, layout: str) -> dict[str, Any]:
        duplicates, leaks = [], []
        for digest, where in self.hashes.items():
            if len(where) > 1:
                splits = sorted({s for s, _ in where})
                entry = {"hash": digest, "paths": [p for _, p in where], "splits": splits}
                duplicates.append(entry)
                if len(splits) > 1:
                    leaks.append(entry)
                    self.errors.append(
                        f"identical files in splits {splits}: {', '.join(p for _, p in where)}"
                    )
        if duplicates and len(duplicates) > len(leaks):
            self.warnings.append(
                f"{len(duplicates) - len(leaks)} groups of duplicate files within a split"
            )
        for c in self.corrupt:
            self.errors.append(c["reason"])
        for split, counts in self.counts.items():
            nonzero = [n for n in counts.values() if n]
            if len(nonzero) > 1 and max(nonzero) > 10 * min(nonzero):
                self.warnings.append(
                    f"split {split!r}: class imbalance, largest/smallest = {max(nonzero)}/{min(nonzero)}"
                )
        n = len(self.heights)
        stats = {
            "num_images": n,
            "height": {
                "min": min(self.heights),
                "max": max(self.heights),
                "mean": float(np.mean(self.heights)),
            }
            if n
            else None,
            "width": {
                "min": min(self.widths),
                "max": max(self.widths),
                "mean": float(np.mean(self.widths)),
            }
            if n
            else None,
            "most_common_sizes": dict(self.sizes.most_common(5)),
            "channels": {str(k): v for k, v in sorted(self.channels.items())},
            "dtypes": dict(self.dtypes),
        }
        if not n and not self.corrupt:
            self.errors.append(f"{self.root}: no images found")
        return {
            "path": str(self.root),
            "layout": layout,
            "ok": not self.errors,
            "counts": self.counts,
            "image_stats": stats,
            "corrupt": self.corrupt,
            "duplicates": duplicates,
            "leakage": leaks,
            "mask_histogram": {str(k): v for k, v in sorted(self.mask_hist.items())} or None,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def check_dataset(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    manifest: str | os.PathLike[str] | None = None,
    num_classes: int | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Check the dataset at ``path``, write the report JSON (default ``path/data_check.json``)
    and return it. ``report["ok"]`` is false when ``report["errors"]`` is non-empty."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    c = _Checker(root, num_classes)
    splits = [s for s in SPLIT_NAMES if (root / s).is_dir()]
    if manifest is None and (root / DEFAULT_MANIFEST).is_file() and not splits:
        manifest = root / DEFAULT_MANIFEST
    from visionforge.data.detection import detection_format

    if manifest is None and detection_format(root) is not None:
        report = detection_check(root)
        if write:
            target = Path(out) if out is not None else root / REPORT_NAME
            report["report_path"] = str(target)
            atomic_write_json(target, report)
        return report
    if manifest is not None:
        layout = "manifest"
        c.manifest(Path(manifest))
    elif (root / "images").is_dir() and (root / "masks").is_dir():
        layout = "segmentation"
        c.seg_pairs(root, "all")
    elif splits and all((root / s / "images").is_dir() for s in splits):
        layout = "segmentation_splits"
        for s in splits:
            c.seg_pairs(root / s, s)
    elif splits:
        layout = "class_folders_splits"
        for s in splits:
            c.class_folders(root / s, s)
    else:
        layout = "class_folders"
        c.class_folders(root, "all")
    report = c.report(layout)
    if write:
        target = Path(out) if out is not None else root / REPORT_NAME
        report["report_path"] = str(target)
        atomic_write_json(target, report)
    return report


def detection_check(root: Path) -> dict[str, Any]:
    """The report of a detection root: per split boxes per image, box and image sizes,
    class counts, images without boxes, clipped and dropped boxes (or the reading error)."""
    from visionforge.data.detection import box_statistics, detection_format, read_detection_splits

    layout = f"detection_{detection_format(root)}"
    report: dict[str, Any] = {"path": str(root), "layout": layout, "counts": {}, "boxes": {},
                              "image_stats": {"num_images": 0}, "corrupt": [], "duplicates": [],
                              "leakage": [], "warnings": [], "errors": []}
    try:
        splits, _ = read_detection_splits(root, ratios=(1.0, 0.0, 0.0))
    except DataError as exc:
        report["errors"].append(str(exc))
        splits = {}
    sizes = []
    for split, index in splits.items():
        stats = box_statistics(index)
        report["boxes"][split] = stats
        report["counts"][split] = stats["class_counts"]
        sizes += [(r.height, r.width) for r in index.records]
        for d in index.report.get("dropped_zero_area", [])[:20]:
            report["warnings"].append(f"zero-area box dropped: {d['file']} {d['box']}")
        if stats["clipped_boxes"]:
            report["warnings"].append(f"{split}: {stats['clipped_boxes']} box(es) clipped to "
                                      "their image")
    if sizes:
        h, w = np.array(sizes).T
        report["image_stats"] = {"num_images": len(sizes), "channels": [3], "dtypes": ["uint8"],
                                 "height": {"min": int(h.min()), "max": int(h.max())},
                                 "width": {"min": int(w.min()), "max": int(w.max())}}
    report["ok"] = not report["errors"]
    return report


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable summary of a :func:`check_dataset` report."""
    lines = [f"dataset: {report['path']} ({report['layout']})"]
    for split, counts in report["counts"].items():
        total = sum(counts.values())
        lines.append(f"  {split}: {total} " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    st = report["image_stats"]
    if st["num_images"]:
        lines.append(
            f"  images: {st['num_images']}, size {st['height']['min']}-{st['height']['max']} x "
            f"{st['width']['min']}-{st['width']['max']}, channels {st['channels']}, dtypes {st['dtypes']}"
        )
    for split, b in report.get("boxes", {}).items():
        per = b["boxes_per_image"]
        lines.append(f"  {split} boxes: {b['boxes']} in {b['images']} images "
                     f"({per.get('mean', 0):.1f} per image, max {per.get('max', 0):.0f}; "
                     f"{b['images_without_boxes']} without boxes), median box "
                     f"{b['box_width'].get('median', 0):.0f} x {b['box_height'].get('median', 0):.0f} px")
    if report.get("mask_histogram"):
        lines.append(f"  mask class pixels: {report['mask_histogram']}")
    lines.append(
        f"  corrupt files: {len(report['corrupt'])}, duplicate groups: {len(report['duplicates'])}, "
        f"cross-split duplicates: {len(report['leakage'])}"
    )
    for w in report["warnings"]:
        lines.append(f"  warning: {w}")
    for e in report["errors"]:
        lines.append(f"  ERROR: {e}")
    lines.append("OK" if report["ok"] else f"{len(report['errors'])} error(s)")
    if report.get("report_path"):
        lines.append(f"report written to {report['report_path']}")
    return "\n".join(lines)

"""Stratified train/val/test splits and k-fold folds written as manifests, never by copying.

A manifest is a CSV (``path,label,split``) or JSON (list of such records) file.
Paths are stored relative to the dataset root when they lie under it, so the
manifest keeps working when the dataset folder is moved. The same items, ratios
and seed always give the same manifest.

>>> from visionforge.data.splits import split_dataset
>>> manifest = split_dataset("data/flowers", ratios=(0.8, 0.1, 0.1), seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.io import atomic_write_json, atomic_write_text, read_json

__all__ = [
    "stratified_assign",
    "make_split_records",
    "write_manifest",
    "read_manifest",
    "split_dataset",
    "materialize",
    "kfold_indices",
    "kfold_manifest",
    "DEFAULT_MANIFEST",
]

DEFAULT_MANIFEST = "splits.csv"
SPLITS = ("train", "val", "test")


def _check_ratios(ratios: Sequence[float]) -> list[float]:
    r = [float(x) for x in ratios]
    if not 1 <= len(r) <= 3 or any(x < 0 for x in r) or sum(r) <= 0:
        raise DataError(
            f"split ratios {ratios!r} must be 1-3 non-negative numbers (train, val, test)"
        )
    total = sum(r)
    return [x / total for x in r] + [0.0] * (3 - len(r))


def stratified_assign(
    labels: Sequence[Hashable], ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> list[str]:
    """Assign each item a split name so that every label is split in the given ratios.

    Written by hand rather than with ``sklearn.model_selection.train_test_split``
    because that refuses classes with fewer than two members per split, while
    small datasets need every class placed deterministically. Each class is
    shuffled with its own seeded generator; counts are rounded by largest
    remainder with train served first, so a class of n >= 1 items always has
    at least one training item.
    """
    r = _check_ratios(ratios)
    labels = list(labels)
    out = [""] * len(labels)
    by_label: dict[Hashable, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    for k, lab in enumerate(sorted(by_label, key=str)):
        idx = np.array(by_label[lab])
        rng = np.random.default_rng([seed, k])
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        exact = np.array(r) * n
        counts = np.floor(exact).astype(int)
        for j in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
            counts[j] += 1
        if counts[0] == 0 and n > 0 and r[0] > 0:  # never leave a class out of training
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[0] += 1
        start = 0
        for name, c in zip(SPLITS, counts):
            for i in idx[start : start + c]:
                out[int(i)] = name
            start += c
    return out


def make_split_records(
    items: Sequence[tuple[str | os.PathLike[str], Any]],
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
) -> list[dict[str, Any]]:
    """Records ``{"path", "label", "split"}`` for ``(path, label)`` items, stratified by label."""
    splits = stratified_assign([lab for _, lab in items], ratios, seed)
    base = Path(root).resolve() if root is not None else None
    records = []
    for (path, label), split in zip(items, splits):
        p = Path(path)
        if base is not None:
            try:
                p = p.resolve().relative_to(base)
            except ValueError:
                p = p.resolve()
        records.append({"path": p.as_posix(), "label": label, "split": split})
    records.sort(key=lambda rec: (SPLITS.index(rec["split"]), str(rec["label"]), rec["path"]))
    return records


def write_manifest(records: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write records atomically as CSV or JSON (chosen by the file suffix)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return atomic_write_json(p, list(records))
    if p.suffix.lower() != ".csv":
        raise DataError(f"{p}: manifest must end in .csv or .json")
    fields = list(records[0]) if records else ["path", "label", "split"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return atomic_write_text(p, buf.getvalue())


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV/JSON manifest; every record needs ``path`` and ``label``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: manifest not found; create it with `visionforge data split ROOT`")
    if p.suffix.lower() == ".json":
        try:
            records = read_json(p)
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if not isinstance(records, list):
            raise DataError(f"{p}: JSON manifest must be a list of {{path, label, split}} records")
    else:
        with open(p, newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "path" not in rec or "label" not in rec:
            raise DataError(f"{p}: record {i + 1} lacks 'path' or 'label' ({rec!r})")
    return records


def split_dataset(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> Path:
    """Scan ``root/<class>/*`` and write a stratified manifest (default ``root/splits.csv``)."""
    from visionforge.data.folders import scan_class_folders

    classes, items = scan_class_folders(root)
    records = make_split_records([(p, classes[i]) for p, i in items], ratios, seed, root=root)
    return write_manifest(records, out or Path(root) / DEFAULT_MANIFEST)


def materialize(
    manifest: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    copy: bool = True,
) -> Path:
    """Create ``out_dir/<split>/<label>/<file>`` from a manifest, copying files (or symlinking).

    Only for users who want folders; training reads the manifest directly.
    """
    m = Path(manifest)
    base = Path(root) if root is not None else m.parent
    out = Path(out_dir)
    for rec in read_manifest(m):
        src = Path(rec["path"])
        src = src if src.is_absolute() else base / src
        if not src.is_file():
            raise DataError(f"{m}: listed file {src} does not exist")
        dst = out / str(rec.get("split") or "all") / str(rec["label"]) / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        if copy:
            shutil.copy2(src, dst)
        else:
            dst.symlink_to(src.resolve())
    return out


def kfold_indices(
    labels: Sequence[Hashable], k: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold ``[(train_idx, val_idx), ...]`` (scikit-learn ``StratifiedKFold``).

    Falls back to a shuffled plain ``KFold`` when a class has fewer than ``k`` members.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray([str(x) for x in labels])
    if k < 2 or k > len(labels):
        raise DataError(f"k-fold needs 2 <= k <= number of items ({len(labels)}), got k={k}")
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() >= k:
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(len(labels)), labels))
    splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels))))


def kfold_manifest(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    k: int = 5,
    seed: int = 0,
) -> Path:
    """Write ``path,label,fold`` for ``root/<class>/*`` (default ``root/folds.csv``)."""
    from visionforge.data.folders import scan_class_folders

    classes, items = scan_class_folders(root)
    labels = [classes[i] for _, i in items]
    fold_of = np.empty(len(items), dtype=int)
    for f, (_, val_idx) in enumerate(kfold_indices(labels, k, seed)):
        fold_of[val_idx] = f
    base = Path(root).resolve()
    records = [
        {"path": p.resolve().relative_to(base).as_posix(), "label": lab, "fold": int(f)}
        for (p, _), lab, f in zip(items, labels, fold_of)
    ]
    return write_manifest(records, out or Path(root) / "folds.csv")

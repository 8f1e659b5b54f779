"""Loading multichannel fixed-length series from ``.npy``/``.npz``, CSV and UEA/UCR ``.ts`` files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError

__all__ = ["load_series", "load_series_dataset", "load_basic_motions", "encode_labels"]


def encode_labels(raw: Sequence[Any] | np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer labels for ``raw`` (sorted unique values -> 0..K-1) and the class names."""
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu":
        names = [str(v) for v in np.unique(raw)]
        uniq = np.unique(raw)
        return np.searchsorted(uniq, raw).astype(np.int64), names
    names = sorted({str(v) for v in raw})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[str(v)] for v in raw], dtype=np.int64), names


_OBJECT_ARRAY = (
    "holds a NumPy object array, which only loads by unpickling (that can run code) and is "
    "refused; re-save it as a numeric array, e.g. np.save(path, np.asarray(x, dtype=np.float32))"
)


def _np_load(path: str | os.PathLike[str]) -> Any:
    """``np.load(path, allow_pickle=False)`` with failures as :class:`DataError` naming the file.

    Object arrays (lists of Python objects saved with ``np.save``) need pickle to load,
    which could run code, so they are refused with how to re-save the data.
    """
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{path}: {_OBJECT_ARRAY}") from None
        raise DataError(f"{path}: not a valid .npy/.npz file ({exc})") from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DataError(f"{path}: file not found") from None
        raise DataError(f"{path}: cannot read the NumPy file ({exc})") from None


def _load_npy(p: Path, labels: Any) -> tuple[np.ndarray, Any]:
    if p.suffix == ".npz":
        with _np_load(p) as z:
            keys = set(z.files)
            xk = next((k for k in ("x", "X", "data") if k in keys), None)
            yk = next((k for k in ("y", "Y", "labels") if k in keys), None)
            if xk is None:
                raise DataError(
                    f"{p}: .npz needs an array named 'x' (and 'y' for labels); has {sorted(keys)}"
                )
            try:
                return z[xk], (z[yk] if yk and labels is None else labels)
            except ValueError:  # an object array inside the archive
                raise DataError(f"{p}: {_OBJECT_ARRAY}") from None
    x = _np_load(p)
    if labels is None:
        for cand in (
            p.with_name(p.stem + "_labels.npy"),
            p.with_name(p.stem.replace("_X", "_y") + ".npy"),
        ):
            if cand != p and cand.is_file():
                labels = _np_load(cand)
                break
    return x, labels


def _load_csv(
    p: Path, labels: Any, channels: int | None, label_column: str | int | None
) -> tuple[np.ndarray, Any]:
    import csv

    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(f"{p}: empty CSV")
    header = None
    try:
        [float(v) for v in rows[0] if v != ""]
    except ValueError:
        header, rows = rows[0], rows[1:]
    col = label_column
    if isinstance(col, str):
        if header is None or col not in header:
            raise DataError(f"{p}: no label column {col!r} (columns: {header})")
        col = header.index(col)
    raw_labels = None
    if col is not None:
        raw_labels = [r[col] for r in rows]
        rows = [r[:col] + r[col + 1 :] for r in rows]
    try:
        x = np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
    except ValueError as exc:
        raise DataError(
            f"{p}: non-numeric value ({exc}); set label_column for the label column"
        ) from None
    if channels:
        if x.shape[1] % channels:
            raise DataError(
                f"{p}: {x.shape[1]} values per row do not split into {channels} channels"
            )
        x = x.reshape(len(x), channels, -1)  # channel-major: c0 values, then c1 values, ...
    return x, labels if labels is not None else raw_labels


def _load_ts(p: Path) -> tuple[np.ndarray, Any]:
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError:
        raise DataError(
            f"{p}: reading .ts files needs aeon; install it with `pip install visionforge[signals]`"
        ) from None
    try:
        x, y = load_from_ts_file(str(p))
    except Exception as exc:
        raise DataError(f"{p}: cannot parse .ts file ({type(exc).__name__}: {exc})") from None
    if isinstance(x, list):
        raise DataError(f"{p}: series have unequal lengths; resample them to one length first")
    return np.asarray(x, dtype=np.float32), y


def load_series(
    path: str | os.PathLike[str],
    labels: Sequence[Any] | np.ndarray | str | os.PathLike[str] | None = None,
    *,
    channels: int | None = None,
    label_column: str | int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(x [N, C, L] float32, y [N] int64, class_names)`` from a series file.

    * ``.npy``: ``[N, C, L]`` or ``[N, L]``; labels from ``labels`` (array or ``.npy`` path)
      or a sibling ``<stem>_labels.npy``. ``.npz``: arrays ``x`` and ``y``.
    * ``.csv``: one series per row; ``label_column`` (name or index) holds the label;
      ``channels`` splits each row channel-major into ``[C, L]``.
    * ``.ts``: the UEA/UCR archive format (via aeon), labels included.

    Labels are mapped to 0..K-1 in sorted order of their values (``class_names``).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: series file not found")
    if isinstance(labels, str | os.PathLike):
        labels = _np_load(labels)
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        x, y = _load_npy(p, labels)
    elif suffix == ".csv":
        x, y = _load_csv(p, labels, channels, label_column)
    elif suffix == ".ts":
        x, y = _load_ts(p)
        y = labels if labels is not None else y
    else:
        raise DataError(f"{p}: unsupported series format {suffix!r}; use .npy, .npz, .csv or .ts")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3:
        raise DataError(f"{p}: series array must be [N, C, L] or [N, L], got {x.shape}")
    if y is None:
        raise DataError(f"{p}: no labels found; pass labels= (array or .npy path) or label_column=")
    y = np.asarray(y)
    if len(y) != len(x):
        raise DataError(f"{p}: {len(x)} series but {len(y)} labels")
    yi, names = encode_labels(y)
    return x, yi, names


def load_series_dataset(path: str | os.PathLike[str], **kwargs: Any) -> Any:
    """:func:`load_series` wrapped in a :class:`SignalDataset` (each series its own event)."""
    from visionforge.data.signals.dataset import SignalDataset

    x, y, names = load_series(path, **kwargs)
    return SignalDataset(x, y, class_names=names)


def load_basic_motions(split: str = "train") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """BasicMotions (UEA; 6 channels x 100 samples of wrist accelerometer + gyroscope,
    4 activities; 40 train / 40 test series) from the copy bundled with aeon, read
    through :func:`load_series`. ``split``: ``"train"``, ``"test"`` or ``"all"``."""
    try:
        import aeon.datasets
    except ImportError:
        raise DataError(
            "BasicMotions ships with aeon; install it with `pip install aeon`"
        ) from None
    base = Path(aeon.datasets.__file__).parent / "data" / "BasicMotions"
    parts = {"train": ["TRAIN"], "test": ["TEST"], "all": ["TRAIN", "TEST"]}.get(split)
    if parts is None:
        raise DataError(f"split={split!r}; choose 'train', 'test' or 'all'")
    xs, ys = [], []
    names: list[str] = []
    for part in parts:
        f = base / f"BasicMotions_{part}.ts"
        x, y, names = load_series(f)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys), names

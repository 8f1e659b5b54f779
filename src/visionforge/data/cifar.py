"""CIFAR-10/100 from the official "python version" batches in a local folder, read safely.

The official CIFAR archives store each batch as a Python pickle of a dict holding
a uint8 numpy array and label lists. Pickle can run code, so batches are read
with a restricted unpickler that only rebuilds plain containers, bytes/str and
numpy arrays/dtypes; any other global in the file is refused. The files are
only ever read from the user's own dataset root (visionforge never downloads).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError

__all__ = ["safe_unpickle", "load_cifar_batches", "CIFAR_LAYOUTS"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # numpy arrays pickled under protocol 2 store bytes via codecs
}

CIFAR_LAYOUTS = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "label_key": "labels",
        "names_key": "label_names",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "label_key": "fine_labels",
        "names_key": "fine_label_names",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def safe_unpickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a data file allowing only containers, strings/bytes and numpy arrays."""
    p = Path(path)
    try:
        return _RestrictedUnpickler(io.BytesIO(p.read_bytes()), encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{p}: refused or unreadable batch file ({exc})") from None


def _key(d: dict[Any, Any], key: str) -> Any:
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


def load_cifar_batches(
    root: str | os.PathLike[str], name: str, split: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images uint8 [N, 32, 32, 3], labels int64 [N], class_names)`` for ``split`` train/test."""
    layout = CIFAR_LAYOUTS[name]
    r = Path(root)
    folder = r / layout["folder"] if (r / layout["folder"]).is_dir() else r
    xs, ys = [], []
    for fname in layout[split]:
        f = folder / fname
        if not f.is_file():
            raise DataError(
                f"{f} not found. Download {layout['url']} yourself and extract it into {r} "
                f"so that {r / layout['folder'] / fname} exists (visionforge never downloads)."
            )
        batch = safe_unpickle(f)
        try:
            data = np.asarray(_key(batch, "data"), dtype=np.uint8)
            labels = np.asarray(_key(batch, layout["label_key"]), dtype=np.int64)
        except (KeyError, TypeError) as exc:
            raise DataError(f"{f}: not a CIFAR batch (missing {exc})") from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise DataError(f"{f}: expected data [N, 3072] and N labels, got {data.shape}")
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(labels)
    meta_file = folder / layout["meta"]
    if meta_file.is_file():
        names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in _key(safe_unpickle(meta_file), layout["names_key"])
        ]
    else:
        names = [str(i) for i in range(int(max(int(y.max()) for y in ys)) + 1)]
    return np.concatenate(xs), np.concatenate(ys), names

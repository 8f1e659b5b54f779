"""Cache of decoded images (and masks), in memory or on disk, so each file is decoded once.

Decoding (PNG/JPEG/TIFF) often costs more than the augmentation of a small image; with
``cache="memory"`` a dataset keeps every decoded array after its first epoch, with
``cache="disk"`` it writes it as a raw ``.npy`` file (``numpy.save``/``numpy.load`` with
``allow_pickle=False``: nothing executable is ever read back) that later epochs and later
runs load instead of decoding. Entries are keyed by the file's absolute path, size and
modification time plus a variant tag (channels, colour map), so an edited image is decoded
again. Disk entries are written atomically (:func:`visionforge.io.atomic_write`); a damaged
entry is decoded again and rewritten. torchvision and Lightning have no decoded-image
cache, hence this small one.

The memory cache lives in each process: with ``num_workers > 0`` every worker fills its own
copy, which lasts only as long as the worker (``persistent_workers``); prefer ``disk`` with
workers (the OS page cache then shares the files).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError
from visionforge.io import atomic_write

__all__ = ["CACHE_MODES", "DecodedCache", "default_cache_dir", "make_cache"]

_log = logging.getLogger(__name__)
CACHE_MODES = ("none", "memory", "disk")
CACHE_DIR_ENV = "VISIONFORGE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$VISIONFORGE_CACHE_DIR``, else ``$XDG_CACHE_HOME/visionforge/decoded`` (``~/.cache``)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "visionforge" / "decoded"


class DecodedCache:
    """Decoded arrays keyed by source file; ``mode`` is ``"memory"`` or ``"disk"``.

    Example:
        >>> cache = DecodedCache("memory")
        >>> arr = cache.get("img.png", lambda: np.zeros((2, 2), np.uint8))  # doctest: +SKIP
    """

    def __init__(self, mode: str = "memory", directory: str | os.PathLike[str] | None = None
                 ) -> None:
        if mode not in ("memory", "disk"):
            raise ConfigError(f"cache mode {mode!r}: choose one of {', '.join(CACHE_MODES)}")
        self.mode = mode
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self._memory: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    def key(self, path: str | os.PathLike[str], variant: str = "") -> str:
        """A digest of the file's absolute path, size, mtime and ``variant``."""
        p = Path(path).resolve()
        st = p.stat()
        raw = f"{p}|{st.st_size}|{st.st_mtime_ns}|{variant}"
        return hashlib.sha256(raw.encode()).hexdigest()[:40]

    def _file(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def _read_disk(self, key: str) -> np.ndarray | None:
        f = self._file(key)
        if not f.is_file():
            return None
        try:
            return np.load(f, allow_pickle=False)
        except (OSError, ValueError) as exc:  # truncated or foreign file: decode again
            _log.warning("decoded-image cache entry %s is unreadable (%s); decoding again", f, exc)
            return None

    def _write_disk(self, key: str, arr: np.ndarray) -> None:
        try:
            with atomic_write(self._file(key)) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
        except OSError as exc:  # a full or read-only cache folder must not stop training
            _log.warning("cannot write decoded-image cache entry (%s); continuing without", exc)

    def get(self, path: str | os.PathLike[str], decode: Callable[[], np.ndarray],
            variant: str = "") -> np.ndarray:
        """The cached array for ``path`` (and ``variant``), decoding it with ``decode()`` once."""
        key = self.key(path, variant)
        if self.mode == "memory":
            arr = self._memory.get(key)
        else:
            arr = self._read_disk(key)
        if arr is not None:
            self.hits += 1
            # a copy: transforms never see (and could never alter) the cached array
            return arr.copy() if self.mode == "memory" else arr
        self.misses += 1
        arr = np.asarray(decode())
        if self.mode == "memory":
            self._memory[key] = arr
            return arr.copy()
        self._write_disk(key, arr)
        return arr

    def __len__(self) -> int:
        if self.mode == "memory":
            return len(self._memory)
        return sum(1 for _ in self.directory.glob("??/*.npy")) if self.directory.is_dir() else 0

    def __getstate__(self) -> dict[str, Any]:
        # A pickled dataset (spawned workers, DDP ranks) starts with an empty memory cache
        # instead of carrying the parent's decoded images through a pipe.
        state = dict(self.__dict__)
        state["_memory"] = {}
        return state


def make_cache(cache: str | DecodedCache | None, cache_dir: str | os.PathLike[str] | None = None
               ) -> DecodedCache | None:
    """A :class:`DecodedCache` for a setting ``none|memory|disk`` (or an existing cache)."""
    if cache is None or isinstance(cache, DecodedCache):
        return cache
    mode = str(cache).lower()
    if mode not in CACHE_MODES:
        raise ConfigError(f"data.cache={cache!r}: choose one of {', '.join(CACHE_MODES)}")
    return None if mode == "none" else DecodedCache(mode, cache_dir)

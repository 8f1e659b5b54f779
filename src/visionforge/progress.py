"""Progress bars for long steps (evaluation, prediction, tiling), quiet when not interactive.

Training shows Lightning's own bar; everything else goes through :func:`progress`,
a thin layer over tqdm that stays silent when stderr is not a terminal (CI, logs,
pipes) unless ``VISIONFORGE_PROGRESS=1`` forces it on (``0`` forces it off).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from visionforge.booleans import is_true

__all__ = ["progress", "progress_enabled"]

T = TypeVar("T")


def progress_enabled() -> bool:
    """Whether bars are drawn: ``VISIONFORGE_PROGRESS`` if set, else whether stderr is a TTY."""
    forced = os.environ.get("VISIONFORGE_PROGRESS")
    if forced is not None:
        return is_true(forced)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T] | Iterable[T]:
    """``iterable`` wrapped in a tqdm bar labelled ``desc`` when bars are enabled."""
    if not progress_enabled():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True)

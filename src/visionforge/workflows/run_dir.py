"""Run directories: ``<project_dir>/<task>/<name>``, auto-incremented, never overwritten."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["new_run_dir"]


def new_run_dir(project_dir: str | os.PathLike[str], task: str, name: str | None = None) -> Path:
    """Create and return a fresh run directory.

    Without ``name`` the directories are ``exp``, ``exp2``, ``exp3``...; with a name that
    already exists, ``name2``, ``name3``... is used instead, so an earlier run is never
    overwritten. Creation is atomic (``mkdir`` fails if another process took the name).
    """
    base = Path(project_dir) / task
    base.mkdir(parents=True, exist_ok=True)
    stem = name or "exp"
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", stem):
        from visionforge.errors import ConfigError

        raise ConfigError(f"run name {stem!r} may contain only letters, digits, '_', '-' and '.'")
    index = 1
    while True:
        candidate = base / (stem if index == 1 else f"{stem}{index}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            index += 1

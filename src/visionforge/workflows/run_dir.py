"""Run directories: ``<project_dir>/<task>/<name>``, auto-incremented, never overwritten."""

from __future__ import annotations

import os
import re
from pathlib import Path

from visionforge.booleans import is_true
from visionforge.errors import ConfigError

__all__ = ["new_run_dir", "fresh_dir", "check_run_name", "resolve_resume", "dir_size"]

_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def check_run_name(name: str | None) -> str:
    """``name`` (or ``exp``) when it is a valid run name, else a :class:`ConfigError`."""
    stem = name or "exp"
    if not _NAME.fullmatch(stem):
        raise ConfigError(f"run name {stem!r} may contain only letters, digits, '_', '-' and '.'")
    return stem


def fresh_dir(parent: str | os.PathLike[str], stem: str) -> Path:
    """Create and return ``parent/stem``, or ``stem2``, ``stem3``... when taken.

    Creation is atomic (``mkdir`` fails if another process took the name), so an earlier
    result is never overwritten.
    """
    base = Path(parent)
    base.mkdir(parents=True, exist_ok=True)
    index = 1
    while True:
        candidate = base / (stem if index == 1 else f"{stem}{index}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            index += 1


def new_run_dir(project_dir: str | os.PathLike[str], task: str, name: str | None = None) -> Path:
    """Create and return a fresh run directory.

    Without ``name`` the directories are ``exp``, ``exp2``, ``exp3``...; with a name that
    already exists, ``name2``, ``name3``... is used instead, so an earlier run is never
    overwritten.
    """
    return fresh_dir(Path(project_dir) / task, check_run_name(name))


def _last_ckpt(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "last.ckpt"


def _latest_run(project_dir: Path, name: str | None) -> Path:
    """The run of ``name`` (``name``, ``name2``, ... under any task) with the newest last.ckpt."""
    stem = check_run_name(name)
    pattern = re.compile(re.escape(stem) + r"\d*")
    runs = [d for d in project_dir.glob("*/*") if d.is_dir() and pattern.fullmatch(d.name)
            and _last_ckpt(d).is_file()]
    if not runs:
        raise ConfigError(
            f"resume=true: no run named {stem!r} with checkpoints/last.ckpt under {project_dir}; "
            "set name= (and project_dir=) of the run, or pass resume=RUN_DIR or resume=FILE.ckpt"
        )
    return max(runs, key=lambda d: _last_ckpt(d).stat().st_mtime)


def resolve_resume(value: str, project_dir: str | os.PathLike[str],
                   name: str | None) -> tuple[Path | None, Path]:
    """Where ``resume=value`` continues: ``(run dir or None, checkpoint)``.

    ``true`` is the latest run of ``name`` under ``project_dir``; a folder is a run dir
    (its ``checkpoints/last.ckpt``); a file is a checkpoint, continued in its run dir when
    it lies in ``<run dir>/checkpoints/`` (else a new run dir starts from it).
    """
    if is_true(value):
        run = _latest_run(Path(project_dir), name)
        return run, _last_ckpt(run)
    path = Path(value).expanduser()
    if path.is_dir():
        run = path.parent if path.name == "checkpoints" else path
        if not _last_ckpt(run).is_file():
            raise ConfigError(f"resume={value}: {_last_ckpt(run)} not found; pass a run dir "
                              "that has checkpoints/last.ckpt, or a .ckpt file")
        return run, _last_ckpt(run)
    if path.is_file():
        run = path.parent.parent
        in_run = path.parent.name == "checkpoints" and (run / "config.yaml").is_file()
        return (run if in_run else None), path
    raise ConfigError(f"resume={value}: no such run dir or checkpoint; use resume=true (the "
                      "latest run of name=), resume=RUN_DIR or resume=FILE.ckpt")


def dir_size(path: str | os.PathLike[str]) -> int:
    """Total bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


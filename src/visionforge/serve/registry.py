"""Which models a server offers: names and versions discovered from model dirs."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError
from visionforge.models.model_dir import META_FILE, read_model_meta

__all__ = ["ModelStore", "ServedModel", "discover"]

_VERSION_RE = re.compile(r"^v?\d+([._-]\d+)*$", re.IGNORECASE)


def _version_key(v: str) -> tuple:
    parts = re.split(r"[._-]", v.lstrip("vV"))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


@dataclass
class ServedModel:
    name: str
    version: str
    path: Path
    meta: dict[str, Any]
    predictor: Any = field(default=None, repr=False)


def _model_name(path: Path, meta: Mapping[str, Any]) -> str:
    """The served name of a model dir: its run's name, never the generic ``model`` folder."""
    if meta.get("run_name"):
        return str(meta["run_name"])
    folder = path.resolve()
    if _VERSION_RE.match(folder.name):
        folder = folder.parent
    if folder.name == "model" and folder.parent.name:
        return folder.parent.name  # the train workflow's <run dir>/model
    return folder.name


def discover(
    model_dirs: Iterable[str | os.PathLike[str]] | Mapping[str, Any],
) -> list[tuple[str, str, Path]]:
    """``(name, version, path)`` for each model dir given.

    Accepted forms: a model dir (name = ``model.json``'s ``run_name``, else the run dir's
    name for a run's ``<run>/model`` folder, else the folder name; version = ``model.json``'s ``version``
    or ``"1"``); a dir named like a version (``v2``, ``3``, ``1.0``) -> name = parent folder;
    a folder whose sub-folders are versions of one model; ``"name=path"`` or
    ``"name:version=path"`` strings; or a mapping ``{name: path | [paths]}``.
    """
    items: list[tuple[str | None, str | None, Path]] = []
    if isinstance(model_dirs, Mapping):
        for name, val in model_dirs.items():
            vals = val if isinstance(val, list | tuple) else [val]
            items.extend((str(name), None, Path(v)) for v in vals)
    else:
        for entry in model_dirs:
            s = os.fspath(entry)
            name = version = None
            if "=" in s and not Path(s).exists():
                label, s = s.split("=", 1)
                name, _, version = label.partition(":")
                version = version or None
            items.append((name, version, Path(s)))
    out: list[tuple[str, str, Path]] = []
    for name, version, path in items:
        if (path / META_FILE).is_file():
            meta = read_model_meta(path)
            if name is None:
                name = _model_name(path, meta)
            if version is None:
                version = (
                    path.name if _VERSION_RE.match(path.name) else str(meta.get("version", "1"))
                )
            out.append((name, str(version), path))
        elif path.is_dir() and any((p / META_FILE).is_file() for p in path.iterdir() if p.is_dir()):
            for sub in sorted(p for p in path.iterdir() if (p / META_FILE).is_file()):
                out.append((name or path.name, sub.name, sub))
        else:
            raise ConfigError(
                f"{path}: not a model dir (no {META_FILE}) nor a folder of model-dir versions"
            )
    seen = set()
    for name, version, path in out:
        if (name, version) in seen:
            raise ConfigError(
                f"model {name!r} version {version!r} is given twice (again at {path})"
            )
        seen.add((name, version))
    return out


class ModelStore:
    """Served models by name and version; the default version is the latest."""

    def __init__(self) -> None:
        self._models: dict[str, dict[str, ServedModel]] = {}

    def add(self, model: ServedModel) -> None:
        self._models.setdefault(model.name, {})[model.version] = model

    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        return sorted(self._models[name], key=_version_key)

    def latest(self, name: str) -> str:
        return self.versions(name)[-1]

    def get(self, name: str | None, version: str | None) -> ServedModel:
        """The model ``name`` (the only one when None) at ``version`` (latest when None)."""
        from fastapi import HTTPException

        if name is None:
            if len(self._models) != 1:
                raise HTTPException(  # 409: a valid request the server's state makes ambiguous
                    409,
                    f"several models are served; choose one with ?model= ({', '.join(self.names())})",
                )
            name = self.names()[0]
        if name not in self._models:
            raise HTTPException(404, f"unknown model {name!r}; served: {', '.join(self.names())}")
        if version is None:
            version = self.latest(name)
        if version not in self._models[name]:
            raise HTTPException(
                404,
                f"model {name!r} has no version {version!r}; versions: {', '.join(self.versions(name))}",
            )
        return self._models[name][version]

    def all(self) -> list[ServedModel]:
        return [self._models[n][v] for n in self.names() for v in self.versions(n)]

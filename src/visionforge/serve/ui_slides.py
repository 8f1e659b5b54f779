"""The page's slide browser: output dirs of ``visionforge slides segment`` as Deep Zoom images.

``slides_dir`` is an ``out=`` folder of ``slides segment`` (``<slide stem>/slide.json``,
``labels.tif``, ``composition.csv``). Each slide is offered as two DZI images, the slide
itself (read through :func:`visionforge.slides.reader.open_slide`) and its coloured label
map, plus its composition row. Names, levels, columns and rows are checked before any file
is touched.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from visionforge.serve.deepzoom import (
    DeepZoom,
    TileOutOfRange,
    jpeg_bytes,
    label_levels,
    label_tile,
    png_bytes,
    slide_tile,
)

__all__ = ["slides_router", "SlideLibrary"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
_CACHE = {"Cache-Control": "private, max-age=3600"}


class SlideLibrary:
    """The slides of one ``slides segment`` output folder, with their open readers."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._readers: dict[str, tuple[Any, threading.Lock]] = {}
        self._lock = threading.Lock()

    def folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent for p in self.root.glob("*/slide.json"))

    def folder(self, name: str) -> Path:
        """The folder of slide ``name`` (404 for anything that is not one)."""
        if not _NAME.match(name) or name in (".", ".."):
            raise HTTPException(404, f"no slide named {name!r}")
        folder = self.root / name
        if not (folder / "slide.json").is_file():
            raise HTTPException(404, f"no slide named {name!r} under {self.root}")
        return folder

    def info(self, name: str) -> dict[str, Any]:
        from visionforge.io import read_json

        folder = self.folder(name)
        try:
            info = read_json(folder / "slide.json")
        except Exception as exc:  # noqa: BLE001 - report it instead of failing the listing
            return {"name": name, "status": "unreadable", "reason": str(exc)}
        names = [str(c) for c in info.get("class_names") or []]
        from visionforge.serve.ui_predict import class_colors

        return {"name": name, "status": info.get("status"), "reason": info.get("reason"),
                "class_names": names, "colors": class_colors(info, names),
                "composition": info.get("composition") or {}, "shape": info.get("shape"),
                "mpp": info.get("mpp"), "seconds": info.get("seconds"),
                "slide": info.get("slide"), "has_labels": (folder / "labels.tif").is_file(),
                "slide_readable": self.slide_path(info) is not None}

    def slide_path(self, info: dict[str, Any]) -> Path | None:
        """The slide file recorded in ``slide.json`` (relative paths: from the cwd, then from
        the output folder's parent), or None when it is not there any more."""
        raw = info.get("slide")
        if not raw:
            return None
        p = Path(str(raw))
        for cand in (p, self.root.parent / p, self.root / p):
            if cand.is_file():
                return cand
        return None

    def reader(self, name: str) -> tuple[Any, threading.Lock]:
        """The open reader of slide ``name`` (kept open: tiles come in bursts)."""
        from visionforge.io import read_json
        from visionforge.slides.reader import open_slide

        with self._lock:
            if name not in self._readers:
                path = self.slide_path(read_json(self.folder(name) / "slide.json"))
                if path is None:
                    raise HTTPException(404, f"slide {name!r}: the slide file named in slide.json "
                                        "is not there any more (labels are still shown)")
                self._readers[name] = (open_slide(path), threading.Lock())
            return self._readers[name]


def _slide_dz(lib: SlideLibrary, name: str) -> DeepZoom:
    reader, _ = lib.reader(name)
    w, h = reader.dimensions
    return DeepZoom(int(w), int(h), fmt="jpeg")


def _labels_dz(lib: SlideLibrary, name: str) -> DeepZoom:
    path = lib.folder(name) / "labels.tif"
    if not path.is_file():
        raise HTTPException(404, f"slide {name!r} has no labels.tif")
    h, w = label_levels(path)[0]
    return DeepZoom(w, h, fmt="png")


def _xml(dz: DeepZoom) -> Response:
    return Response(dz.xml(), media_type="application/xml")


def _slide_png(lib: SlideLibrary, name: str, level: int, col: int, row: int) -> bytes:
    dz = _slide_dz(lib, name)
    reader, lock = lib.reader(name)
    with lock:  # one read at a time per slide file handle
        return jpeg_bytes(slide_tile(reader, dz, level, col, row))


def _label_png(lib: SlideLibrary, name: str, level: int, col: int, row: int) -> bytes:
    info = lib.info(name)
    names = info["class_names"]
    hidden = [i for i, n in enumerate(names) if n.lower() in ("background", "whitespace")]
    dz = _labels_dz(lib, name)
    return png_bytes(label_tile(lib.folder(name) / "labels.tif", dz, level, col, row,
                                info["colors"], hidden))


def slides_router(lib: SlideLibrary | None) -> APIRouter:
    """``/ui/api/slides`` and the Deep Zoom routes of each slide (auth added by the caller)."""
    router = APIRouter(prefix="/ui/api/slides")

    def need() -> SlideLibrary:
        if lib is None:
            raise HTTPException(404, "no slides folder is served; start the server with "
                                "--slides-dir OUT (the out= folder of visionforge slides segment)")
        return lib

    @router.get("")
    def slides() -> dict[str, Any]:
        if lib is None:
            return {"configured": False, "slides": []}
        return {"configured": True, "root": str(lib.root),
                "slides": [lib.info(p.name) for p in lib.folders()]}

    @router.get("/{name}/slide.dzi")
    def slide_dzi(name: str) -> Response:
        return _xml(_slide_dz(need(), name))

    @router.get("/{name}/labels.dzi")
    def labels_dzi(name: str) -> Response:
        return _xml(_labels_dz(need(), name))

    @router.get("/{name}/{kind}_files/{level}/{tile}")
    async def tile(name: str, kind: str, level: int, tile: str) -> Response:
        m = re.fullmatch(r"(\d{1,6})_(\d{1,6})\.(jpeg|png)", tile)
        if kind not in ("slide", "labels") or m is None:
            raise HTTPException(404, f"no such tile {kind}_files/{level}/{tile}")
        col, row = int(m.group(1)), int(m.group(2))
        fn, media = (_slide_png, "image/jpeg") if kind == "slide" else (_label_png, "image/png")
        try:
            data = await run_in_threadpool(fn, need(), name, level, col, row)
        except TileOutOfRange as exc:
            raise HTTPException(404, f"{kind} of slide {name!r}: {exc}") from None
        return Response(data, media_type=media, headers=_CACHE)

    @router.get("/{name}/composition.csv")
    def composition(name: str) -> FileResponse:
        path = need().folder(name) / "composition.csv"
        if not path.is_file():
            raise HTTPException(404, f"slide {name!r} has no composition.csv")
        return FileResponse(path, media_type="text/csv", filename=f"{name}_composition.csv")

    return router

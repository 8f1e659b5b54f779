"""The web page built into ``visionforge serve``: ``GET /`` and its static files.

Plain HTML/CSS/JS from the package (``serve/static``, OpenSeadragon vendored under
``static/vendor``): no build step and nothing fetched from the internet. The page itself
holds no data; everything it shows comes from the JSON routes, which carry the API's key
check (the page asks for the key and sends it as ``X-API-Key``) and the API's upload limits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from visionforge.serve.handlers import Handlers
from visionforge.serve.registry import ModelStore

__all__ = ["add_ui", "STATIC_DIR"]

STATIC_DIR = Path(__file__).parent / "static"


def add_ui(app: FastAPI, store: ModelStore, handlers: Handlers, auth: list[Any], *,
           slides_dir: str | os.PathLike[str] | None = None,
           project_dir: str | os.PathLike[str] | None = None) -> None:
    """Add the page (``/``, ``/static``) and its JSON routes (``/ui/api/...``) to ``app``."""
    from visionforge.errors import ConfigError
    from visionforge.serve.ui_predict import predict_router
    from visionforge.serve.ui_runs import runs_router
    from visionforge.serve.ui_slides import SlideLibrary, slides_router

    for label, value in (("slides_dir", slides_dir), ("project_dir", project_dir)):
        if value is not None and not Path(value).is_dir():
            raise ConfigError(f"{label}={value}: no such folder")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    lib = SlideLibrary(slides_dir) if slides_dir is not None else None
    for router in (predict_router(store, handlers), slides_router(lib),
                   runs_router(Path(project_dir) if project_dir is not None else None)):
        app.include_router(router, dependencies=auth, include_in_schema=False)

"""HTTP serving of model dirs with FastAPI: ``create_app`` and ``run_server``."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "run_server"]


def create_app(*args: Any, **kwargs: Any):
    """See :func:`visionforge.serve.app.create_app`."""
    from visionforge.serve.app import create_app as _create

    return _create(*args, **kwargs)


def run_server(app: Any, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve ``app`` with uvicorn (blocks until interrupted)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, workers=workers, log_level="info")

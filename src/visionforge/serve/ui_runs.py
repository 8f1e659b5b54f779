"""The page's run browser: the runs of a project dir (``<project>/<task>/<name>``), their
headline metrics, report and training curves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

__all__ = ["runs_router", "list_runs"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")
_MARKERS = ("metrics.json", "history.json", "config.yaml")


def _read(path: Path) -> Any:
    from visionforge.io import read_json

    try:
        return read_json(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 - a damaged file shows as missing, the listing goes on
        return None


def _summary(run: Path) -> dict[str, Any]:
    from visionforge.workflows.summary import headline_metrics

    metrics = _read(run / "metrics.json") or {}
    history = _read(run / "history.json") or {}
    model = _read(run / "model" / "model.json") or {}
    return {"task": run.parent.name, "name": run.name,
            "split": metrics.get("split") if isinstance(metrics, dict) else None,
            "metrics": headline_metrics(metrics) if isinstance(metrics, dict) else {},
            "epochs": len(history.get("val_loss") or history.get("train_loss") or [])
            if isinstance(history, dict) else 0,
            "model": model.get("name") if isinstance(model, dict) else None,
            "has_report": (run / "report.html").is_file(),
            "has_history": isinstance(history, dict) and bool(history),
            "modified": int(max((run / f).stat().st_mtime for f in _MARKERS
                                if (run / f).is_file()))}


def list_runs(project_dir: str | Path) -> list[dict[str, Any]]:
    """Every run dir ``<project>/<task>/<name>`` (one holding metrics, history or config),
    newest first."""
    root = Path(project_dir)
    runs = [d for d in root.glob("*/*") if d.is_dir() and _NAME.match(d.name)
            and any((d / f).is_file() for f in _MARKERS)]
    return sorted((_summary(d) for d in runs), key=lambda r: -r["modified"])


def runs_router(project_dir: Path | None) -> APIRouter:
    """``/ui/api/runs``, a run's report and history (auth added by the caller)."""
    router = APIRouter(prefix="/ui/api/runs")

    def run_dir(task: str, name: str) -> Path:
        if project_dir is None:
            raise HTTPException(404, "no project dir is served; start the server with "
                                "--project-dir DIR (the project_dir= of visionforge train)")
        if not (_NAME.match(task) and _NAME.match(name)) or ".." in (task, name):
            raise HTTPException(404, f"no run {task}/{name}")
        run = project_dir / task / name
        if not run.is_dir():
            raise HTTPException(404, f"no run {task}/{name} under {project_dir}")
        return run

    @router.get("")
    def runs() -> dict[str, Any]:
        if project_dir is None:
            return {"configured": False, "runs": []}
        return {"configured": True, "root": str(project_dir), "runs": list_runs(project_dir)}

    @router.get("/{task}/{name}/report", response_class=HTMLResponse)
    def report(task: str, name: str) -> HTMLResponse:
        path = run_dir(task, name) / "report.html"
        if not path.is_file():
            raise HTTPException(404, f"run {task}/{name} has no report.html")
        return HTMLResponse(path.read_text(encoding="utf-8"))

    @router.get("/{task}/{name}/history")
    def history(task: str, name: str) -> dict[str, Any]:
        data = _read(run_dir(task, name) / "history.json")
        if not isinstance(data, dict):
            raise HTTPException(404, f"run {task}/{name} has no readable history.json")
        return data

    return router

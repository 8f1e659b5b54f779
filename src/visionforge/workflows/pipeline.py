"""``visionforge pipeline``: the disease-classification pipeline as one resumable job.

For every backbone (default: the 15 classification families) it runs the steps of
:class:`~visionforge.workflows.pipeline_steps.BackboneRun` (7-step verification, seeded
stratified split, optional k-fold CV, head-then-finetune training with the family's LR
and scheduler, test metrics and plots, exports with smoke tests, throughput) in
``<out>/<backbone>/``, then writes the comparison table (``comparison.csv/.md/.html``).

``<out>/status.json`` records each backbone's state after every step: a failing
backbone is recorded with its step and error and the next one starts; running the same
command again skips the finished backbones (and retries failed or interrupted ones from
the start). Everything the run prints, the library's INFO logs and the tracebacks of
failed backbones also go to ``<out>/training_run_<YYYYmmdd_HHMMSS>.log``.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError, DataError
from visionforge.workflows.pipeline_settings import PipelineSettings
from visionforge.workflows.pipeline_steps import BackboneRun
from visionforge.workflows.pipeline_table import write_tables

__all__ = ["PipelineResult", "run_pipeline", "STATUS_FILE"]

STATUS_FILE = "status.json"

_log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced."""

    out: Path
    records: list[dict[str, Any]]
    tables: list[Path] = field(default_factory=list)
    log_file: Path | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        """Backbones whose last attempt failed."""
        return [r["backbone"] for r in self.records if r.get("status") == "failed"]


def _base_config(overrides: list[str]) -> Any:
    """The run config shared by every backbone, checked before anything is written."""
    from visionforge.config.loader import compose_config

    cfg = compose_config(overrides).cfg
    root = cfg.data.get("root")
    if not root and not cfg.data.get("images_dir"):
        raise ConfigError("pipeline: no data; pass data.root=DIR (one sub-folder of images per class)")
    if root and not Path(str(root)).expanduser().is_dir():
        raise DataError(f"pipeline: data.root={root} is not a folder; pass the folder holding one "
                        "sub-folder of images per class")
    if cfg.task not in ("auto", "classification"):
        raise ConfigError(f"pipeline: task={cfg.task}; the pipeline trains classification backbones")
    return cfg


def _out_dir(settings: PipelineSettings, cfg: Any) -> Path:
    if settings.out:
        return Path(settings.out).expanduser()
    from visionforge.workflows.run_dir import check_run_name

    return Path(cfg.project_dir) / "pipeline" / check_run_name(cfg.name or "pipeline")


class _Status:
    """``status.json``: the pipeline's settings and one record per backbone, written
    atomically after every change so an interrupted run can resume."""

    def __init__(self, out: Path, settings: PipelineSettings, overrides: list[str]) -> None:
        from visionforge.io import read_json

        self.path = out / STATUS_FILE
        self.state: dict[str, Any] = {
            "settings": settings.fingerprint(), "overrides": sorted(overrides), "backbones": {},
        }
        if self.path.is_file():
            saved = read_json(self.path)
            self._check_same(saved, out)
            self.state["backbones"] = dict(saved.get("backbones") or {})

    def _check_same(self, saved: dict[str, Any], out: Path) -> None:
        before, now = saved.get("settings") or {}, self.state["settings"]
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if sorted(saved.get("overrides") or []) != self.state["overrides"]:
            changed.append("run-config overrides")
        if changed:
            raise ConfigError(
                f"pipeline: {out} holds a pipeline run with other settings ({', '.join(changed)}); "
                "resume it with the same options, or pass out=NEW_DIR to start a new one"
            )

    def record(self, name: str) -> dict[str, Any]:
        return self.state["backbones"].setdefault(name, {"backbone": name, "status": "pending"})

    def update(self, name: str, **changes: Any) -> None:
        from visionforge.io import atomic_write_json

        self.record(name).update(changes)
        atomic_write_json(self.path, self.state)


@contextmanager
def _run_log(out: Path) -> Iterator[Path]:
    """Send visionforge's INFO logs (and above) to a timestamped ``.log`` file in ``out``
    while the console keeps its own level (quiet by default)."""
    path = out / f"training_run_{datetime.now():%Y%m%d_%H%M%S}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root, logger = logging.getLogger(), logging.getLogger("visionforge")
    # the console handlers keep the root's level: our INFO records must reach the file only
    pinned = [h for h in root.handlers if h.level == logging.NOTSET]
    for h in pinned:
        h.setLevel(root.getEffectiveLevel())
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        for h in pinned:
            h.setLevel(logging.NOTSET)
        handler.close()


def _run_one(name: str, settings: PipelineSettings, overrides: list[str], out: Path,
             status: _Status, echo: Callable[[str], None]) -> None:
    """Run backbone ``name`` from scratch, recording every step and the outcome."""
    bdir = out / name
    if bdir.exists():  # a failed or interrupted attempt: start that backbone again
        shutil.rmtree(bdir)
    attempts = int(status.record(name).get("attempts", 0)) + 1
    status.update(name, status="running", step=None, error=None, row=None, attempts=attempts)
    start = time.perf_counter()

    def on_step(step: str) -> None:
        status.update(name, step=step)
        _log.info("%s: %s", name, step)

    run = BackboneRun(name, settings, overrides, bdir, echo=lambda m: _log.info("%s", m),
                      on_step=on_step)
    try:
        row = run.run()
    except KeyboardInterrupt:
        status.update(name, status="interrupted", row=run.row,
                      seconds=round(time.perf_counter() - start, 1))
        raise
    except Exception as exc:  # one backbone failing must not stop the others
        step = status.record(name).get("step")
        message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        # the traceback goes to the run's .log file only; the console gets one line
        _log.info("%s failed at step %s: %s\n%s", name, step, message, traceback.format_exc())
        status.update(name, status="failed", error=message, row=run.row,
                      seconds=round(time.perf_counter() - start, 1))
        echo(f"{name}: FAILED at {step}: {message}")
        return
    status.update(name, status="done", step=None, row=row, seconds=row.get("seconds"))
    acc = row.get("accuracy")
    echo(f"{name}: done in {row.get('seconds')} s" + (f", test accuracy {acc:.4f}" if acc is not None else ""))


def run_pipeline(
    settings: PipelineSettings,
    overrides: list[str],
    *,
    echo: Callable[[str], None] = print,
) -> PipelineResult:
    """Run the pipeline over ``settings.models``; see the module docstring."""
    start = time.perf_counter()
    cfg = _base_config(overrides)
    out = _out_dir(settings, cfg)
    out.mkdir(parents=True, exist_ok=True)
    status = _Status(out, settings, overrides)
    with _run_log(out) as log_file:
        def say(message: str) -> None:
            _log.info("%s", message)
            echo(message)

        say(f"pipeline dir: {out} ({len(settings.models)} backbones, log {log_file.name})")
        for i, name in enumerate(settings.models, 1):
            state = status.record(name).get("status")
            if state == "done" or (state == "failed" and not settings.retry_failed):
                say(f"[{i}/{len(settings.models)}] {name}: {state} earlier, skipped")
                continue
            say(f"[{i}/{len(settings.models)}] {name}")
            _run_one(name, settings, overrides, out, status, say)
        records = [status.record(n) for n in settings.models]
        tables = write_tables(records, out, title=f"Backbone comparison ({out.name})")
        say(f"comparison table: {tables[0]} (.md, .html alongside)")
    return PipelineResult(out, records, tables, log_file, time.perf_counter() - start)

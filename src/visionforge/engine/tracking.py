"""Experiment tracking: CSV + TensorBoard always, MLflow when asked.

CSV and TensorBoard write under the run directory (``logs/metrics.csv`` and event
files in ``logs/``). MLflow writes to ONE local SQLite store per project dir,
``<project_dir>/mlflow.db`` plus ``<project_dir>/mlartifacts/``, so the runs of a
project can be compared in one UI (``mlflow ui --backend-store-uri
sqlite:///<project_dir>/mlflow.db``); a tracking URI (option or ``MLFLOW_TRACKING_URI``)
overrides it. Each MLflow run is named after its run dir. :func:`log_run_results`
adds what exists only after training: every resolved config value as a param, the
test metrics, and the report, plots and config as artifacts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError

__all__ = [
    "build_loggers",
    "mlflow_logger",
    "log_model_dir_artifact",
    "log_run_results",
    "default_mlflow_uri",
    "project_dir_of",
]

# Sub-folders the train workflow puts runs in: ``<project_dir>/<task>/<run name>``.
_TASK_FOLDERS = ("classification", "segmentation", "signal", "multitask", "auto")

_log = logging.getLogger(__name__)


def project_dir_of(output_dir: str | os.PathLike[str]) -> Path:
    """The project dir a run dir belongs to: ``P`` for ``P/<task>/<name>`` (the train
    workflow's layout), else the run dir's parent, so sibling runs share one store."""
    run = Path(output_dir).resolve()
    if run.parent.name in _TASK_FOLDERS:
        return run.parent.parent
    return run.parent


def default_mlflow_uri(
    output_dir: str | os.PathLike[str], project_dir: str | os.PathLike[str] | None = None
) -> str:
    """The project's local SQLite tracking store: ``sqlite:///<project_dir>/mlflow.db``."""
    root = Path(project_dir).resolve() if project_dir else project_dir_of(output_dir)
    return f"sqlite:///{root / 'mlflow.db'}"


def mlflow_logger(
    output_dir: str | os.PathLike[str],
    *,
    tracking_uri: str | None = None,
    experiment_name: str = "visionforge",
    run_name: str | None = None,
    project_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """An MLflow logger named after the run dir, writing to the project's SQLite store
    and ``<project_dir>/mlartifacts`` unless a tracking URI is given."""
    try:
        from lightning.pytorch.loggers import MLFlowLogger
    except ImportError as exc:  # pragma: no cover - lightning always ships it
        raise ConfigError(f"MLflow logging needs lightning's MLFlowLogger ({exc})") from None
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "loggers=('mlflow',) needs the mlflow package: pip install 'visionforge[track]'"
        ) from None
    uri = (
        tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or default_mlflow_uri(output_dir, project_dir)
    )
    root = Path(project_dir).resolve() if project_dir else project_dir_of(output_dir)
    artifacts = (root / "mlartifacts").as_uri()
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name or Path(output_dir).resolve().name,
        tracking_uri=uri,
        artifact_location=artifacts
        if uri.startswith("sqlite:") or uri.startswith("file:")
        else None,
    )


def _tensorboard_without_tensorflow() -> None:
    """Make TensorBoard use its bundled TF stub for writing event files.

    TensorBoard imports a full TensorFlow when one is installed (our optional ``[tf]``
    extra), which costs seconds per process and is not needed to write event files.
    Making ``tensorboard.compat.notf`` importable is TensorBoard's own switch for
    this (its ``//tensorboard/compat:no_tensorflow`` target).
    """
    import sys
    import types

    if "tensorflow" not in sys.modules:
        sys.modules.setdefault(
            "tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf")
        )


def build_loggers(
    output_dir: str | os.PathLike[str],
    loggers: Iterable[Any] = ("csv",),
    *,
    mlflow: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Lightning loggers for a run: CSV and TensorBoard in ``<output_dir>/logs`` plus any asked for.

    ``loggers`` holds names (``csv``, ``tensorboard``, ``mlflow``) and/or Lightning
    ``Logger`` instances. CSV and TensorBoard are always included.
    """
    _tensorboard_without_tensorflow()
    from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

    out: list[Any] = [CSVLogger(save_dir=str(output_dir), name="logs", version="")]
    try:
        out.append(
            TensorBoardLogger(
                save_dir=str(output_dir), name="logs", version="", default_hp_metric=False
            )
        )
    except ModuleNotFoundError as exc:  # tensorboard is optional at run time
        _log.warning("TensorBoard logging disabled: %s", exc)
    if isinstance(loggers, str):
        loggers = (loggers,)
    for item in loggers or ():
        if isinstance(item, Logger):
            out.append(item)
            continue
        name = str(item).lower()
        if name in ("csv", "tensorboard", "tb"):
            continue
        if name == "mlflow":
            out.append(mlflow_logger(output_dir, **dict(mlflow or {})))
            continue
        raise ConfigError(
            f"unknown logger {item!r}; use 'csv', 'tensorboard', 'mlflow' or a Lightning Logger"
        )
    return out


def log_model_dir_artifact(loggers: Iterable[Any], model_dir: str | os.PathLike[str]) -> None:
    """Upload the saved model dir to every MLflow logger as the ``model`` artifact."""
    from lightning.pytorch.loggers import MLFlowLogger

    for logger in loggers:
        if isinstance(logger, MLFlowLogger) and logger.run_id:
            logger.experiment.log_artifacts(logger.run_id, str(model_dir), artifact_path="model")


def _mlflow_loggers(source: Any) -> list[Any]:
    """MLflow loggers of a visionforge ``Trainer``, a Lightning trainer or a logger list."""
    from lightning.pytorch.loggers import MLFlowLogger

    pl_trainer = getattr(source, "pl_trainer", source)
    loggers = getattr(pl_trainer, "loggers", pl_trainer)
    if not isinstance(loggers, Iterable):
        return []
    return [lg for lg in loggers if isinstance(lg, MLFlowLogger) and lg.run_id]


def _flat_params(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat_params(v, key + "."))
        else:
            out[key] = str(v)[:6000]  # MLflow's limit on a param value
    return out


def _test_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Scalar metrics of ``metrics.json``, prefixed with the split (``test_accuracy``)."""
    split = str(metrics.get("split") or "test")
    out: dict[str, float] = {}
    heads = [("", metrics)] + [
        (f"{h}_", metrics[h])
        for h in ("classification", "segmentation")
        if isinstance(metrics.get(h), Mapping)
    ]
    for head, m in heads:
        for k, v in m.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[f"{split}_{head}{k}"] = float(v)
    return out


def log_run_results(
    source: Any,
    run_dir: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
) -> int:
    """Add a finished run's results to its MLflow run(s); returns how many were updated.

    ``source`` is the visionforge ``Trainer`` that trained (or its loggers). Logged:
    every resolved config value as a param (``config`` or ``run_dir/config.yaml``,
    flattened to dotted keys), the scalar metrics of ``metrics.json`` prefixed with
    the split (``test_accuracy``), and ``report.html``, ``report.pdf``, ``config.yaml``,
    ``metrics.json``, ``history.json`` and ``plots/`` as artifacts. Without an MLflow
    logger this does nothing.
    """
    loggers = _mlflow_loggers(source)
    if not loggers:
        return 0
    from visionforge.io import read_json

    rd = Path(run_dir)
    if config is None and (rd / "config.yaml").is_file():
        import yaml

        config = yaml.safe_load((rd / "config.yaml").read_text(encoding="utf-8")) or {}
    params = _flat_params(dict(config or {}))
    metrics = read_json(rd / "metrics.json") if (rd / "metrics.json").is_file() else {}
    for logger in loggers:
        client, run_id = logger.experiment, logger.run_id
        have = client.get_run(run_id).data.params
        _log_params(client, run_id, {k: v for k, v in params.items() if k not in have})
        for key, value in _test_metrics(metrics).items():
            client.log_metric(run_id, key, value)
        for name in ("report.html", "report.pdf", "config.yaml", "metrics.json", "history.json"):
            if (rd / name).is_file():
                client.log_artifact(run_id, str(rd / name))
        if (rd / "plots").is_dir():
            client.log_artifacts(run_id, str(rd / "plots"), artifact_path="plots")
    return len(loggers)


def _log_params(client: Any, run_id: str, params: Mapping[str, str]) -> None:
    """Log params in MLflow's batches of at most 100."""
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])

"""Experiment tracking: CSV + TensorBoard always, MLflow when asked.

All loggers write under the run directory: ``logs/metrics.csv``, TensorBoard event
files in ``logs/``, and for MLflow a local SQLite store ``mlflow.db`` plus an
``mlartifacts/`` folder unless a tracking URI is given -- no server needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError

__all__ = ["build_loggers", "mlflow_logger", "log_model_dir_artifact", "default_mlflow_uri"]

_log = logging.getLogger(__name__)


def default_mlflow_uri(output_dir: str | os.PathLike[str]) -> str:
    """The local SQLite tracking store of a run: ``sqlite:///<run>/mlflow.db``."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def mlflow_logger(
    output_dir: str | os.PathLike[str],
    *,
    tracking_uri: str | None = None,
    experiment_name: str = "visionforge",
    run_name: str | None = None,
) -> Any:
    """An MLflow logger; defaults to the run's own SQLite store and artifact folder."""
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
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_mlflow_uri(output_dir)
    artifacts = (Path(output_dir).resolve() / "mlartifacts").as_uri()
    return MLFlowLogger(
        experiment_name=experiment_name,
        run_name=run_name,
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
        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


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

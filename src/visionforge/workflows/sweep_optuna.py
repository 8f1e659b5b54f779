"""Hydra sweep overrides as Optuna distributions, and the pruning callback of a trial.

The mapping follows Hydra's own Optuna sweeper plugin (``hydra-optuna-sweeper``, which
only runs under ``@hydra.main`` apps, not with the compose API used here): a list or
``choice(...)`` is categorical, ``range(a,b)`` categorical over its integers,
``interval(a,b)`` uniform (``tag(log,interval(...))`` log-uniform; integer bounds give
integers).
"""

from __future__ import annotations

from typing import Any

from visionforge.errors import ConfigError

__all__ = ["suggest", "pruning_callback"]


def suggest(trial: Any, override: Any) -> Any:
    """Optuna's suggestion for one Hydra sweep override (its key names the parameter)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    name, value = override.key_or_group, override.value()
    if isinstance(value, ChoiceSweep):
        return trial.suggest_categorical(name, [_plain(v) for v in value.list])
    if isinstance(value, RangeSweep):
        return trial.suggest_categorical(name, list(override.sweep_iterator()))
    if isinstance(value, IntervalSweep):
        log = "log" in (value.tags or set())
        if isinstance(value.start, int) and isinstance(value.end, int):
            return trial.suggest_int(name, value.start, value.end, log=log)
        return trial.suggest_float(name, float(value.start), float(value.end), log=log)
    raise ConfigError(f"{override.input_line}: not a sweep (use a,b / choice() / range() / "
                      "interval())")


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def pruning_callback(trial: Any, monitor: str) -> Any:
    """optuna-integration's Lightning callback: reports ``monitor`` after every validation to
    ``trial.report`` and stops the run (``optuna.TrialPruned``) when the pruner says so."""
    from optuna_integration import PyTorchLightningPruningCallback

    return PyTorchLightningPruningCallback(trial, monitor=monitor)

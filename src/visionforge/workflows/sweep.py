"""Hyper-parameter sweeps: ``visionforge train -m key=a,b ...`` and ``hpo.trials=N`` (Optuna).

Overrides are parsed with Hydra's override grammar, so the sweep syntax is Hydra's:
``optimizer.lr=1e-4,1e-3`` (a list), ``choice(adam,sgd)``, ``range(1,4)``,
``interval(1e-4,1e-2)`` and ``tag(log,interval(1e-5,1e-2))``. Without ``hpo.trials`` the
lists are expanded into their cartesian product by Hydra's ``BasicSweeper`` (a grid); with
``hpo.trials=N`` Optuna samples N trials from the same space (TPE) and prunes trials whose
validation curve falls behind (median pruner). Every trial is a normal run dir under one
sweep dir; the sweep dir gets ``results.csv``, ``results.md``, ``results.png`` and
``best.json`` plus a ``best`` link to the best trial's run dir (see
:mod:`visionforge.workflows.sweep_report`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError

__all__ = ["split_sweep", "grid_jobs", "run_sweep", "DEFAULT_SPACE"]

_log = logging.getLogger(__name__)

#: searched by ``hpo.trials=N`` when no sweep override is given
DEFAULT_SPACE = ["optimizer.lr=tag(log,interval(1e-4,1e-1))"]


def _parse(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise ConfigError(f"cannot parse the sweep overrides: {str(exc).splitlines()[0]}") from None


def split_sweep(overrides: Sequence[str]) -> tuple[list[str], list[Any]]:
    """``(fixed, sweep)``: plain ``key=value`` strings and Hydra sweep overrides."""
    fixed: list[str] = []
    sweep: list[Any] = []
    for text, parsed in zip(overrides, _parse(overrides)):
        if parsed.is_sweep_override():
            sweep.append(parsed)
        else:
            fixed.append(text)
    return fixed, sweep


def grid_jobs(sweep: Sequence[Any]) -> list[list[str]]:
    """Every combination of the sweep lists (Hydra's BasicSweeper), as ``key=value`` lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    for ov in sweep:
        if ov.is_interval_sweep():
            raise ConfigError(f"{ov.input_line}: an interval cannot be listed as a grid; "
                              "set hpo.trials=N to sample it with Optuna")
    batches = BasicSweeper.split_arguments(list(sweep), max_batch_size=None)
    return [list(job) for batch in batches for job in batch]


def _hpo_options(fixed: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``hpo.*`` keys (the sweep's own options) taken out of the run overrides."""
    hpo, rest = {}, []
    for item in fixed:
        key, _, value = item.partition("=")
        if key.startswith("hpo."):
            hpo[key[4:]] = value
        else:
            rest.append(item)
    unknown = set(hpo) - {"trials", "pruner", "metric"}
    if unknown:
        raise ConfigError(f"unknown sweep option(s) {sorted('hpo.' + k for k in unknown)}; "
                          "valid: hpo.trials=N, hpo.pruner=median|none, hpo.metric=NAME")
    return hpo, rest


def run_sweep(
    overrides: Sequence[str],
    *,
    config_file: str | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run a grid sweep (``-m``) or an Optuna search (``hpo.trials=N``); returns ``best.json``."""
    from visionforge.config.loader import compose_config
    from visionforge.config.settings import default_mode
    from visionforge.workflows.run_dir import check_run_name, fresh_dir

    fixed, sweep = split_sweep(overrides)
    hpo, fixed = _hpo_options(fixed)
    trials = int(hpo.get("trials", 0) or 0)
    base = compose_config(fixed, config_file=config_file).cfg  # fails early on a bad key
    metric = hpo.get("metric") or str(base.trainer.monitor)
    mode = str(base.trainer.mode or default_mode(metric))
    sweep_dir = fresh_dir(Path(base.project_dir) / "sweeps", check_run_name(base.name or "sweep"))
    echo(f"sweep dir: {sweep_dir}")
    runner = _TrialRunner(fixed, config_file, sweep_dir, metric, echo)
    if trials > 0:
        _optuna_search(runner, sweep or _parse(DEFAULT_SPACE), trials, mode,
                       hpo.get("pruner", "median"))
    else:
        if not sweep:
            raise ConfigError("-m/--multirun needs at least one swept key, e.g. "
                              "optimizer.lr=1e-4,1e-3 (or hpo.trials=N for an Optuna search)")
        for job in grid_jobs(sweep):
            runner.run(job)
    from visionforge.workflows.sweep_report import write_sweep_report

    return write_sweep_report(sweep_dir, runner.rows, metric=metric, mode=mode, echo=echo)


class _TrialRunner:
    """Runs one trial (a normal ``train_from_config`` run in ``sweep_dir/NNN``) and keeps its row."""

    def __init__(self, fixed: Sequence[str], config_file: str | None, sweep_dir: Path,
                 metric: str, echo: Callable[[str], None]) -> None:
        self.fixed, self.config_file, self.sweep_dir = list(fixed), config_file, sweep_dir
        self.metric, self.echo = metric, echo
        self.rows: list[dict[str, Any]] = []

    def run(self, params: Sequence[str], callbacks: Sequence[Any] = ()) -> float:
        from visionforge.config.loader import compose_config
        from visionforge.workflows.train import train_from_config

        index = len(self.rows)
        run_dir = self.sweep_dir / f"{index:03d}"
        run_dir.mkdir()
        row: dict[str, Any] = {"trial": index, "params": " ".join(params), "status": "ok",
                               self.metric: math.nan, "run_dir": str(run_dir), "model_dir": ""}
        self.rows.append(row)
        self.echo(f"== trial {index}: {' '.join(params)}")
        cfg = compose_config([*self.fixed, *params], config_file=self.config_file).cfg
        try:
            result = train_from_config(cfg, run_dir=run_dir, callbacks=callbacks,
                                       echo=lambda line: _log.info(line))
        except Exception as exc:  # one failed or pruned trial must not end the sweep
            pruned = type(exc).__name__ == "TrialPruned"
            row["status"] = "pruned" if pruned else f"failed: {str(exc).splitlines()[0][:120]}"
            row["history"] = _history(run_dir)
            row[self.metric] = _last(row["history"], self.metric)
            self.echo(f"   trial {index} {row['status']}")
            if pruned:
                raise
            return math.nan
        row["history"] = result.history
        row[self.metric] = _best(result.history, self.metric)
        row["model_dir"] = str(result.model_dir or "")
        for key in ("accuracy", "mean_iou"):
            if isinstance(result.metrics.get(key), int | float):
                row[f"{result.metrics.get('split', 'test')}_{key}"] = result.metrics[key]
        self.echo(f"   trial {index}: {self.metric} {row[self.metric]:.4g}")
        return row[self.metric]


def _history(run_dir: Path) -> dict[str, Any]:
    from visionforge.io import read_json

    path = run_dir / "history.json"
    try:
        return read_json(path) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def _curve(history: dict[str, Any], metric: str) -> list[float]:
    if metric == "val_loss":
        return list(history.get("val_loss") or [])
    name = metric[4:] if metric.startswith("val_") else metric
    return list((history.get("val_metrics") or {}).get(name) or [])


def _best(history: dict[str, Any], metric: str) -> float:
    best = (history.get("best") or {}).get(f"best_{metric}")
    if isinstance(best, int | float):
        return float(best)
    return _last(history, metric)


def _last(history: dict[str, Any], metric: str) -> float:
    curve = _curve(history, metric)
    return float(curve[-1]) if curve else math.nan


def _optuna_search(runner: _TrialRunner, space: Sequence[Any], trials: int, mode: str,
                   pruner: str) -> None:
    try:
        import optuna
    except ImportError:
        raise ConfigError("hpo.trials needs optuna: pip install 'visionforge[hpo]'") from None
    from visionforge.workflows.sweep_optuna import pruning_callback, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=(optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
                if pruner == "median" else optuna.pruners.NopPruner()),
    )

    def objective(trial: Any) -> float:
        params = [f"{ov.key_or_group}={suggest(trial, ov)}" for ov in space]
        value = runner.run(params, callbacks=[pruning_callback(trial, runner.metric)])
        if math.isnan(value):
            raise optuna.TrialPruned()  # a failed trial counts as pruned, not as a score
        return value

    study.optimize(objective, n_trials=trials, catch=())

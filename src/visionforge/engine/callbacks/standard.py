"""The standard callbacks of a run, registered in :data:`visionforge.registry.CALLBACKS`.

Each factory takes the run's :class:`~visionforge.config.settings.TrainSettings` and
the checkpoint directory and returns a callback, a list of them, or ``None``. The
registry metadata ``enabled_by`` names the setting (the ``callbacks.*`` config flag)
that switches it on; the ``Trainer`` builds the enabled ones in :data:`STANDARD` order.
A user can also name any registered callback in ``Trainer(callbacks=[...])``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionforge.registry import CALLBACKS

__all__ = ["STANDARD", "standard_callbacks", "build_callback"]

#: Order in which the standard callbacks are attached.
STANDARD = ("nonfinite_guard", "console", "lr_monitor", "early_stopping", "checkpoint", "ema",
            "swa", "progressive_resizing")


@CALLBACKS.register("nonfinite_guard", enabled_by=None)
def _nonfinite_guard(settings: Any, ckpt_dir: Path) -> Any:
    from visionforge.engine.callbacks.nan_guard import NonFiniteLossGuard

    # parameters are scanned every log_every_n_steps steps (and before each checkpoint,
    # so step checkpoints get their scan): a scan per step is ~2% of a small model's step
    every = min(int(settings.log_every_n_steps or 1), int(settings.checkpoint_every_n_steps or 10**9))
    return NonFiniteLossGuard(check_every_n_steps=every)


@CALLBACKS.register("console", enabled_by=None)
def _console(settings: Any, ckpt_dir: Path) -> Any:
    """``progress=None``: a progress bar within 80 columns on a terminal, else one line per
    epoch (logs of CI, nohup, SLURM); ``True``: the bar; ``False``: silent (Keras verbose=0)."""
    from visionforge.engine.callbacks.console import (
        CompactProgressBar,
        EpochLine,
        progress_enabled,
    )

    if settings.progress is False:
        return None
    if progress_enabled(settings.progress):
        return CompactProgressBar(settings.monitor)
    return EpochLine(settings.monitor)


@CALLBACKS.register("lr_monitor", enabled_by="lr_monitor")
def _lr_monitor(settings: Any, ckpt_dir: Path) -> Any:
    from lightning.pytorch.callbacks import LearningRateMonitor

    return LearningRateMonitor()


@CALLBACKS.register("early_stopping", enabled_by="early_stopping")
def _early_stopping(settings: Any, ckpt_dir: Path) -> Any:
    from lightning.pytorch.callbacks import EarlyStopping

    if not settings.early_stopping_patience:
        return None
    return EarlyStopping(monitor=settings.monitor, mode=settings.resolved_mode,
                         patience=int(settings.early_stopping_patience), strict=False)


@CALLBACKS.register("checkpoint", enabled_by="checkpoint")
def _checkpoint(settings: Any, ckpt_dir: Path) -> list[Any]:
    from visionforge.engine.callbacks.checkpointing import best_checkpoint, last_checkpoints

    best = best_checkpoint(ckpt_dir, settings.monitor, settings.resolved_mode)
    # best.ckpt is for using the model, last.ckpt for resuming: the optimizer state (2x the
    # weights for Adam) goes into best only when asked
    best.save_weights_only = not settings.save_optimizer_state_in_best
    return [best, *last_checkpoints(ckpt_dir, settings.checkpoint_every_n_steps)]


@CALLBACKS.register("ema", enabled_by="ema")
def _ema(settings: Any, ckpt_dir: Path) -> Any:
    from visionforge.engine.callbacks.ema import ema_callback

    return ema_callback(settings.ema_decay)


@CALLBACKS.register("swa", enabled_by="swa")
def _swa(settings: Any, ckpt_dir: Path) -> Any:
    from visionforge.engine.callbacks.ema import swa_callback

    return swa_callback(settings.swa_lr or settings.lr)


@CALLBACKS.register("progressive_resizing", enabled_by="progressive_resizing")
def _progressive_resizing(settings: Any, ckpt_dir: Path) -> Any:
    from visionforge.engine.callbacks.resizing import ProgressiveResizing

    return ProgressiveResizing(settings.progressive_resizing)


def build_callback(name: str, settings: Any, ckpt_dir: Path) -> list[Any]:
    """The callback(s) registered as ``name``, as a list (empty when it declines)."""
    made = CALLBACKS.get(name)(settings, ckpt_dir)
    if made is None:
        return []
    return list(made) if isinstance(made, list | tuple) else [made]


def standard_callbacks(settings: Any, ckpt_dir: Path, *, has_val: bool) -> list[Any]:
    """The enabled standard callbacks. Without validation data, ``val_*`` monitors are
    unavailable, so early stopping and the best checkpoint are left out."""
    monitor_ok = has_val or not settings.monitor.startswith("val_")
    out: list[Any] = []
    for name in STANDARD:
        flag = CALLBACKS.entry(name).metadata.get("enabled_by")
        if flag is not None and not getattr(settings, flag):
            continue
        if name == "early_stopping" and not monitor_ok:
            continue
        made = build_callback(name, settings, ckpt_dir)
        if name == "checkpoint" and not monitor_ok:
            made = [cb for cb in made if cb.monitor is None]
        out.extend(made)
    return out

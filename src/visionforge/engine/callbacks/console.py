"""What a run prints while it trains: a compact progress bar on a terminal, else one line
per epoch (CI logs, ``nohup``, SLURM), so a log file shows how training went."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

__all__ = ["EpochLine", "CompactProgressBar", "progress_enabled"]

#: the widest a progress line may be (a standard terminal)
WIDTH = 80


def progress_enabled(progress: bool | None) -> bool:
    """``progress``, or (``None``) whether stdout is a terminal: Lightning's bar and the
    epoch lines both go to stdout, so ``visionforge train > log`` gets lines, not a bar."""
    if progress is not None:
        return bool(progress)
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def _fmt(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "nan" if math.isnan(number) else f"{number:.4g}"


class EpochLine(Callback):
    """Prints ``epoch 3/10  train_loss 0.41  val_loss 0.38  val_accuracy 0.91*  2.3s`` once
    per epoch (``*`` marks the monitored metric, which decides best.ckpt and early stopping)."""

    def __init__(self, monitor: str = "val_loss", echo: Any = None) -> None:
        self.monitor = monitor
        self.echo = echo or (lambda line: print(line, flush=True))
        self._start = time.perf_counter()
        self._val: dict[str, Any] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        self._val = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._val = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val_")}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        mean_fn = getattr(pl_module, "epoch_train_loss", None)
        loss = mean_fn() if callable(mean_fn) else trainer.callback_metrics.get("train_loss")
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        if loss is not None:
            parts.append(f"train_loss {_fmt(loss)}")
        keys = ["val_loss", self.monitor] + sorted(self._val)
        for key in dict.fromkeys(keys):
            if key in self._val:
                parts.append(f"{key} {_fmt(self._val[key])}" + ("*" if key == self.monitor else ""))
        parts.append(f"{time.perf_counter() - self._start:.1f}s")
        self.echo("  ".join(parts))


class CompactProgressBar(TQDMProgressBar):
    """Lightning's progress bar kept within :data:`WIDTH` columns: the step loss and the
    monitored metric only (no ``v_num``), numbers to 4 significant digits."""

    def __init__(self, monitor: str = "val_loss") -> None:
        super().__init__()
        self.monitor = monitor

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        keep = {}
        loss = metrics.get("train_loss_step", metrics.get("train_loss"))
        if loss is not None:
            keep["loss"] = _fmt(loss)
        if self.monitor in metrics and self.monitor != "train_loss":
            keep[self.monitor] = _fmt(metrics[self.monitor])
        return keep

    def _narrow(self, bar: Any) -> Any:
        bar.dynamic_ncols = False
        bar.ncols = WIDTH
        return bar

    def init_train_tqdm(self) -> Any:
        return self._narrow(super().init_train_tqdm())

    def init_validation_tqdm(self) -> Any:
        return self._narrow(super().init_validation_tqdm())

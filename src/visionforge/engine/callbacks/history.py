"""``HistoryRecorder``: the Keras-style history dict of a fit, kept across resumes."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

__all__ = ["HistoryRecorder"]


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class HistoryRecorder(Callback):
    """Records per-epoch ``train_loss`` and ``lr``, per-iteration ``train_loss_step`` and
    per-validation ``val_loss``/metrics.

    ``history`` is ``{"train_loss": [...], "train_loss_step": [...], "val_loss": [...],
    "val_metrics": {name: [...]}, "lr": [...], "val_step": [...], "val_epoch": [...]}``. Its state is saved in
    checkpoints so a resumed run returns the history of the whole run.
    """

    def __init__(self) -> None:
        self.history: dict[str, Any] = {
            "train_loss": [],
            "train_loss_step": [],
            "val_loss": [],
            "val_metrics": {},
            "lr": [],
            "val_step": [],
            "val_epoch": [],
        }

    @property
    def state_key(self) -> str:
        return "HistoryRecorder"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Read from the module (not callback_metrics): callbacks run before the module's
        # on_train_epoch_end, which is where the epoch mean gets logged.
        mean_fn = getattr(pl_module, "epoch_train_loss", None)
        value = mean_fn() if callable(mean_fn) else trainer.callback_metrics.get("train_loss")
        if value is not None:
            self.history["train_loss"].append(_num(value))
        if trainer.optimizers:
            self.history["lr"].append(float(trainer.optimizers[0].param_groups[0]["lr"]))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is not None:
            self.history.setdefault("train_loss_step", []).append(_num(loss.detach()))

    def record_validation(self, metrics: dict[str, Any], *, step: int, epoch: int) -> None:
        """Append one validation result (``val_``-prefixed keys) to the history."""
        if "val_loss" not in metrics:
            return
        self.history["val_loss"].append(_num(metrics["val_loss"]))
        self.history["val_step"].append(int(step))
        self.history["val_epoch"].append(int(epoch))
        for key, value in metrics.items():
            if key.startswith("val_") and key != "val_loss":
                self.history["val_metrics"].setdefault(key[4:], []).append(_num(value))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self.record_validation(
            dict(trainer.callback_metrics), step=trainer.global_step, epoch=trainer.current_epoch
        )

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = state_dict.get("history", self.history)

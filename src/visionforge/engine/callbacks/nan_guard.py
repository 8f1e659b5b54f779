"""``NonFiniteLossGuard``: stop at the first NaN/Inf loss, before it reaches the weights."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from visionforge.errors import VisionforgeError

__all__ = ["NonFiniteLossGuard", "NonFiniteLossError"]


class NonFiniteLossError(VisionforgeError, RuntimeError):
    """The training loss became NaN or Inf."""


class NonFiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` naming the step when the loss is not finite.

    Checked before ``backward``, so the offending step never updates the weights
    and no checkpoint of it is written; the last good checkpoint stays as it was.
    """

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if bool(torch.isfinite(loss.detach()).all()):
            return
        batch_idx = trainer.fit_loop.epoch_loop.batch_idx
        raise NonFiniteLossError(
            f"training loss is {float(loss.detach())} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {batch_idx}); training stopped. The last "
            "good checkpoint is intact. Lower the learning rate, enable gradient clipping "
            "(gradient_clip_value=1.0) or check the data for NaN/Inf values."
        )

"""``NonFiniteLossGuard``: stop at the first NaN/Inf loss or model state, before it is saved."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from visionforge.errors import VisionforgeError

__all__ = ["NonFiniteLossGuard", "NonFiniteLossError", "non_finite_tensors"]

_ADVICE = (
    "Lower the learning rate, enable gradient clipping (gradient_clip_value=1.0) or check "
    "the data for NaN/Inf values."
)


class NonFiniteLossError(VisionforgeError, RuntimeError):
    """The training loss, or the model's parameters or buffers, became NaN or Inf."""


def non_finite_tensors(
    tensors: Mapping[str, Any] | Iterable[tuple[str, Any]], skip: frozenset[str] = frozenset()
) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` that hold a NaN or Inf."""
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    named = [
        (k, v) for k, v in items
        if isinstance(v, torch.Tensor) and v.is_floating_point() and k not in skip and v.numel()
    ]
    if not named:
        return []
    # One device sync for the whole model instead of one per tensor.
    flags = torch.stack([torch.isfinite(v.detach()).all().to("cpu", non_blocking=True)
                         for _, v in named])
    return [k for (k, _), ok in zip(named, flags.tolist(), strict=True) if not ok]


def _state_items(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [*module.named_parameters(), *module.named_buffers()]


def _describe(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{len(names)} tensor(s) of the model hold NaN/Inf ({shown})"


class NonFiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` naming the step when training stops being finite.

    On the CPU the loss is checked before ``backward``, so a non-finite loss never updates
    the weights. On an accelerator that check would stall the device queue every step (a
    host sync), so there the flag is accumulated on the device and read every
    ``check_every_n_steps`` steps and before every checkpoint: the error still names the
    first bad step. Parameters and buffers (BatchNorm statistics are updated in the forward
    pass) are checked every ``check_every_n_steps`` steps and again before every checkpoint
    is written, so a checkpoint is only ever written from a finite state. Tensors that were
    already non-finite when training started (e.g. ``-inf`` attention masks) are left alone.
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        self._expected: frozenset[str] = frozenset()
        self.every = max(int(check_every_n_steps), 1)
        self._first_bad: torch.Tensor | None = None  # accelerators: first non-finite step, or -1
        self._bad_where: dict[int, str] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._expected = frozenset(non_finite_tensors(_state_items(pl_module)))
        self._first_bad, self._bad_where = None, {}

    def _where(self, trainer: pl.Trainer) -> str:
        batch_idx = trainer.fit_loop.epoch_loop.batch_idx
        return f"at step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch_idx})"

    def _raise_loss(self, value: str, where: str) -> None:
        raise NonFiniteLossError(
            f"training loss is {value} {where}; training stopped. Checkpoints are written only "
            f"from a finite state, so the last one is good. {_ADVICE}"
        )

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        finite = torch.isfinite(loss.detach()).all()
        if loss.device.type == "cpu":  # reading a CPU tensor costs nothing: check now
            if not bool(finite):
                self._raise_loss(str(float(loss.detach())), self._where(trainer))
            return
        step = trainer.global_step
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        self._first_bad = torch.where(~finite & (self._first_bad < 0), step, self._first_bad)
        if len(self._bad_where) < 10_000:  # where each step ran, for the message
            self._bad_where[step] = self._where(trainer)

    def _check_deferred_loss(self) -> None:
        if self._first_bad is None:
            return
        step = int(self._first_bad)  # the one host sync, every check_every_n_steps steps
        if step >= 0:
            self._raise_loss("NaN/Inf", self._bad_where.get(step, f"at step {step}"))
        self._bad_where.clear()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:
        if trainer.global_step % self.every:
            return
        self._check_deferred_loss()
        bad = non_finite_tensors(_state_items(pl_module), self._expected)
        if bad:
            raise NonFiniteLossError(
                f"{_describe(bad)} after the optimizer step {self._where(trainer)}; training "
                f"stopped and no checkpoint of this state was written. {_ADVICE}"
            )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_deferred_loss()

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._check_deferred_loss()
        state = checkpoint.get("state_dict") or {}
        bad = non_finite_tensors(state, self._expected)
        if bad:
            raise NonFiniteLossError(
                f"refusing to write a checkpoint {self._where(trainer)}: {_describe(bad)}; "
                f"training stopped and the last checkpoint written is kept. {_ADVICE}"
            )

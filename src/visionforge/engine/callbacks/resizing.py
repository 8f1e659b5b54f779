"""``ProgressiveResizing``: train on small images first, then larger ones (fast.ai's recipe).

At the start of each epoch the schedule's size for that epoch is set on the training data:
the resizing steps of the datamodule's (or loader's) training transform are changed in
place (:func:`visionforge.data.resizing.set_image_size`), so samples are decoded and
augmented at the smaller size. Loader workers that hold an older copy of the dataset
(``persistent_workers``) or data without a resizing step still deliver the scheduled size:
any training batch of another size is resized on the device before the step (images
bilinear, masks nearest). Validation keeps its own size. The model must accept several
input sizes (CNNs with global pooling do; most ViTs need a fixed size). Lightning and timm
have no such callback, hence this one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback

from visionforge.data.resizing import as_size, set_image_size
from visionforge.errors import ConfigError

__all__ = ["ProgressiveResizing", "parse_schedule"]

_log = logging.getLogger(__name__)


def _entry(epoch: Any, size: Any) -> tuple[int, list[int]]:
    try:
        e = int(epoch)
    except (TypeError, ValueError):
        raise ConfigError(f"progressive_resizing: epoch {epoch!r} is not an integer") from None
    if e < 0:
        raise ConfigError(f"progressive_resizing: epoch {e} is negative")
    if isinstance(size, str):
        size = [int(s) for s in size.lower().split("x")] if "x" in size.lower() else int(size)
    return e, as_size(list(size) if isinstance(size, Sequence) else size)


def parse_schedule(schedule: Any) -> dict[int, list[int]]:
    """``{epoch: [h, w]}`` from ``{0: 32, 3: 64}``, ``[[0, 32], [3, 64]]`` or ``"0:32,3:64"``
    (sizes may be ``HxW``). Epochs count from 0; the first entry must be epoch 0."""
    if isinstance(schedule, str):
        try:
            pairs = [part.split(":") for part in schedule.replace(" ", "").split(",") if part]
            items = [(e, s) for e, s in pairs]
        except ValueError:
            raise ConfigError(f"progressive_resizing={schedule!r}: write EPOCH:SIZE pairs, "
                              "e.g. '0:32,3:48,6:64'") from None
    elif isinstance(schedule, Mapping):
        if schedule and all(v is None and ":" in str(k) for k, v in schedule.items()):
            return parse_schedule(",".join(map(str, schedule)))  # `{0:32}` read as {"0:32": None}
        items = list(schedule.items())
    elif isinstance(schedule, Sequence):
        items = [tuple(p) for p in schedule]
        if any(len(p) != 2 for p in items):
            raise ConfigError("progressive_resizing: give [epoch, size] pairs")
    else:
        raise ConfigError(f"progressive_resizing={schedule!r}: give {{epoch: size}}, e.g. "
                          "{0: 32, 3: 64}")
    out = dict(sorted(_entry(e, s) for e, s in items))
    if not out or 0 not in out:
        raise ConfigError(f"progressive_resizing={schedule!r}: the schedule must start at epoch 0")
    return out


class ProgressiveResizing(Callback):
    """Set the training image size per epoch from ``schedule`` (see :func:`parse_schedule`).

    ``datamodule``: the data to resize (default: the trainer's training loader's dataset).
    ``sizes`` records ``(epoch, [h, w])`` of every epoch trained, for reports and tests.
    """

    def __init__(self, schedule: Any, datamodule: Any = None) -> None:
        self.schedule = parse_schedule(schedule)
        self.datamodule = datamodule
        self.size: list[int] | None = None
        self.sizes: list[tuple[int, list[int]]] = []

    def size_for(self, epoch: int) -> list[int]:
        """The scheduled ``[h, w]`` of ``epoch`` (the last entry at or before it)."""
        return next(s for e, s in reversed(self.schedule.items()) if e <= epoch)

    def _apply(self, trainer: pl.Trainer) -> None:
        size = self.size_for(trainer.current_epoch)
        if size == self.size:
            return
        self.size = size
        target = self.datamodule if self.datamodule is not None else trainer.train_dataloader
        changed = set_image_size(target, size) if target is not None else 0
        _log.info("progressive resizing: epoch %d trains at %dx%d (%d transform step(s) set)",
                  trainer.current_epoch, size[0], size[1], changed)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A run resumed in the middle of an epoch skips that epoch's start hook.
        self._apply(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._apply(trainer)
        self.sizes.append((int(trainer.current_epoch), list(self.size or [])))

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if self.size is None:
            return
        resize_batch(batch, self.size)


def resize_batch(batch: Any, size: list[int]) -> None:
    """Resize a dict or list batch's images (bilinear) and masks (nearest) to ``size``, in place."""
    if isinstance(batch, dict):
        key = next((k for k in ("image", "x", "input", "inputs") if k in batch), None)
        container, img_key, mask_key = batch, key, "mask" if "mask" in batch else None
    elif isinstance(batch, list) and batch:
        container, img_key = batch, 0
        mask_key = 1 if len(batch) > 1 and _is_mask(batch[1], batch[0]) else None
    else:
        return
    x = container[img_key] if img_key is not None else None
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or list(x.shape[-2:]) == size:
        return
    if mask_key is not None and isinstance(container[mask_key], torch.Tensor):
        m = container[mask_key]
        container[mask_key] = F.interpolate(m[:, None].float(), size=size, mode="nearest")[
            :, 0].to(m.dtype)
    container[img_key] = F.interpolate(x.float(), size=size, mode="bilinear",
                                       align_corners=False, antialias=True).to(x.dtype)


def _is_mask(y: Any, x: Any) -> bool:
    return (isinstance(y, torch.Tensor) and isinstance(x, torch.Tensor) and y.ndim == 3
            and x.ndim == 4 and tuple(y.shape[-2:]) == tuple(x.shape[-2:]))

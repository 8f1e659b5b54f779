"""``TaskModule``: the one LightningModule that says what a training step is.

It wraps any plain ``nn.Module`` and handles the four task families of the
library (classification, segmentation, multitask, signal). The loop itself --
devices, precision, accumulation, clipping, DDP, checkpoint bookkeeping -- is
Lightning's.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from visionforge.engine.data import unpack_batch
from visionforge.errors import ConfigError

__all__ = ["TaskModule", "TASKS", "build_metrics"]

_log = logging.getLogger(__name__)

TASKS = ("classification", "segmentation", "multitask", "signal", "detection")


def build_metrics(task: str, num_classes: int, seg_classes: int | None = None) -> nn.ModuleDict:
    """torchmetrics objects for ``task``: accuracy + macro F1, or mean IoU + Dice."""
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassF1Score,
        MulticlassJaccardIndex,
    )

    def cls(n: int) -> dict[str, nn.Module]:
        return {
            "accuracy": MulticlassAccuracy(num_classes=n, average="micro"),
            "f1_macro": MulticlassF1Score(num_classes=n, average="macro"),
        }

    def seg(n: int) -> dict[str, nn.Module]:
        # Dice per class equals the F1 score of its pixels; both macro-averaged over classes.
        return {
            "mean_iou": MulticlassJaccardIndex(num_classes=n, average="macro"),
            "dice": MulticlassF1Score(num_classes=n, average="macro"),
            "pixel_accuracy": MulticlassAccuracy(num_classes=n, average="micro"),
        }

    if task in ("classification", "signal"):
        return nn.ModuleDict(cls(num_classes))
    if task == "detection":
        from visionforge.engine.detection import build_map_metric

        return nn.ModuleDict({"map": build_map_metric()})
    if task == "segmentation":
        return nn.ModuleDict(seg(num_classes))
    if task == "multitask":
        out = {f"cls_{k}": v for k, v in cls(num_classes).items()}
        out.update({f"seg_{k}": v for k, v in seg(seg_classes or num_classes).items()})
        return nn.ModuleDict(out)
    raise ConfigError(f"unknown task {task!r}; expected one of {TASKS}")


class TaskModule(pl.LightningModule):
    """Training/validation/prediction steps for ``model`` on ``task``.

    Args:
        model: any ``nn.Module``; classification/signal models return ``[B, C]`` logits,
            segmentation ``[B, S, H, W]``, multitask a dict with both.
        task: one of :data:`TASKS`.
        criterion: loss name, module or callable (``None`` = the task's default, see
            :func:`visionforge.engine.losses.build_loss`).
        optimizer: name (``adam``, ``adamw``, ``sgd``) or an optimizer instance.
        lr_multipliers: parameter-name prefix -> LR factor (e.g. ``{"backbone": 0.1}``).
        lr_multiplier: factor on ``lr`` for the whole model; ``None`` = the one the model's
            registration declares (its family's), a number overrides it (``1.0`` disables it).
        scheduler: name (``plateau``, ``onecycle``, ``warmup_cosine``, ``three_phase``) or ``None``.
        num_classes / seg_classes: output sizes used for metrics.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        task: str,
        criterion: Any = None,
        optimizer: Any = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        lr_multipliers: Any = None,
        lr_multiplier: float | None = None,
        scheduler: Any = None,
        scheduler_kwargs: Mapping[str, Any] | None = None,
        monitor: str = "val_loss",
        num_classes: int | None = None,
        seg_classes: int | None = None,
        class_weights: Any = None,
        label_smoothing: float = 0.0,
        metrics: bool = True,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        from visionforge.engine.losses import build_loss

        self.model = model
        self.task = task
        if task == "detection":
            if criterion is not None:
                raise ConfigError(
                    f"criterion={criterion!r}: a detector computes its own losses (torchvision's "
                    "focal/GIoU/centerness or RPN + RoI losses); leave loss.name unset"
                )
            self.criterion = None
        else:
            self.criterion = build_loss(
                criterion, task, class_weights=class_weights, label_smoothing=label_smoothing
            )
        self.optimizer_spec = optimizer
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.momentum = float(momentum)
        self.lr_multipliers = lr_multipliers
        self.lr_multiplier = None if lr_multiplier is None else float(lr_multiplier)
        self.effective_lrs: list[tuple[str, float]] = []
        self.scheduler_spec = scheduler
        self.scheduler_kwargs = dict(scheduler_kwargs or {})
        self.monitor = monitor
        self.num_classes = num_classes
        self.metrics = (
            build_metrics(task, num_classes, seg_classes) if metrics and num_classes else None
        )
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._bar_shows_loss = True
        #: inputs are made channels_last before the forward pass (``channels_last=True/auto``)
        self.channels_last = False

    # -- steps --------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)

    def _loss(self, out: Any, b: dict[str, Any]) -> torch.Tensor:
        if self.task == "multitask":
            return self.criterion(out, b)
        key = "mask" if self.task == "segmentation" else "label"
        if key not in b:
            raise ConfigError(
                f"task {self.task!r} needs a {key!r} target in every batch; got keys "
                f"{sorted(k for k in b if k != 'rest')}"
            )
        from visionforge.engine.aux_loss import aux_weighted_loss

        return aux_weighted_loss(self.criterion, out, b[key])  # + 0.4 x an Inception aux head

    def _inputs(self, b: dict[str, Any]) -> Any:
        x = b["image"]
        if self.channels_last and isinstance(x, torch.Tensor) and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def _detection_loss(self, b: dict[str, Any], validation: bool) -> torch.Tensor:
        from visionforge.engine.detection import detection_losses, validation_losses

        fn = validation_losses if validation else detection_losses
        losses = fn(self.model, b["image"], b.get("targets"))
        return torch.stack([v.float() for v in losses.values()]).sum()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        b = unpack_batch(batch)
        if self.task == "detection":  # the detector computes its own losses
            loss = self._detection_loss(b, validation=False)
        else:
            loss = self._loss(self.model(self._inputs(b)), b)
        # The epoch mean is accumulated here (and saved in checkpoints) rather than by
        # self.log(on_epoch=True), so an epoch interrupted and resumed still reports the
        # mean over all of its batches.
        detached = loss.detach()
        self._loss_sum = detached if self._loss_sum is None else self._loss_sum + detached
        self._loss_count += 1
        # Lightning's self.log costs ~1 ms a step (its result collection), the whole Trainer
        # overhead on small models, so it runs only when something reads it: the progress bar,
        # or the loggers on their every-log_every_n_steps step (the history callback keeps
        # every iteration's loss, as CODAvision's trainer records it).
        trainer = self._trainer
        to_logger = (trainer is not None and bool(trainer.loggers)
                     and trainer._logger_connector.should_update_logs)
        if self._bar_shows_loss or to_logger:
            self.log("train_loss_step", detached, on_step=True, on_epoch=False,
                     prog_bar=self._bar_shows_loss, logger=to_logger)
        return loss

    def on_train_start(self) -> None:
        self._bar_shows_loss = self.trainer.progress_bar_callback is not None

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_count = None, 0

    def epoch_train_loss(self) -> float | None:
        """Mean training loss of the current epoch (averaged over ranks under DDP)."""
        if self._loss_sum is None or not self._loss_count:
            return None
        mean = (self._loss_sum / self._loss_count).float()
        if self.trainer.world_size > 1:
            mean = self.trainer.strategy.reduce(mean, reduce_op="mean")
        return float(mean)

    def on_train_epoch_end(self) -> None:
        value = self.epoch_train_loss()
        if value is not None:
            self.log("train_loss", value, on_step=False, on_epoch=True, prog_bar=True)

    def _update_metrics(self, out: Any, b: dict[str, Any]) -> None:
        if self.metrics is None or self.task == "detection":
            return
        if self.task == "multitask":
            pairs = [
                ("cls_", out.get("classification"), b.get("label")),
                ("seg_", out.get("segmentation"), b.get("mask")),
            ]
        else:
            key = "mask" if self.task == "segmentation" else "label"
            pairs = [("", out, b.get(key))]
        for prefix, logits, target in pairs:
            if logits is None or target is None:
                continue
            preds = logits.detach().argmax(1).reshape(-1)
            target = target.reshape(-1)
            for name, metric in self.metrics.items():
                if name.startswith(prefix):
                    metric.update(preds, target)

    def _detection_validation(self, b: dict[str, Any]) -> torch.Tensor:
        from visionforge.engine.detection import as_image_list

        loss = self._detection_loss(b, validation=True)
        if self.metrics is not None:
            preds = self.model(as_image_list(b["image"]))
            keys = ("boxes", "labels", "iscrowd")
            target = [{k: t[k] for k in keys if k in t} for t in b["targets"]]
            self.metrics["map"].update(preds, target)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        b = unpack_batch(batch)
        if self.task == "detection":
            loss, out = self._detection_validation(b), None
        else:
            out = self.model(self._inputs(b))
            loss = self._loss(out, b)
        self.log(
            "val_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(b["image"]),
            sync_dist=True,
        )
        self._update_metrics(out, b)
        return loss

    def on_validation_epoch_end(self) -> None:
        if self.metrics is None:
            return
        for name, metric in self.metrics.items():
            if metric.update_count and self.task == "detection":
                from visionforge.engine.detection import map_scalars

                for key, value in map_scalars(metric.compute()).items():
                    self.log(f"val_{key}", value, prog_bar=key == "map_50")
            elif metric.update_count:
                self.log(f"val_{name}", metric.compute(), prog_bar=name in ("accuracy", "mean_iou"))
            metric.reset()

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        b = unpack_batch(batch)
        if self.task == "detection":  # one {"boxes", "scores", "labels"} dict per image
            return [{k: v.detach().cpu() for k, v in d.items()} for d in self.model(b["image"])]
        out = self.model(self._inputs(b))
        if isinstance(out, Mapping):
            return {k: v.detach().float().cpu() for k, v in out.items()}
        return out.detach().float().cpu()

    # -- optimisation -----------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        from visionforge.engine.optim import build_optimizer, effective_lrs

        optimizer = build_optimizer(
            self.optimizer_spec,
            self.model,
            lr=self.lr,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            lr_multipliers=self.lr_multipliers,
            lr_multiplier=self.lr_multiplier,
        )
        # before the scheduler exists: OneCycleLR rewrites the group LRs to its start value
        self.effective_lrs = effective_lrs(optimizer)
        for group, group_lr in self.effective_lrs:
            _log.info("parameter group %s: effective learning rate %.4g", group, group_lr)
        if self.scheduler_spec in (None, "none", "None"):
            return optimizer
        from visionforge.engine.schedulers import build_scheduler

        trainer = self.trainer
        total = max(int(trainer.estimated_stepping_batches), 1)
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 1
        steps_per_epoch = max(total // epochs, 1)
        scheduler, interval, sched_monitor = build_scheduler(
            self.scheduler_spec,
            optimizer,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            **self.scheduler_kwargs,
        )
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": interval,
                "monitor": sched_monitor or self.monitor,
                "strict": False,
            },
        }

    # -- exact resume: RNG state travels in the checkpoint as plain tensors/lists ----------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        import numpy as np

        np_state = np.random.get_state()
        checkpoint["visionforge_rng"] = {
            "torch": torch.get_rng_state(),
            "python": _to_plain(random.getstate()),
            "numpy": [
                np_state[0],
                torch.from_numpy(np_state[1].astype(np.int64)),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            ],
            "task": self.task,
        }
        checkpoint["visionforge_epoch_loss"] = [
            None if self._loss_sum is None else self._loss_sum.detach().float().cpu(),
            int(self._loss_count),
        ]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        import numpy as np

        loss_state = checkpoint.get("visionforge_epoch_loss")
        if loss_state:
            total, count = loss_state
            self._loss_sum = None if total is None else total.to(self.device)
            self._loss_count = int(count)
        state = checkpoint.get("visionforge_rng")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        random.setstate(_to_tuple(state["python"]))
        n = state["numpy"]
        np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, tuple | list):
        return [_to_plain(o) for o in obj]
    return obj


def _to_tuple(obj: Any) -> Any:
    if isinstance(obj, list):
        return tuple(_to_tuple(o) for o in obj)
    return obj

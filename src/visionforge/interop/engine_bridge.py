"""Runs ``KerasAdapter.fit`` on :class:`visionforge.engine.Trainer` (Lightning underneath).

The engine owns the loop (device placement, AMP, accumulation, progress); this
module only translates: NHWC arrays become a ``DataLoader`` of NCHW tensors, the
Keras loss becomes the engine's criterion (:class:`KerasCriterion`, which also
accumulates Keras' logs), and :class:`KerasCallbackBridge` -- one Lightning
callback -- drives the Keras callbacks from Lightning's hooks and turns
``model.stop_training`` into ``trainer.should_stop``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from visionforge.interop.criterion import KerasCriterion
from visionforge.interop.keras_callbacks import Callback, CallbackList, History, TerminateOnNaN
from visionforge.interop.layout import as_float_tensor, as_target_tensor, to_channels_first

__all__ = ["ArrayDataset", "FitModel", "FitResult", "KerasCallbackBridge", "run_fit"]


class FitModel(Protocol):
    """What the bridge needs of the Keras-style model it trains (the adapter satisfies it).

    Declared here so this module never imports the adapter (which imports this module).
    """

    module: torch.nn.Module
    data_format: str
    stop_training: bool

    @property
    def optimizer(self) -> torch.optim.Optimizer | None: ...


@dataclass
class FitResult:
    """What :func:`run_fit` hands back: Keras' ``History`` and the engine ``Trainer`` used."""

    history: History
    trainer: Any = None


class ArrayDataset(Dataset):
    """In-memory ``(x, y)`` arrays as engine batches ``{"image": x_i, target_key: y_i}``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, target_key: str = "label") -> None:
        self.x, self.y, self.key = x, y, target_key

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], self.key: self.y[i]}


def _as_tensor_x(x: Any, channels_last: bool) -> torch.Tensor:
    t = as_float_tensor(x)
    # One copy into channels-first memory so per-sample indexing is contiguous.
    return (to_channels_first(t) if channels_last else t).contiguous()


def _loader(x: Any, y: Any, key: str, channels_last: bool, **kwargs: Any) -> DataLoader:
    data = ArrayDataset(_as_tensor_x(x, channels_last), as_target_tensor(y, long_ints=True), key)
    return DataLoader(data, **kwargs)


class KerasCallbackBridge(pl.Callback):
    """Calls Keras callbacks from Lightning hooks with Keras' epoch/batch logs."""

    def __init__(
        self,
        adapter: FitModel,
        criterion: KerasCriterion,
        callbacks: CallbackList,
        *,
        initial_epoch: int = 0,
    ) -> None:
        self.adapter = adapter
        self.criterion = criterion
        self.callbacks = callbacks
        self.initial_epoch = initial_epoch
        self._val_logs: dict[str, float] = {}
        self.last_logs: dict[str, float] = {}
        self.epochs_run = 0

    def _epoch(self, trainer: pl.Trainer) -> int:
        return self.initial_epoch + trainer.current_epoch

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # The Keras metrics are computed by the criterion (they understand one-hot and
        # channels-last targets); the engine's own torchmetrics would expect class indices.
        pl_module.metrics = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.callbacks.call("on_train_begin", {})

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.criterion.mode = "train"
        self.criterion.reset("train")
        self._val_logs = {}
        self.callbacks.call("on_epoch_begin", self._epoch(trainer), {})

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.callbacks.call("on_train_batch_begin", batch_idx, {})

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.callbacks.call("on_train_batch_end", batch_idx, self.criterion.logs("train"))
        if self.adapter.stop_training:
            trainer.should_stop = True

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.criterion.mode = "val"
        self.criterion.reset("val")

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.criterion.mode = "train"
        if not trainer.sanity_checking:
            self._val_logs = self.criterion.logs("val")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        logs = {**self.criterion.logs("train"), **self._val_logs}
        self.callbacks.call("on_epoch_end", self._epoch(trainer), logs)
        self.last_logs = logs
        self.epochs_run += 1
        if self.adapter.stop_training:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.callbacks.call("on_train_end", dict(self.last_logs))


def _progress(verbose: Any) -> bool | None:
    if verbose == "auto":
        return None
    return bool(verbose)


def run_fit(
    adapter: FitModel,
    criterion: KerasCriterion,
    x: Any,
    y: Any,
    x_val: Any,
    y_val: Any,
    *,
    batch_size: int,
    epochs: int,
    initial_epoch: int,
    shuffle: bool,
    callbacks: Sequence[Callback],
    verbose: Any,
    validation_freq: int,
    engine_kwargs: dict[str, Any],
) -> FitResult:
    """Train ``adapter.module`` with the engine; return Keras' ``History`` and the trainer.

    The adapter is only read (its module, optimizer, data format and ``stop_training``
    flag, which Keras callbacks set); storing the result on it is the caller's job.
    """
    channels_last = adapter.data_format == "channels_last"
    task = _task_of(adapter.module)
    key = "mask" if task == "segmentation" else "label"
    train_loader = _loader(x, y, key, channels_last, batch_size=batch_size, shuffle=shuffle)
    val_loader = None
    if x_val is not None and len(x_val):
        val_loader = _loader(x_val, y_val, key, channels_last, batch_size=batch_size)
    history = History()
    cb_list = CallbackList(
        [*callbacks, history],
        adapter,
        {"epochs": epochs, "steps": math.ceil(len(x) / batch_size), "verbose": verbose},
    )
    n_epochs = max(epochs - initial_epoch, 0)
    if n_epochs == 0:
        return FitResult(history)
    bridge = KerasCallbackBridge(adapter, criterion, cb_list, initial_epoch=initial_epoch)
    settings: dict[str, Any] = {
        "criterion": criterion,
        "optimizer": adapter.optimizer,
        "max_epochs": n_epochs,
        "validation_freq": validation_freq,
        "early_stopping_patience": None,  # Keras stops only through its callbacks
        "restore_best": False,  # Keras keeps the last weights unless a callback restores
        # Keras semantics: the optimizer's LR as given and constant unless a callback changes
        # it, no seeding behind the user's back, no engine checkpoints (ModelCheckpoint is
        # the user's callback).
        "scheduler": "none",
        "lr_multiplier": 1.0,
        "seed": None,
        "checkpoint": False,
        "loggers": ["csv"],
        "task": task,
        "progress": _progress(verbose),
        "save_model": False,
    }
    trainer = _train(
        adapter,
        criterion,
        settings,
        engine_kwargs,
        bridge,
        cb_list,
        train_loader,
        val_loader,
        callbacks,
    )
    return FitResult(history, trainer)


def _train(
    adapter: FitModel,
    criterion: KerasCriterion,
    settings: dict[str, Any],
    engine_kwargs: dict[str, Any],
    bridge: KerasCallbackBridge,
    cb_list: CallbackList,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    callbacks: Sequence[Callback],
) -> Any:
    """Build the engine ``Trainer`` (user ``engine_kwargs`` win) and run it."""
    from visionforge.engine import Trainer
    from visionforge.engine.callbacks.nan_guard import NonFiniteLossError

    engine_kwargs = dict(engine_kwargs)
    tmp = None
    output_dir = engine_kwargs.pop("output_dir", None)
    if output_dir is None:
        # Keras' fit writes nothing; the engine's run files go to a directory removed afterwards.
        tmp = tempfile.TemporaryDirectory(prefix="vf_keras_fit_")
        output_dir = tmp.name
    settings = {**settings, "output_dir": output_dir, **engine_kwargs}
    settings["callbacks"] = [*list(settings.get("callbacks", ())), bridge]
    trainer = Trainer(adapter.module, **settings)
    try:
        trainer.train(train_loader, val_loader)
    except NonFiniteLossError:
        if not any(isinstance(cb, TerminateOnNaN) for cb in callbacks):
            raise
        # The engine refuses the non-finite step before backward; report it as Keras does.
        logs = {**criterion.logs("train"), "loss": float("nan")}
        cb_list.call("on_train_batch_end", 0, logs)
        cb_list.call("on_train_end", logs)
    finally:
        criterion.mode = "train"
        adapter.module.eval()
        if tmp is not None:
            tmp.cleanup()
    return trainer


_BRIDGE_TASKS = ("classification", "segmentation", "signal")


def _task_of(module: torch.nn.Module) -> str:
    """The engine task for the module (its registration's, else classification)."""
    from visionforge.models.spec import model_task

    task = model_task(module)
    return task if task in _BRIDGE_TASKS else "classification"

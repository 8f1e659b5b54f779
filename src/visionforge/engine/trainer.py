"""``Trainer``: the facade that turns a model plus data into a trained, saved model.

It infers the task from the model and the first batch, wraps the model in
:class:`~visionforge.engine.module.TaskModule`, wires Lightning's Trainer
(precision, devices, callbacks, loggers, atomic checkpoint IO) and writes the run
directory: ``checkpoints/{last,best}.ckpt``, ``logs/``, ``history.json`` and
``model/`` (the self-describing model dir).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionforge.config.settings import TrainSettings, default_mode
from visionforge.engine.checkpoint import checkpoint_paths, model_state_from_checkpoint
from visionforge.engine.data import ResumableDataLoader, infer_task, make_resumable, unpack_batch
from visionforge.engine.module import TASKS, TaskModule
from visionforge.errors import ConfigError, DataError
from visionforge.models.spec import model_name, model_spec, model_task, registry_metadata

__all__ = ["Trainer", "default_mode"]

_log = logging.getLogger(__name__)


def _first_sample_batch(loader: Any) -> Any:
    """A one-sample batch from ``loader`` without disturbing its iteration state."""
    dataset = getattr(loader, "dataset", None)
    collate = getattr(loader, "collate_fn", None)
    if dataset is not None and collate is not None and hasattr(dataset, "__getitem__"):
        try:
            return collate([dataset[0]])
        except (TypeError, IndexError, KeyError, NotImplementedError):
            pass
    try:
        return next(iter(loader))
    except StopIteration:
        raise DataError("the training data loader is empty") from None


def _probe_batch(loader: Any) -> Any:
    """A batch of the loader's batch size built from its first samples (no RNG, no workers)."""
    dataset = getattr(loader, "dataset", None)
    collate = getattr(loader, "collate_fn", None)
    size = getattr(loader, "batch_size", None) or 1
    if dataset is not None and collate is not None and hasattr(dataset, "__len__"):
        try:
            return collate([dataset[i] for i in range(min(size, len(dataset)))])
        except (TypeError, IndexError, KeyError, NotImplementedError):
            pass
    with torch.random.fork_rng():
        return next(iter(loader))


def _to(value: Any, device: str) -> Any:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _class_names_of(*sources: Any) -> list[str] | None:
    for src in sources:
        for obj in (src, getattr(src, "dataset", None)):
            for attr in ("class_names", "classes"):
                names = getattr(obj, attr, None)
                if isinstance(names, Sequence) and names and not isinstance(names, str):
                    return [str(n) for n in names]
    return None


class Trainer:
    """Train, evaluate and predict with any ``nn.Module`` (Lightning underneath).

    Example:
        >>> trainer = Trainer(model, max_epochs=5, output_dir="runs/demo")  # doctest: +SKIP
        >>> history = trainer.train(train_loader, val_loader)  # doctest: +SKIP
        >>> trainer.evaluate(test_loader)["accuracy"]  # doctest: +SKIP

    Args:
        model: a plain ``nn.Module`` (ideally built by ``create_model`` so it can be saved as a
            model dir).
        settings: a :class:`~visionforge.config.settings.TrainSettings`; keyword arguments
            override its fields.
        **overrides: any :class:`~visionforge.config.settings.TrainSettings` field, e.g.
            ``max_epochs``, ``lr``, ``optimizer``, ``scheduler``, ``monitor``, ``output_dir``.
            Defaults are those of ``visionforge train`` (one definition, see
            ``docs/configuration.md``). ``mode=None`` picks ``max`` for accuracy/F1/IoU/Dice and
            ``min`` otherwise; ``scheduler="auto"`` the model family's preferred one.

    Settings are readable as attributes (``trainer.lr``, ``trainer.mode`` is the resolved mode).
    """

    def __init__(
        self, model: nn.Module, *, settings: TrainSettings | None = None, **overrides: Any
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"Trainer needs a torch nn.Module, got {type(model).__name__}")
        base = settings if settings is not None else TrainSettings()
        self.model = model
        self.settings = base.replace(**overrides) if overrides else base
        self.output_dir = Path(self.settings.output_dir)
        self.callbacks = list(self.settings.callbacks or ())
        self.module: TaskModule | None = None
        self.history: dict[str, Any] | None = None
        self.best_model_path: str | None = None
        self.model_dir: Path | None = None
        self.input_size: list[int] | None = None
        self.epochs: int | None = None  # max_epochs, resolved for the task once it is known
        self.pl_trainer: Any = None
        self.speed_choice: Any = None  # what precision/channels_last=auto chose
        self.class_names: list[str] | None = (
            list(self.settings.class_names) if self.settings.class_names is not None else None
        )

    def __getattr__(self, name: str) -> Any:
        # Settings read as attributes (trainer.lr, trainer.max_epochs, ...), one source of truth.
        settings = self.__dict__.get("settings")
        if settings is not None and name in settings.__dataclass_fields__:
            return getattr(settings, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def mode(self) -> str:
        """``min`` or ``max``: given, or inferred from ``monitor``."""
        return self.settings.resolved_mode

    # -- setup ----------------------------------------------------------------------
    def _infer(self, loader: Any) -> tuple[str, int | None, int | None]:
        batch = unpack_batch(_first_sample_batch(loader))
        x = batch["image"]
        if (self.settings.task or self._registry_task()) == "detection" or "targets" in batch:
            # a detector's output is a list of box dicts; its class count is an attribute
            first = x[0] if isinstance(x, list | tuple) else x[0]
            self.input_size = list(first.shape)
            return "detection", getattr(self.model, "num_classes", None), None
        if not isinstance(x, torch.Tensor):
            raise DataError(f"batch inputs must be tensors, got {type(x).__name__}")
        self.input_size = list(x.shape[1:])
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(x.to(next(self.model.parameters(), torch.empty(0)).device))
        finally:
            self.model.train(was_training)
        task = self.settings.task or self._registry_task() or infer_task(batch, out)
        if task == "multitask":
            if not isinstance(out, Mapping):
                raise ConfigError("task='multitask' needs a model returning a dict of head outputs")
            cls, seg = out.get("classification"), out.get("segmentation")
            return (
                task,
                (int(cls.shape[1]) if cls is not None else None),
                (int(seg.shape[1]) if seg is not None else None),
            )
        if isinstance(out, Mapping):
            raise ConfigError(f"task={task!r} but the model returns a dict; use task='multitask'")
        return task, int(out.shape[1]) if out.ndim >= 2 else None, None

    def _registry_task(self) -> str | None:
        task = model_task(self.model)
        return task if task in TASKS else None

    def _enable_grad_checkpointing(self) -> None:
        setter = getattr(self.model, "set_grad_checkpointing", None)
        if setter is None:
            raise ConfigError(
                f"gradient_checkpointing=True but {type(self.model).__name__} has no "
                "set_grad_checkpointing(); it is supported by timm models"
            )
        setter(True)

    def _build_module(self, loader: Any) -> TaskModule:
        s = self.settings
        task, num_classes, seg_classes = self._infer(loader)
        if self.class_names and num_classes and len(self.class_names) != num_classes:
            raise ConfigError(
                f"{len(self.class_names)} class names given but the model outputs "
                f"{num_classes} classes"
            )
        if s.gradient_checkpointing:
            self._enable_grad_checkpointing()
        self.epochs = s.epochs_for(task)
        module = TaskModule(
            self.model,
            task=task,
            criterion=s.criterion,
            optimizer=s.optimizer,
            lr=s.lr,
            weight_decay=s.weight_decay,
            momentum=s.momentum,
            lr_multipliers=s.lr_multipliers,
            lr_multiplier=s.lr_multiplier,
            scheduler=s.scheduler_for(registry_metadata(self.model).get("scheduler")),
            scheduler_kwargs=dict(s.scheduler_kwargs or {}),
            monitor=s.monitor,
            num_classes=num_classes,
            seg_classes=seg_classes,
            class_weights=s.class_weights,
            label_smoothing=s.label_smoothing,
        )
        if s.compile:
            self.model.compile()  # in place: state-dict keys stay unchanged
        return module

    def _precision_and_accelerator(self) -> tuple[str, str, Any]:
        from visionforge.engine.precision import (
            lightning_accelerator,
            resolve_device,
            resolve_precision,
        )

        dev = resolve_device(self.device)
        accelerator, dev_ids = lightning_accelerator(dev)
        devices = dev_ids if isinstance(dev_ids, list) else self.devices
        if self.speed_choice is not None and self.precision == "auto":
            precision = self.speed_choice.precision
        elif self.precision not in (None, "auto"):
            precision = resolve_precision(str(self.precision), dev)
        else:
            precision = resolve_precision(self.mixed_precision, dev)
        return precision, accelerator, devices

    def _autotune(self, module: TaskModule, loader: Any) -> None:
        """``precision=auto`` / ``channels_last=auto``: probe on one real batch, apply, say it."""
        from visionforge.engine.autotune import candidate_precisions, probe_speed
        from visionforge.engine.precision import resolve_device

        s = self.settings
        if s.precision != "auto" and s.channels_last != "auto":
            if s.channels_last is True:
                self.model.to(memory_format=torch.channels_last)
                module.channels_last = True
            return
        dev = resolve_device(self.device)
        precisions = (candidate_precisions(dev) if s.precision == "auto"
                      else [self._precision_and_accelerator()[0]])
        b = unpack_batch(_probe_batch(loader))
        probed: nn.Module = self.model
        if module.task == "detection":  # the probe sees the detector's loss components
            from visionforge.engine.detection import DetectionLossProbe

            if not isinstance(b["image"], torch.Tensor):
                _log.warning("speed probe skipped: the detection training images differ in "
                             "size (no batch tensor to time); set precision explicitly")
                return
            probed = DetectionLossProbe(self.model, b.get("targets"))

            def loss_fn(out: Any) -> torch.Tensor:
                return out.sum()
        else:

            def loss_fn(out: Any) -> torch.Tensor:
                return module._loss(out, {k: _to(v, dev) for k, v in b.items()})

        self.speed_choice = probe_speed(
            probed, b["image"], loss_fn, device=dev,
            precisions=precisions,
            layouts=(False, True) if s.channels_last == "auto" else (bool(s.channels_last),),
        )
        if self.speed_choice.channels_last:
            self.model.to(memory_format=torch.channels_last)
            module.channels_last = True
        if s.progress is not False:  # asked for by the user: one line says what was chosen
            print(self.speed_choice.line(), flush=True)

    def _show_progress(self) -> bool:
        from visionforge.engine.callbacks.console import progress_enabled

        return progress_enabled(self.progress)

    def _lightning_trainer(
        self, *, fit: bool, callbacks: list[Any], loggers: Any, wrapped: bool
    ) -> Any:
        import lightning.pytorch as pl

        from visionforge.engine.checkpoint import AtomicCheckpointIO
        from visionforge.engine.lightning_setup import cache_external_callback_lookup

        cache_external_callback_lookup()
        precision, accelerator, devices = self._precision_and_accelerator()
        checkpoint_io: Any = AtomicCheckpointIO()
        if fit and not self.checkpoint_every_n_steps:
            # epoch checkpoints are written by a background thread from a copy of the state
            # (Lightning's AsyncCheckpointIO), off the step path; per-step checkpoints ask for
            # a durable state at that very step, so those stay synchronous
            from lightning.pytorch.plugins.io import AsyncCheckpointIO

            checkpoint_io = AsyncCheckpointIO(checkpoint_io)
        kwargs: dict[str, Any] = dict(
            accelerator=accelerator,
            devices=devices if fit else 1,
            strategy=self.strategy if fit else "auto",
            precision=precision,
            logger=loggers,
            callbacks=callbacks,
            enable_progress_bar=self._show_progress(),
            enable_model_summary=False,
            default_root_dir=str(self.output_dir),
            plugins=[checkpoint_io],
            num_sanity_val_steps=0,
            enable_checkpointing=fit and self.settings.checkpoint,
            inference_mode=True,
        )
        if fit:
            interval = self.val_check_interval
            kwargs.update(
                max_epochs=self.epochs or self.settings.epochs_for(None),
                max_steps=self.max_steps or -1,
                check_val_every_n_epoch=(
                    None if isinstance(interval, int) else max(int(self.validation_freq or 1), 1)
                ),
                val_check_interval=interval,
                gradient_clip_val=self.gradient_clip_value,
                gradient_clip_algorithm="norm",
                accumulate_grad_batches=self.accumulate_grad_batches,
                overfit_batches=self.overfit_batches,
                fast_dev_run=self.fast_dev_run,
                log_every_n_steps=self.log_every_n_steps,
                use_distributed_sampler=not wrapped,
            )
        return pl.Trainer(**kwargs)

    def _fit_callbacks(self, has_val: bool, loader: Any = None) -> tuple[list[Any], Any]:
        from visionforge.engine.callbacks import (
            HistoryRecorder,
            LoaderStateRestorer,
            build_callback,
            standard_callbacks,
        )

        recorder = HistoryRecorder()
        ckpt_dir = checkpoint_paths(self.output_dir)["dir"]
        cbs: list[Any] = [recorder, *standard_callbacks(self.settings, ckpt_dir, has_val=has_val)]
        if isinstance(loader, ResumableDataLoader):
            cbs.append(LoaderStateRestorer(loader))
        for cb in self.callbacks:  # a registry name or a callback object
            cbs.extend(build_callback(cb, self.settings, ckpt_dir) if isinstance(cb, str) else [cb])
        return cbs, recorder

    def _resume_path(self) -> str | None:
        if self.resume_from is not None:
            path = Path(self.resume_from)
            if not path.is_file():
                raise ConfigError(f"resume_from={str(path)!r}: checkpoint not found")
            return str(path)
        if self.resume:
            last = checkpoint_paths(self.output_dir)["last"]
            if last.is_file():
                return str(last)
            _log.info("resume=True but %s does not exist; starting a new run", last)
        return None

    @staticmethod
    def _loaders_of(train: Any, val: Any) -> tuple[Any, Any]:
        import lightning.pytorch as pl

        if isinstance(train, pl.LightningDataModule):
            dm = train
            dm.prepare_data()
            dm.setup("fit")
            train = dm.train_dataloader()
            if val is None:
                try:
                    val = dm.val_dataloader()
                except (NotImplementedError, AttributeError):  # Lightning's default raises
                    val = None
                if isinstance(val, list | tuple) and not val:
                    val = None
        return train, val

    # -- public API ---------------------------------------------------------------------
    def train(self, train_loader: Any, val_loader: Any = None) -> dict[str, Any]:
        """Fit on ``train_loader`` (a DataLoader or LightningDataModule); return the history.

        History: ``{"train_loss": [...], "val_loss": [...], "val_metrics": {name: [...]},
        "lr": [...]}`` (one train entry per epoch, one val entry per validation run).
        """
        from visionforge.engine.seed import enable_determinism, restore_determinism, set_seed
        from visionforge.engine.tracking import build_loggers

        source = train_loader
        train_loader, val_loader = self._loaders_of(train_loader, val_loader)
        if self.seed is not None:
            set_seed(self.seed)
        previous = enable_determinism() if self.deterministic else None
        try:
            return self._train(source, train_loader, val_loader, build_loggers)
        finally:
            if previous is not None:
                restore_determinism(previous)

    fit = train

    def _train(self, source: Any, train_loader: Any, val_loader: Any, build_loggers: Any) -> dict:
        explicit = self.class_names is not None
        if not explicit:
            self.class_names = _class_names_of(source, train_loader)
        try:
            module = self._build_module(train_loader)
        except ConfigError:
            if explicit or self.class_names is None:
                raise
            self.class_names = None  # names found on the dataset do not fit this model's head
            module = self._build_module(train_loader)
        self.module = module
        self._autotune(module, train_loader)
        wrapped_loader = train_loader
        if not self.overfit_batches:
            data_seed = self.seed if self.seed is not None else int(torch.randint(0, 2**31 - 1, ()))
            wrapped_loader = make_resumable(train_loader, data_seed)
        wrapped = wrapped_loader is not train_loader
        self.output_dir.mkdir(parents=True, exist_ok=True)
        loggers = build_loggers(self.output_dir, self.loggers, mlflow=self.mlflow)
        callbacks, recorder = self._fit_callbacks(
            has_val=val_loader is not None, loader=wrapped_loader
        )
        trainer = self._lightning_trainer(
            fit=True, callbacks=callbacks, loggers=loggers, wrapped=wrapped
        )
        self.pl_trainer = trainer
        for lg in loggers:
            lg.log_hyperparams(self._params(module))
        trainer.fit(
            module,
            train_dataloaders=wrapped_loader,
            val_dataloaders=val_loader,
            ckpt_path=self._resume_path(),
            weights_only=True,
        )

        if val_loader is not None and not recorder.history["val_loss"] and not self.fast_dev_run:
            # Validation never ran (e.g. validation_freq > epochs): run it once at the end.
            results = self._lightning_trainer(
                fit=False, callbacks=[], loggers=False, wrapped=False
            ).validate(module, val_loader, verbose=False)
            recorder.record_validation(
                results[0] if results else {}, step=trainer.global_step, epoch=trainer.current_epoch
            )
        best = None
        for cb in trainer.checkpoint_callbacks:
            if cb.monitor == self.monitor and cb.best_model_path:
                best = cb
        self.best_model_path = best.best_model_path if best else None
        if self.restore_best and self.best_model_path and Path(self.best_model_path).is_file():
            self.model.load_state_dict(model_state_from_checkpoint(self.best_model_path))
        self.history = {
            k: (dict(v) if isinstance(v, dict) else list(v)) for k, v in recorder.history.items()
        }
        if trainer.is_global_zero:
            self._write_outputs(module, best, loggers)
        return self.history

    def _params(self, module: TaskModule) -> dict[str, Any]:
        opt = self.optimizer if isinstance(self.optimizer, str) else type(self.optimizer).__name__
        spec = module.scheduler_spec
        sch = spec if spec is None or isinstance(spec, str) else type(spec).__name__
        crit = (
            self.criterion
            if self.criterion is None or isinstance(self.criterion, str)
            else (type(self.criterion).__name__)
        )
        return {
            "model": model_name(self.model) or type(self.model).__name__,
            "task": module.task,
            "optimizer": opt,
            "lr": self.lr,
            "scheduler": sch,
            "criterion": crit,
            "max_epochs": self.epochs,
            "max_steps": self.max_steps,
            "accumulate_grad_batches": self.accumulate_grad_batches,
            "gradient_clip_value": self.gradient_clip_value,
            "seed": self.seed,
            "mixed_precision": str(self.mixed_precision),
            "ema": self.ema,
            "swa": self.swa,
            "weight_decay": self.weight_decay,
            "monitor": self.monitor,
            "mode": self.mode,
        }

    def _write_outputs(self, module: TaskModule, best: Any, loggers: list[Any]) -> None:
        from visionforge.io import atomic_write_json

        assert self.history is not None
        metrics: dict[str, Any] = {}
        if best is not None and best.best_model_score is not None:
            metrics[f"best_{self.monitor}"] = float(best.best_model_score)
        if self.history["val_loss"]:
            metrics["val_loss"] = self.history["val_loss"][-1]
            for name, values in self.history["val_metrics"].items():
                metrics[name] = values[-1]
        self.history["best"] = metrics
        atomic_write_json(self.output_dir / "history.json", self.history)
        if not self.save_model:
            return
        if not model_spec(self.model):
            _log.warning(
                "not writing %s: %s was not built with visionforge.create_model, so its "
                "constructor is unknown (checkpoints are still in %s)",
                self.output_dir / "model",
                type(self.model).__name__,
                checkpoint_paths(self.output_dir)["dir"],
            )
            return
        from visionforge.engine.tracking import log_model_dir_artifact
        from visionforge.models.model_dir import save_model_dir

        self.model_dir = save_model_dir(
            self.model,
            self.output_dir / "model",
            task=module.task,
            class_names=self.class_names,
            input_size=self.input_size,
            preprocessing=self.settings.preprocessing,
            metrics=metrics,
            extra=dict(self.settings.model_meta or {}) or None,
        )
        log_model_dir_artifact(loggers, self.model_dir)

    def _ensure_module(self, loader: Any) -> TaskModule:
        if self.module is None:
            self.module = self._build_module(loader)
        return self.module

    def evaluate(self, loader: Any) -> dict[str, float]:
        """Loss and metrics of the model on ``loader``: ``{"loss", "accuracy", "f1_macro", ...}``."""
        loader, _ = self._loaders_of(loader, None)
        module = self._ensure_module(loader)
        trainer = self._lightning_trainer(fit=False, callbacks=[], loggers=False, wrapped=False)
        results = trainer.validate(module, loader, verbose=False)
        out = results[0] if results else {}
        return {(k[4:] if k.startswith("val_") else k): float(v) for k, v in out.items()}

    def predict(self, loader: Any) -> Any:
        """Model outputs (logits, on CPU) for every batch of ``loader``, concatenated.

        Multitask models give a dict ``{"classification": [N, C], "segmentation": [N, S, H, W]}``.
        """
        loader, _ = self._loaders_of(loader, None)
        module = self._ensure_module(loader)
        trainer = self._lightning_trainer(fit=False, callbacks=[], loggers=False, wrapped=False)
        parts = trainer.predict(module, loader) or []
        if not parts:
            return torch.empty(0)
        if isinstance(parts[0], list):  # detection: one dict per image
            return [d for p in parts for d in p]
        if isinstance(parts[0], Mapping):
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        return torch.cat(parts)

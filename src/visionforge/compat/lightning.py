"""The names of the Vision PyTorch Lightning framework (seed 004), over visionforge's engine.

Its users' code carries over: ``BaseVisionModel`` (a ``LightningModule``: backbone + head,
template-method steps that log ``train/loss``), ``BaseVisionDataModule``,
``BaseVisionCallback``, the model/data/trainer contracts as ``typing.Protocol``s with
``ModelContract``/``DataContract`` checks, ``register_model``/``ModelRegistry``,
``register_datamodule``, ``register_callback`` and ``TrainerFactory`` building a Lightning
``Trainer`` from a run config. Everything delegates to the core: the steps, losses,
optimizers and schedulers are :class:`~visionforge.engine.module.TaskModule`'s, the
datamodules share :mod:`visionforge.data.datamodules`' loader plumbing, datamodules and
callbacks go into the core registries (so ``visionforge train data.kind=NAME`` and
``Trainer(callbacks=["NAME"])`` find them), and the Lightning ``Trainer`` is configured
exactly as ``visionforge.Trainer`` configures its own. What differs on purpose is listed in
``docs/migrating.md``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from visionforge.config.settings import TrainSettings, settings_from_config
from visionforge.data.datamodules import _DataModule
from visionforge.data.transforms import CutMix, MixUp
from visionforge.engine.module import TaskModule
from visionforge.errors import ConfigError
from visionforge.registry import CALLBACKS, DATAMODULES, Registry

__all__ = [
    "TaskType",
    "ModelInterface",
    "DataInterface",
    "TrainerInterface",
    "ModelContract",
    "DataContract",
    "BaseVisionModel",
    "VisionModel",
    "BaseVisionDataModule",
    "BaseVisionCallback",
    "BaseDataModule",
    "BaseCallback",
    "LIGHTNING_MODELS",
    "register_model",
    "register_datamodule",
    "register_callback",
    "ModelRegistry",
    "TrainerFactory",
    "MixupTransform",
    "CutMixTransform",
]


class TaskType(enum.StrEnum):
    """The tasks a model can be trained for (detection is a separate feature)."""

    CLASSIFICATION = "classification"
    SEGMENTATION = "segmentation"
    MULTITASK = "multitask"
    SIGNAL = "signal"


# -- contracts --------------------------------------------------------------------------
@runtime_checkable
class ModelInterface(Protocol):
    """What a trainable model offers (every ``LightningModule`` does)."""

    def forward(self, x: torch.Tensor) -> Any: ...

    def training_step(self, batch: Any, batch_idx: int) -> Any: ...

    def validation_step(self, batch: Any, batch_idx: int) -> Any: ...

    def configure_optimizers(self) -> Any: ...


@runtime_checkable
class DataInterface(Protocol):
    """What a datamodule offers (``LightningDataModule`` and visionforge's datamodules)."""

    def setup(self, stage: str | None = None) -> None: ...

    def train_dataloader(self) -> Any: ...

    def val_dataloader(self) -> Any: ...


@runtime_checkable
class TrainerInterface(Protocol):
    """What a trainer offers: Lightning's ``Trainer`` and ``visionforge.Trainer`` both fit."""

    def fit(self, *args: Any, **kwargs: Any) -> Any: ...

    def predict(self, *args: Any, **kwargs: Any) -> Any: ...


def _missing(obj: Any, protocol: type) -> list[str]:
    names = [n for n in dir(protocol) if not n.startswith("_") or n == "forward"]
    wanted = [n for n in names if callable(getattr(protocol, n, None))]
    return [n for n in wanted if not callable(getattr(obj, n, None))]


class ModelContract:
    """Runtime check of a model against :class:`ModelInterface` and a task."""

    @staticmethod
    def validate_model(model: nn.Module, task_type: TaskType | str) -> bool:
        """``True``, or :class:`ConfigError` naming the missing methods or the task mismatch."""
        task = TaskType(task_type).value
        missing = _missing(model, ModelInterface)
        if missing:
            raise ConfigError(f"{type(model).__name__} does not fulfil the model contract: "
                              f"missing {', '.join(missing)} (subclass BaseVisionModel)")
        own = getattr(model, "task", None)
        if own is not None and str(own) != task:
            raise ConfigError(f"{type(model).__name__} is a {own} model, not {task}")
        return True


class DataContract:
    """Runtime check of a datamodule against :class:`DataInterface`."""

    @staticmethod
    def validate_datamodule(datamodule: Any) -> bool:
        """``True``, or :class:`ConfigError` naming the missing methods."""
        missing = _missing(datamodule, DataInterface)
        if missing:
            raise ConfigError(f"{type(datamodule).__name__} does not fulfil the data contract: "
                              f"missing {', '.join(missing)} (subclass BaseVisionDataModule)")
        return True


# -- configuration helpers --------------------------------------------------------------
def _as_config(config: Any) -> Any:
    """A ``DictConfig`` of ``config`` (a mapping, a ``DictConfig`` or ``None``)."""
    from omegaconf import DictConfig, OmegaConf

    if config is None:
        return OmegaConf.create({})
    if isinstance(config, DictConfig):
        return config
    if isinstance(config, Mapping):
        return OmegaConf.create(dict(config))
    raise ConfigError(f"config must be a mapping or DictConfig, got {type(config).__name__}")


def _settings(config: Any, **overrides: Any) -> TrainSettings:
    """The :class:`TrainSettings` of a run config (its trainer/optimizer/... sections)."""
    if isinstance(config, TrainSettings):
        return config.replace(**overrides) if overrides else config
    return settings_from_config(_as_config(config), **overrides)


def _lookup(cfg: Any, *keys: str) -> Any:
    """The first of ``keys`` (dotted) that is set in ``cfg``."""
    from omegaconf import OmegaConf

    for key in keys:
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            return value
    return None


# -- models -----------------------------------------------------------------------------
class _BackboneHead(nn.Module):
    """``head(backbone(x))``; without a head the backbone is the whole network."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> Any:
        features = self.backbone(x)
        return self.head(features) if self.head is not None else features


class BaseVisionModel(TaskModule, ABC):
    """A ``LightningModule`` built from ``_build_backbone()`` (+ optional ``_build_head()``).

    The training, validation and prediction steps, the loss, the metrics and the
    optimizer/scheduler are :class:`TaskModule`'s (so settings mean what they mean in
    ``visionforge train``); the training step also logs ``train/loss``. ``config`` is a run
    config (``DictConfig`` or mapping: ``task``, ``model.num_classes`` or
    ``data.num_classes``, ``optimizer.lr``, ``loss.name``, ...); keyword arguments override
    it. The network is ``self.model`` (``head(backbone(x))``): customise the network in
    ``_build_*`` rather than in ``forward``, because the steps call ``self.model``.
    """

    task_type: ClassVar[str] = TaskType.CLASSIFICATION.value

    def __init__(self, config: Any = None, *, task: str | None = None,
                 num_classes: int | None = None, **settings: Any) -> None:
        cfg = _as_config(config)
        s = _settings(cfg, **settings)
        task = str(task or _lookup(cfg, "task") or self.task_type)
        task = self.task_type if task == "auto" else task
        n = num_classes or _lookup(cfg, "num_classes", "model.num_classes",
                                   "model.kwargs.num_classes", "data.num_classes")
        super().__init__(
            nn.Identity(), task=task, criterion=s.criterion, optimizer=s.optimizer, lr=s.lr,
            weight_decay=s.weight_decay, momentum=s.momentum, lr_multipliers=s.lr_multipliers,
            lr_multiplier=s.lr_multiplier, scheduler=s.scheduler_for(None),
            scheduler_kwargs=dict(s.scheduler_kwargs or {}), monitor=s.monitor,
            num_classes=int(n) if n else None, label_smoothing=s.label_smoothing,
            class_weights=s.class_weights if not isinstance(s.class_weights, str) else None,
        )
        self.config = cfg
        self.settings = s
        self.model = _BackboneHead(self._build_backbone(), self._build_head())

    @abstractmethod
    def _build_backbone(self) -> nn.Module:
        """The feature extractor (or the whole network when there is no head)."""

    def _build_head(self) -> nn.Module | None:
        """The task head on the backbone's features; ``None``: the backbone is the network."""
        return None

    @property
    def backbone(self) -> nn.Module:
        return self.model.backbone

    @property
    def head(self) -> nn.Module | None:
        return self.model.head

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False)
        return loss


class VisionModel(BaseVisionModel):
    """Any registered visionforge model or timm name as a :class:`BaseVisionModel`.

    ``config.model.name`` (or ``model_name``) picks the network, built by
    :func:`visionforge.create_model` with ``num_classes`` and ``config.model.kwargs``.
    """

    def __init__(self, config: Any = None, *, model_name: str | None = None,
                 **kwargs: Any) -> None:
        cfg = _as_config(config)
        name = model_name or _lookup(cfg, "model.name")
        if not name or name == "auto":
            raise ConfigError("VisionModel needs a model name: model_name= or config.model.name")
        object.__setattr__(self, "_model_name", str(name))
        object.__setattr__(self, "_pending_cfg", cfg)  # read by _build_backbone during __init__
        super().__init__(cfg, **kwargs)

    def _build_backbone(self) -> nn.Module:
        from omegaconf import OmegaConf

        from visionforge.models import create_model

        cfg = self._pending_cfg
        extra = OmegaConf.to_container(cfg.model.kwargs, resolve=True) if _lookup(
            cfg, "model.kwargs") is not None else {}
        extra = {k: v for k, v in dict(extra).items() if k != "num_classes"}
        if self.num_classes:
            extra["num_classes"] = self.num_classes
        return create_model(self._model_name, pretrained=_lookup(cfg, "model.pretrained") or False,
                            **extra)


#: Lightning-module models registered with :func:`register_model` (kept apart from the
#: core ``MODELS`` registry, whose entries are plain ``nn.Module`` factories).
LIGHTNING_MODELS = Registry("lightning model")


def register_model(name: str, task_type: TaskType | str = TaskType.CLASSIFICATION,
                   **metadata: Any) -> Callable[[type], type]:
    """Class decorator: register a :class:`BaseVisionModel` subclass under ``name``."""
    task = TaskType(task_type).value

    def decorator(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, pl.LightningModule)):
            raise ConfigError(f"register_model({name!r}): {cls!r} is not a LightningModule class")
        cls.task_type = task
        LIGHTNING_MODELS.add(name, cls, task_type=task, **metadata)
        return cls

    return decorator


class ModelRegistry:
    """Create models by name: registered Lightning models first, then any visionforge model
    or timm name (as a :class:`VisionModel`)."""

    @staticmethod
    def create_model(name: str, config: Any = None, **kwargs: Any) -> pl.LightningModule:
        if name in LIGHTNING_MODELS:
            return LIGHTNING_MODELS.get(name)(config, **kwargs)
        return VisionModel(config, model_name=name, **kwargs)

    @staticmethod
    def list_models(pattern: str | None = None) -> list[str]:
        """Registered Lightning models, then the core registry's models."""
        import visionforge.models  # noqa: F401 - registers the built-in models
        from visionforge.registry import MODELS

        return LIGHTNING_MODELS.list(pattern) + MODELS.list(pattern)

    @staticmethod
    def get_task_type(name: str) -> str:
        return str(LIGHTNING_MODELS.entry(name).metadata.get("task_type"))


# -- data -------------------------------------------------------------------------------
class BaseVisionDataModule(_DataModule):
    """A datamodule with visionforge's loader defaults; subclasses fill ``train_set``,
    ``val_set``, ``test_set`` and ``class_names`` in ``_build()`` (run once by ``setup``).

    ``image_size`` and ``cache`` (``none|memory|disk``: a
    :class:`~visionforge.data.cache.DecodedCache` as ``self.cache``) are kept for the
    subclass's datasets.
    """

    def __init__(self, batch_size: int | None = None, image_size: int | None = None, *,
                 cache: str | None = None, cache_dir: str | None = None, **loader: Any) -> None:
        from visionforge.data.cache import make_cache

        super().__init__(batch_size, **loader)
        self.image_size = image_size or self.default_image_size
        self.cache = make_cache(cache, cache_dir)

    @abstractmethod
    def _build(self) -> None:
        """Create ``self.train_set`` (and ``val_set``/``test_set``, ``class_names``)."""


def register_datamodule(name: str, **metadata: Any) -> Callable[[type], type]:
    """Class decorator: add a datamodule to the core ``DATAMODULES`` registry."""

    def decorator(cls: type) -> type:
        DATAMODULES.add(name, cls, **metadata)
        return cls

    return decorator


# -- callbacks --------------------------------------------------------------------------
class BaseVisionCallback(Callback):
    """A Lightning ``Callback`` that the registry can build from a run's settings.

    Override :meth:`from_settings` when the callback needs settings; by default it is
    built without arguments.
    """

    @classmethod
    def from_settings(cls, settings: TrainSettings, ckpt_dir: Path) -> Callback:
        return cls()


def register_callback(name: str, **metadata: Any) -> Callable[[type], type]:
    """Class decorator: add a callback to the core ``CALLBACKS`` registry, so
    ``Trainer(callbacks=[name])`` and ``TrainerFactory`` (``callbacks=[...]``) build it."""

    def decorator(cls: type) -> type:
        factory = getattr(cls, "from_settings", None)

        def build(settings: Any, ckpt_dir: Path) -> Any:
            return factory(settings, ckpt_dir) if factory is not None else cls()

        CALLBACKS.add(name, build, **metadata)
        return cls

    return decorator


BaseDataModule = BaseVisionDataModule
BaseCallback = BaseVisionCallback


# -- trainer ----------------------------------------------------------------------------
class TrainerFactory:
    """Lightning ``Trainer``s configured from a run config exactly as ``visionforge train``
    configures its own (device, precision, accumulation, clipping, validation frequency,
    standard callbacks, loggers)."""

    @staticmethod
    def create_callbacks(config: Any, *, has_val: bool = True) -> list[Callback]:
        """The enabled standard callbacks plus those named in the settings' ``callbacks``."""
        from visionforge.engine.callbacks import build_callback, standard_callbacks
        from visionforge.engine.checkpoint import checkpoint_paths

        s = _settings(config)
        ckpt = checkpoint_paths(s.output_dir)["dir"]
        out = list(standard_callbacks(s, ckpt, has_val=has_val))
        for cb in s.callbacks or ():
            out.extend(build_callback(cb, s, ckpt) if isinstance(cb, str) else [cb])
        return out

    @staticmethod
    def create_logger(config: Any) -> list[Any]:
        """CSV/TensorBoard (and MLflow when configured) loggers in ``<output_dir>/logs``."""
        from visionforge.engine.tracking import build_loggers

        s = _settings(config)
        return build_loggers(s.output_dir, s.loggers, mlflow=s.mlflow)

    @staticmethod
    def create_trainer(config: Any = None, *, task: str | None = None, has_val: bool = True,
                       **overrides: Any) -> pl.Trainer:
        """A Lightning ``Trainer`` for the run config (``overrides``: TrainSettings names)."""
        from visionforge.engine.trainer import Trainer

        s = _settings(config if config is not None else TrainSettings(), **overrides)
        cfg_task = None if isinstance(config, TrainSettings) or config is None else _lookup(
            _as_config(config), "task")
        facade = Trainer(nn.Identity(), settings=s)
        facade.epochs = s.epochs_for(task or (cfg_task if cfg_task != "auto" else None))
        # The facade's own builder, so both paths configure Lightning identically.
        return facade._lightning_trainer(
            fit=True, callbacks=TrainerFactory.create_callbacks(s, has_val=has_val),
            loggers=TrainerFactory.create_logger(s), wrapped=False,
        )


# -- augmentation strategies ------------------------------------------------------------
class MixupTransform:
    """``(images, targets) -> (mixed images, soft targets)``: torchvision's MixUp."""

    def __init__(self, num_classes: int, alpha: float = 0.2) -> None:
        self._mixer = MixUp(num_classes, alpha)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[Any, Any]:
        mixed, soft = self._mixer((images, targets))[:2]
        return mixed, soft


class CutMixTransform:
    """``(images, targets) -> (cut-mixed images, soft targets)``: torchvision's CutMix."""

    def __init__(self, num_classes: int, alpha: float = 1.0) -> None:
        self._mixer = CutMix(num_classes, alpha)

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[Any, Any]:
        mixed, soft = self._mixer((images, targets))[:2]
        return mixed, soft

"""Typed schema of a run configuration (validated with OmegaConf structured configs).

The YAML tree in ``visionforge/conf`` supplies values; these dataclasses fix
the keys and types, so a misspelt key or a wrong type fails before training
starts with the key path and the valid keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ModelConfig",
    "DataConfig",
    "TrainerConfig",
    "OptimizerConfig",
    "SchedulerConfig",
    "LossConfig",
    "CallbacksConfig",
    "LoggerConfig",
    "RunConfig",
    "TASKS",
]

TASKS = ("auto", "classification", "segmentation", "signal", "multitask", "detection")


@dataclass
class ModelConfig:
    """Which registered model (or timm name) to build, and its constructor arguments."""

    name: str = "auto"
    pretrained: Any = False  # false | true | local weights path
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where the data is and how it is loaded.

    ``kind`` picks a registered datamodule (``visionforge.registry.DATAMODULES``): ``folder``
    (= ``image_folder``), ``segmentation``, ``cifar10``, ``cifar100``, ``imagenet``, ``coco``
    (= ``coco_segmentation``), ``signals`` (one series file), ``osdb`` (OSDB JSON events) or
    ``auto`` (detected from the layout of ``root``). ``image_size`` left ``None`` takes the
    datamodule's ``default_image_size`` (folder 64, segmentation 128, CIFAR 32, ImageNet 224,
    COCO 512). ``splits`` are train/val/test fractions (CIFAR and ImageNet keep their own test
    set / val folder).

    ``normalize``: for images the model's input contract decides the value range, channel
    order and mean/std (``visionforge.models.contract.contract_for(model.name)``);
    ``normalize=false`` is then ignored with a warning when that contract normalises. To feed
    unnormalised pixels choose a model whose contract has no mean/std (e.g.
    ``model=deeplabv3plus_codavision``, RGB 0-255) or register one with
    ``input_contract=UNIT_RANGE``. For signals ``normalize`` standardises each OSDB window.

    ``cache``: ``none`` | ``memory`` | ``disk``: decode each image (and mask) once and keep
    it, in memory or as ``.npy`` files under ``cache_dir`` (default
    ``~/.cache/visionforge/decoded``); folder and segmentation data (CIFAR is in memory).
    """

    kind: str = "auto"
    root: str | None = None
    images_dir: str | None = None
    masks_dir: str | None = None
    image_size: int | None = None
    channels: int = 3
    num_classes: int | None = None
    batch_size: Any = None  # int, null (the data kind's default) or "auto" (batch-size finder)
    num_workers: int = 0
    splits: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    augment: bool = True
    normalize: bool = True
    on_bad_image: str = "error"
    cache: str = "none"
    cache_dir: str | None = None
    window: int = 750
    step: int = 125


def _optional(tp: Any) -> Any:
    """``X | None`` as ``typing.Optional[X]`` (the form OmegaConf validates)."""
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return typing.Optional[rest[0]] if len(rest) == 1 else Any  # noqa: UP045 - OmegaConf
    return tp


def _section(section: str, cls_name: str, doc: str) -> type:
    """A structured-config dataclass holding the :class:`TrainSettings` fields of ``section``.

    Generated, so the YAML schema's keys, types and defaults are those of the Python
    ``Trainer`` (one definition; see :mod:`visionforge.config.settings`).
    """
    from visionforge.config.settings import config_key, section_fields

    specs = []
    for f in section_fields(section):
        tp = _optional(f.metadata.get("cfg_type") or Any)
        meta = {**f.metadata, "setting": f.name}
        specs.append((config_key(f), tp, field(default=f.default, metadata=meta)))
    cls = dataclasses.make_dataclass(cls_name, specs)
    cls.__doc__ = doc
    cls.__module__ = __name__
    return cls


TrainerConfig = _section("trainer", "TrainerConfig", "Training-loop settings (see TrainSettings).")
OptimizerConfig = _section("optimizer", "OptimizerConfig", "Optimizer and learning rate.")
LossConfig = _section("loss", "LossConfig", "Loss function (null name = the task's default).")
CallbacksConfig = _section("callbacks", "CallbacksConfig", "Which standard callbacks run.")


def _option(doc: str) -> Any:
    return dataclasses.field(default=None, metadata={"setting": "scheduler_kwargs", "doc": doc})


@dataclass
class SchedulerConfig:
    """Learning-rate schedule; option keys left null take the scheduler's own default."""

    name: str = dataclasses.field(
        default_factory=lambda: _settings_default("scheduler"),
        metadata={"setting": "scheduler", "doc": "the schedule; see TrainSettings.scheduler"},
    )
    warmup_epochs: float | None = _option("warmup_cosine: epochs of linear warm-up")
    pct_start: float | None = _option("onecycle: fraction of the cycle spent increasing the LR")
    factor: float | None = _option("plateau: LR factor on a plateau")
    patience: int | None = _option("plateau: validations without improvement before reducing")
    min_lr: float | None = _option("plateau / warmup_cosine: lowest LR")


def _settings_default(name: str) -> Any:
    from visionforge.config.settings import TrainSettings

    return TrainSettings.__dataclass_fields__[name].default


@dataclass
class LoggerConfig:
    csv: bool = True
    tensorboard: bool = True
    mlflow: bool = False
    mlflow_tracking_uri: str | None = None


@dataclass
class RunConfig:
    """A whole run: ``visionforge train`` composes, validates and saves one of these."""

    task: str = "auto"
    name: str | None = None
    project_dir: str = "runs"
    seed: int = 0
    framework: str = "pytorch"
    report_pdf: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

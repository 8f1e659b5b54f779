"""Typed schema of a run configuration (validated with OmegaConf structured configs).

The YAML tree in ``visionforge/conf`` supplies values; these dataclasses fix
the keys and types, so a misspelt key or a wrong type fails before training
starts with the key path and the valid keys.
"""

from __future__ import annotations

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
    "DATA_KINDS",
]

TASKS = ("auto", "classification", "segmentation", "signal", "multitask")
DATA_KINDS = ("auto", "folder", "segmentation", "signals", "osdb", "cifar10", "cifar100",
              "imagenet", "coco")


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
    """

    kind: str = "auto"
    root: str | None = None
    images_dir: str | None = None
    masks_dir: str | None = None
    image_size: int | None = None
    channels: int = 3
    num_classes: int | None = None
    batch_size: int | None = None
    num_workers: int = 0
    splits: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    seed: int = 0
    augment: bool = True
    normalize: bool = True
    on_bad_image: str = "error"
    window: int = 750
    step: int = 125


@dataclass
class TrainerConfig:
    """Training-loop settings (passed to :class:`visionforge.Trainer`)."""

    max_epochs: int | None = None
    max_steps: int | None = None
    device: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    mixed_precision: bool = False
    validation_freq: int = 1
    val_check_interval: int | None = None
    early_stopping_patience: int = 10
    monitor: str = "val_loss"
    mode: str = "min"
    gradient_clip_value: float | None = None
    accumulate_grad_batches: int = 1
    deterministic: bool = False
    compile: bool = False
    ema: bool = False
    swa: bool = False
    fast_dev_run: bool = False
    overfit_batches: int = 0


@dataclass
class OptimizerConfig:
    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9


@dataclass
class SchedulerConfig:
    name: str = "onecycle"
    warmup_epochs: int = 2
    pct_start: float = 0.3
    factor: float = 0.5
    patience: int = 3
    min_lr: float = 1e-6


@dataclass
class LossConfig:
    name: str | None = None  # null = the task's default
    label_smoothing: float = 0.0
    class_weights: Any = None  # null | "auto" | list of floats


@dataclass
class CallbacksConfig:
    checkpoint: bool = True
    early_stopping: bool = True
    lr_monitor: bool = True
    progress: bool = True


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

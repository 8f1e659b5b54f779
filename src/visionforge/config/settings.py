"""Every training setting, defined once: name, default, config section and meaning.

:class:`TrainSettings` is the single source of truth. ``visionforge.Trainer`` takes
its fields as keyword arguments; the YAML schema's ``trainer``, ``optimizer``,
``loss`` and ``callbacks`` sections (:mod:`visionforge.config.schema`) are generated
from the fields tagged with that section; :func:`settings_from_config` maps a composed
run config back to settings; the configuration reference in ``docs/`` is generated
from the same metadata. So the Python and CLI defaults cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from visionforge.errors import ConfigError

__all__ = [
    "TrainSettings",
    "SECTIONS",
    "TASK_MAX_EPOCHS",
    "FALLBACK_SCHEDULER",
    "default_mode",
    "settings_fields",
    "section_fields",
    "config_key",
    "settings_from_config",
]

#: Config sections generated from :class:`TrainSettings` (``trainer.max_epochs=...`` etc.).
SECTIONS = ("trainer", "optimizer", "scheduler", "loss", "callbacks")
#: ``max_epochs=None`` means this many epochs for the task (what ``visionforge train`` prints).
TASK_MAX_EPOCHS = {"classification": 10, "segmentation": 20, "multitask": 20, "signal": 30,
                   "detection": 30}
#: The scheduler of ``scheduler="auto"`` when the model's registration prefers none.
FALLBACK_SCHEDULER = "onecycle"
_MAX_METRICS = ("acc", "f1", "iou", "dice", "auc", "precision", "recall", "kappa", "map")
_TASKS = ("classification", "segmentation", "signal", "multitask", "detection")


def default_mode(monitor: str) -> str:
    """``"max"`` for score-like metrics (accuracy, F1, IoU, Dice, AUC, ...), else ``"min"``."""
    return "max" if any(k in monitor.lower() for k in _MAX_METRICS) else "min"


def _s(default: Any, doc: str, section: str | None = None, *, key: str | None = None,
       cfg_type: Any = None, factory: Any = None) -> Any:
    """A settings field: ``section``/``key`` place it in the YAML schema (None = Python only);
    ``cfg_type`` is the type OmegaConf validates (unions are ``Any`` there)."""
    meta = {"doc": doc, "section": section, "key": key, "cfg_type": cfg_type}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainSettings:
    """All settings of a training run, with their defaults (see ``docs/training.md``)."""

    # -- loop -------------------------------------------------------------------------
    max_epochs: int | None = _s(None, "epochs; null = the task's default (classification 10, "
                                "segmentation/multitask 20, signal 30)", "trainer", cfg_type=int | None)
    max_steps: int | None = _s(None, "stop after this many optimizer steps (null = no limit)",
                               "trainer", cfg_type=int | None)
    validation_freq: int = _s(1, "validate every N epochs", "trainer", cfg_type=int)
    val_check_interval: int | float | None = _s(
        None, "validate every N training batches (int) or fraction of an epoch (float)", "trainer")
    early_stopping_patience: int | None = _s(
        10, "validations without improvement before stopping (needs callbacks.early_stopping)",
        "trainer", cfg_type=int | None)
    monitor: str = _s("val_loss", "metric for early stopping and best.ckpt", "trainer",
                      cfg_type=str)
    mode: str | None = _s(None, "min | max | null (null: max for accuracy/F1/IoU/Dice/AUC, "
                          "min otherwise)", "trainer", cfg_type=str | None)
    accumulate_grad_batches: int = _s(1, "batches per optimizer step", "trainer", cfg_type=int)
    gradient_clip_value: float | None = _s(None, "clip the gradient norm to this value",
                                           "trainer", cfg_type=float | None)
    overfit_batches: int | float = _s(0, "train and validate on this many batches (debugging)",
                                      "trainer")
    fast_dev_run: bool | int = _s(False, "run one batch of train and validation (debugging)",
                                  "trainer")
    log_every_n_steps: int = _s(50, "how often step metrics are logged", "trainer", cfg_type=int)
    # -- hardware ---------------------------------------------------------------------
    device: str = _s("auto", "auto (CUDA > MPS > CPU) | cpu | cuda | mps", "trainer",
                     cfg_type=str)
    devices: int | str | list[int] = _s(1, "number of devices or their ids (-1 = all)",
                                         "trainer")
    strategy: Any = _s("auto", "Lightning strategy (auto, ddp, ...)", "trainer")
    mixed_precision: bool | str = _s(
        False, "true = fp16 on CUDA (bf16 on CPU); or a Lightning precision string", "trainer")
    precision: str | None = _s(
        None, "auto = a short probe picks the fastest numerically safe of fp32 / bf16 / fp16 "
        "autocast on this model and machine; or 32 | bf16 | 16 | a Lightning precision string; "
        "null = decided by mixed_precision", "trainer", cfg_type=str | None)
    channels_last: bool | str = _s(
        False, "NHWC memory layout for 4-D inputs: true | false | auto (the probe decides)",
        "trainer")
    deterministic: bool = _s(False, "deterministic algorithms (slower)", "trainer",
                             cfg_type=bool)
    compile: bool = _s(False, "torch.compile the model", "trainer", cfg_type=bool)
    gradient_checkpointing: bool = _s(False, "recompute activations to save memory (timm)",
                                      "trainer", cfg_type=bool)
    # -- weight averaging / checkpoints -------------------------------------------------
    ema: bool = _s(False, "evaluate and save an exponential moving average of the weights",
                   "trainer", cfg_type=bool)
    ema_decay: float = _s(0.999, "EMA decay", "trainer", cfg_type=float)
    swa: bool = _s(False, "stochastic weight averaging", "trainer", cfg_type=bool)
    swa_lr: float | None = _s(None, "SWA learning rate (null = the base lr)", "trainer",
                              cfg_type=float | None)
    checkpoint_every_n_steps: int | None = _s(
        None, "also refresh last.ckpt every N optimizer steps", "trainer", cfg_type=int | None)
    restore_best: bool = _s(True, "after training, load the best.ckpt weights", "trainer",
                            cfg_type=bool)
    resume: bool = _s(False, "continue from checkpoints/last.ckpt of the output dir", "trainer",
                      cfg_type=bool)
    save_optimizer_state_in_best: bool = _s(
        False, "best.ckpt also holds the optimizer/scheduler state (last.ckpt always does, "
        "for resume); false keeps best.ckpt to the weights", "trainer", cfg_type=bool)
    # -- optimizer --------------------------------------------------------------------
    optimizer: Any = _s("adamw", "adam | adamw | sgd | rmsprop, or an optimizer instance",
                        "optimizer", key="name", cfg_type=str)
    lr: float = _s(1e-3, "base learning rate (scaled by the model family's multiplier)",
                   "optimizer", cfg_type=float)
    weight_decay: float = _s(1e-4, "weight decay (decoupled for adamw)", "optimizer",
                             cfg_type=float)
    momentum: float = _s(0.9, "momentum (sgd) / beta1", "optimizer", cfg_type=float)
    lr_multiplier: float | None = _s(
        None, "factor on lr; null = the model family's registered multiplier, 1.0 = none",
        "optimizer", cfg_type=float | None)
    lr_multipliers: Mapping[str, float] | None = _s(
        None, "extra factors per parameter-name prefix, e.g. {'backbone': 0.1}")
    # -- scheduler --------------------------------------------------------------------
    scheduler: Any = _s("auto", "auto (the model family's preferred, else onecycle) | onecycle "
                        "| warmup_cosine | plateau | three_phase | none", "scheduler", key="name",
                        cfg_type=str)
    scheduler_kwargs: Mapping[str, Any] | None = _s(
        None, "scheduler arguments (pct_start, warmup_epochs, factor, patience, min_lr, ...)")
    # -- loss -------------------------------------------------------------------------
    criterion: Any = _s(None, "loss name (cross_entropy, dice, ce_dice, focal, codavision, ...); "
                        "null = the task's default", "loss", key="name", cfg_type=str | None)
    label_smoothing: float = _s(0.0, "label smoothing of cross-entropy", "loss", cfg_type=float)
    class_weights: Any = _s(None, "null | auto | list of per-class weights", "loss")
    # -- callbacks --------------------------------------------------------------------
    checkpoint: bool = _s(True, "keep checkpoints/best.ckpt and last.ckpt", "callbacks",
                          cfg_type=bool)
    early_stopping: bool = _s(True, "stop when the monitored metric stops improving",
                              "callbacks", cfg_type=bool)
    lr_monitor: bool = _s(True, "log the learning rate", "callbacks", cfg_type=bool)
    progress: bool | None = _s(None, "progress bar (null = only on a terminal)", "callbacks",
                               cfg_type=bool | None)
    progressive_resizing: Any = _s(
        None, "train-image size per epoch, e.g. {0: 32, 3: 48, 6: 64} or '0:32,3:48,6:64' "
        "(null = off; the model must accept several input sizes)", "callbacks")
    callbacks: Sequence[Any] = _s(None, "extra Lightning callbacks or CALLBACKS registry names",
                                  factory=list)
    # -- run / outputs ----------------------------------------------------------------
    output_dir: str | os.PathLike[str] = _s("runs/train", "run directory")
    seed: int | None = _s(0, "random seed (null = not seeded)")
    loggers: Sequence[Any] = _s(None, "csv, tensorboard, mlflow, or Lightning loggers",
                                factory=lambda: ["csv", "tensorboard"])
    mlflow: Mapping[str, Any] | None = _s(None, "MLflow options, e.g. {'tracking_uri': ...}")
    resume_from: str | os.PathLike[str] | None = _s(None, "checkpoint to resume from")
    class_names: Sequence[str] | None = _s(None, "class names in index order")
    task: str | None = _s(None, "classification | segmentation | signal | multitask "
                          "(null = from the registry or the first batch)")
    preprocessing: Any = _s(None, "input contract recorded in model.json (null = the model's)")
    save_model: bool = _s(True, "write the model dir (model.safetensors + model.json)")
    model_meta: Mapping[str, Any] | None = _s(
        None, "extra facts recorded in model.json (e.g. slide_mpp of slide tiles)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the setting for values that cannot work."""
        if self.task is not None and self.task not in _TASKS:
            raise ConfigError(f"task must be one of {_TASKS}, got {self.task!r}")
        if self.mode is not None and self.mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min', 'max' or None, got {self.mode!r}")
        if int(self.accumulate_grad_batches) < 1:
            raise ConfigError("accumulate_grad_batches must be >= 1")
        if self.max_epochs is not None and int(self.max_epochs) < 1:
            raise ConfigError(f"max_epochs must be >= 1 or None, got {self.max_epochs}")
        if float(self.lr) <= 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.channels_last not in (True, False, "auto"):
            raise ConfigError(f"channels_last must be true, false or 'auto', got "
                              f"{self.channels_last!r}")
        if self.lr_multiplier is not None and float(self.lr_multiplier) <= 0:
            raise ConfigError(f"lr_multiplier must be positive, got {self.lr_multiplier}")

    # -- resolution of "auto" values ---------------------------------------------------
    @property
    def resolved_mode(self) -> str:
        """``mode``, or the one inferred from ``monitor``."""
        return self.mode or default_mode(self.monitor)

    def epochs_for(self, task: str | None) -> int:
        """``max_epochs``, or the task's default when it is None."""
        if self.max_epochs is not None:
            return int(self.max_epochs)
        return TASK_MAX_EPOCHS.get(task or "classification", 10)

    def scheduler_for(self, preferred: str | None) -> Any:
        """The scheduler to build: ``"auto"`` becomes ``preferred`` (the model family's, from
        its registration), else :data:`FALLBACK_SCHEDULER`; ``"none"`` becomes ``None``."""
        if isinstance(self.scheduler, str) and self.scheduler.lower() == "auto":
            return preferred or FALLBACK_SCHEDULER
        return None if self.scheduler in (None, "none", "None") else self.scheduler

    def replace(self, **changes: Any) -> TrainSettings:
        """A copy with ``changes``; unknown names raise an error listing the valid ones."""
        unknown = sorted(set(changes) - set(settings_fields()))
        if unknown:
            import difflib

            hints = [difflib.get_close_matches(u, settings_fields(), n=1) for u in unknown]
            hint = "; ".join(f"{u!r} (did you mean {h[0]!r}?)" if h else repr(u)
                             for u, h in zip(unknown, hints))
            raise ConfigError(f"unknown training setting {hint}; valid settings are listed in "
                              "docs/configuration.md (visionforge.engine.TrainSettings)")
        return dataclasses.replace(self, **changes)


def settings_fields() -> list[str]:
    """Names of all settings."""
    return [f.name for f in dataclasses.fields(TrainSettings)]


def section_fields(section: str) -> list[dataclasses.Field]:
    """The settings that appear in the config section ``section``, in definition order."""
    return [f for f in dataclasses.fields(TrainSettings) if f.metadata.get("section") == section]


def config_key(f: dataclasses.Field) -> str:
    """The key of a settings field inside its config section."""
    return f.metadata.get("key") or f.name


def _plain(value: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a core dependency
        pass
    return value


def _scheduler_kwargs(sc: Any) -> dict[str, Any] | None:
    """The scheduler section's options that are set (null = the scheduler's own default)."""
    options = {k: _plain(v) for k, v in dict(sc).items() if k != "name" and v is not None}
    return options or None


def _loggers(lc: Any) -> tuple[list[str], dict[str, Any] | None]:
    names = [n for n in ("csv", "tensorboard", "mlflow") if lc.get(n, False)]
    uri = lc.get("mlflow_tracking_uri")
    return names, ({"tracking_uri": uri} if uri else None)


def settings_from_config(cfg: Any, **run: Any) -> TrainSettings:
    """Settings of a composed run config (``DictConfig`` from ``compose_config``).

    ``run`` adds the run-specific values the config does not hold (``output_dir``,
    ``class_names``, ``task``, ``preprocessing``, ``class_weights`` when computed, ...).
    """
    values: dict[str, Any] = {}
    for section in SECTIONS:
        node = cfg.get(section)
        if node is None:
            continue
        for f in section_fields(section):
            key = config_key(f)
            if key in node:
                values[f.name] = _plain(node[key])
    values["scheduler_kwargs"] = _scheduler_kwargs(cfg.scheduler) if "scheduler" in cfg else None
    if "logger" in cfg:
        values["loggers"], values["mlflow"] = _loggers(cfg.logger)
    if "seed" in cfg:
        values["seed"] = cfg.seed
    values.update(run)
    return TrainSettings(**values)

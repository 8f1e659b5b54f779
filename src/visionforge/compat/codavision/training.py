"""CODAvision's PyTorch training classes over :class:`visionforge.Trainer`.

``PyTorchSegmentationTrainer.train`` runs the core trainer with CODAvision's recipe: Adam,
``ReduceLROnPlateau(factor=0.5, patience=5)``, iteration-based validation every
``validation_frequency`` batches (``CODAVISION_VALIDATION_FREQUENCY``, default 128),
early stopping, gradient accumulation and AMP from the environment, and returns
CODAvision's history dict (``loss``, ``val_loss``, ``lr``; plus ``loss_step`` per iteration).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from visionforge.compat.codavision.config import FrameworkConfig
from visionforge.engine.losses import CODAvisionLoss
from visionforge.errors import ConfigError

_log = logging.getLogger(__name__)

__all__ = ["WeightedCrossEntropyLoss", "PyTorchSegmentationTrainer", "PyTorchDeepLabV3PlusTrainer"]


class WeightedCrossEntropyLoss(nn.Module):
    """CODAvision's ``WeightedCrossEntropyLoss(weights)``: the mean over classes of
    ``w_c`` times class ``c``'s mean cross-entropy, with the weights as given.

    The core ``codavision`` loss normalises the weights to sum 1 and sums over classes, so
    this is that value times ``sum(w) / C`` (identical when the weights average 1).
    """

    def __init__(self, weights: Any, device: str = "cpu") -> None:
        super().__init__()
        w = torch.as_tensor(weights, dtype=torch.float32)
        self.core = CODAvisionLoss(w, reduction="sum").to(device)
        self.scale = float(w.sum()) / w.numel()
        self.weights, self.device, self.epsilon = w.to(device), device, 1e-7

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.core(predictions, targets) * self.scale


class PyTorchSegmentationTrainer:
    """CODAvision's base trainer; set ``.model`` (and optionally ``.criterion``) then ``train``.

    Files go to ``model_path``: the core run (``checkpoints/``, ``model/``, ``history.json``)
    and, after training, ``model_best.pth`` (weights only) with ``model.json`` beside it, so
    ``load_model(model_path)`` finds the trained model.
    """

    def __init__(self, model_path: str | os.PathLike[str], image_size: int = 512,
                 num_classes: int = 5, validation_frequency: int | None = None) -> None:
        self.model_path = Path(model_path)
        self.image_size, self.num_classes = image_size, num_classes
        self.validation_frequency = validation_frequency or FrameworkConfig.get_validation_frequency()
        self.device = FrameworkConfig.get_device()
        self.model: nn.Module | None = None
        self.criterion: Any = None
        self.engine_trainer: Any = None  # the visionforge.Trainer of the last train()

    def trainer_settings(self, epochs: int, learning_rate: float,
                         early_stopping_patience: int) -> dict[str, Any]:
        """The core :class:`~visionforge.Trainer` settings of CODAvision's recipe."""
        return {
            "criterion": self.criterion if self.criterion is not None else "codavision",
            "optimizer": "adam", "lr": float(learning_rate), "weight_decay": 0.0,
            "lr_multiplier": 1.0, "scheduler": "plateau",
            "scheduler_kwargs": {"factor": 0.5, "patience": 5},
            "max_epochs": int(epochs), "val_check_interval": int(self.validation_frequency),
            "early_stopping_patience": int(early_stopping_patience),
            "accumulate_grad_batches": FrameworkConfig.get_gradient_accumulation_steps(),
            "mixed_precision": FrameworkConfig.is_amp_enabled(),
            "compile": FrameworkConfig.is_pytorch_compile_enabled(),
            "device": self.device, "output_dir": self.model_path, "task": "segmentation",
            "progress": False, "loggers": ["csv"],
        }

    def train(self, train_loader: Any, val_loader: Any = None, epochs: int = 100,
              learning_rate: float = 1e-4, early_stopping_patience: int = 10) -> dict[str, list]:
        """Train ``self.model``; returns ``{"loss", "val_loss", "lr", "loss_step"}``."""
        from visionforge.compat.codavision.models import PyTorchKerasAdapter
        from visionforge.engine import Trainer

        if self.model is None:
            raise ConfigError("set trainer.model (e.g. model_call(..., wrap_with_adapter=False))")
        settings = self.trainer_settings(epochs, learning_rate, early_stopping_patience)
        self.engine_trainer = Trainer(self.model, **settings)
        history = self.engine_trainer.train(train_loader, val_loader)
        try:
            PyTorchKerasAdapter(self.model).save(self.model_path / "model_best.pth")
        except ConfigError as exc:  # a module not built by create_model: no model.json
            _log.warning("model_best.pth not written (%s); checkpoints are in %s", exc,
                         self.model_path / "checkpoints")
        return {"loss": list(history.get("train_loss", [])),
                "val_loss": list(history.get("val_loss", [])),
                "lr": list(history.get("lr", [])),
                "loss_step": list(history.get("train_loss_step", []))}


class PyTorchDeepLabV3PlusTrainer(PyTorchSegmentationTrainer):
    """DeepLabV3+ trainer: builds the model (encoder frozen unless ``freeze_encoder=False``)
    and, at ``train``, weights the loss by the training masks' class frequencies."""

    def __init__(self, model_path: str | os.PathLike[str], image_size: int = 512,
                 num_classes: int = 5, freeze_encoder: bool = True,
                 validation_frequency: int | None = None) -> None:
        from visionforge.compat.codavision.models import PyTorchDeepLabV3Plus

        super().__init__(model_path, image_size, num_classes, validation_frequency)
        self.freeze_encoder = freeze_encoder
        self.model = PyTorchDeepLabV3Plus(image_size, num_classes).build_model()
        if not freeze_encoder:
            self.model.requires_grad_(True)

    def _calculate_class_weights(self, train_loader: Any) -> torch.Tensor:
        """Median-frequency weights from the loader's mask files (uniform without them)."""
        from visionforge.engine.class_weights import segmentation_class_weights

        masks = getattr(getattr(train_loader, "dataset", None), "mask_paths", None)
        if not masks:
            return torch.ones(self.num_classes)
        return torch.as_tensor(segmentation_class_weights(masks, self.num_classes),
                               dtype=torch.float32)

    def train(self, train_loader: Any, val_loader: Any = None, epochs: int = 100,
              learning_rate: float = 1e-4, early_stopping_patience: int = 10) -> dict[str, list]:
        if self.criterion is None:
            self.criterion = WeightedCrossEntropyLoss(self._calculate_class_weights(train_loader))
        return super().train(train_loader, val_loader, epochs, learning_rate,
                             early_stopping_patience)

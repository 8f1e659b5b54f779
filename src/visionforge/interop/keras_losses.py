"""Keras losses by name, computed in PyTorch with Keras' exact semantics.

Keras' losses live in TensorFlow/JAX; the adapter needs them on torch tensors
with gradients, so they are restated here (a few lines each) following
``keras.src.backend.tensorflow.nn``: probabilities are clipped to
``[1e-7, 1 - 1e-7]``, categorical outputs are renormalised, the per-sample loss
is averaged over every non-class axis ("sum_over_batch_size"). Tensors are
channels-last like Keras (``[B, C]``, ``[B, H, W, C]``, ``[B, L, C]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from visionforge.errors import ConfigError
from visionforge.registry import Registry

__all__ = [
    "EPSILON",
    "Loss",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryCrossentropy",
    "MeanSquaredError",
    "get_loss",
    "LOSSES",
]

EPSILON = 1e-7  # keras.backend.epsilon()


class Loss:
    """A Keras-style loss: ``loss(y_true, y_pred, sample_weight=None) -> scalar``.

    ``per_sample`` returns the unreduced loss (shape of ``y_pred`` without the class axis).
    """

    name = "loss"

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(
        self,
        y_true: torch.Tensor,
        y_pred: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        values = self.per_sample(y_true, y_pred)
        if sample_weight is not None:
            weight = sample_weight.to(values.dtype)
            while weight.dim() < values.dim():
                weight = weight.unsqueeze(-1)
            values = values * weight
        return values.mean()

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(from_logits={self.from_logits})"


def _check_same_shape(name: str, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
    if y_true.shape != y_pred.shape:
        raise ConfigError(
            f"{name}: targets of shape {tuple(y_true.shape)} do not match outputs "
            f"{tuple(y_pred.shape)} (channels last); one-hot encode the targets "
            "(keras.utils.to_categorical) or use 'sparse_categorical_crossentropy' for "
            "integer labels"
        )


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot targets (also one-hot NHWC masks)."""

    name = "categorical_crossentropy"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        _check_same_shape(self.name, y_true, y_pred)
        y_true = y_true.to(y_pred.dtype)
        if self.label_smoothing:
            classes = y_pred.shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / classes
        if self.from_logits:
            return -(y_true * F.log_softmax(y_pred, dim=-1)).sum(-1)
        probs = y_pred / y_pred.sum(-1, keepdim=True)
        probs = probs.clamp(EPSILON, 1.0 - EPSILON)
        return -(y_true * probs.log()).sum(-1)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class targets (``[B]``, ``[B, H, W]`` or a trailing 1)."""

    name = "sparse_categorical_crossentropy"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        target = y_true.long()
        if target.dim() == y_pred.dim() and target.shape[-1] == 1:
            target = target.squeeze(-1)
        if target.shape != y_pred.shape[:-1]:
            raise ConfigError(
                f"{self.name}: integer targets of shape {tuple(target.shape)} do not match "
                f"outputs {tuple(y_pred.shape)} (expected targets {tuple(y_pred.shape[:-1])})"
            )
        logits = y_pred if self.from_logits else y_pred.clamp(EPSILON, 1.0 - EPSILON).log()
        logp = F.log_softmax(logits, dim=-1)
        return -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, averaged over the last axis then over the batch."""

    name = "binary_crossentropy"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true = y_true.to(y_pred.dtype)
        if y_true.dim() == y_pred.dim() - 1:
            y_true = y_true.unsqueeze(-1)
        _check_same_shape(self.name, y_true, y_pred)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            bce = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        else:
            p = y_pred.clamp(EPSILON, 1.0 - EPSILON)
            bce = -(y_true * p.log() + (1 - y_true) * (1 - p).log())
        return bce.mean(-1)


class MeanSquaredError(Loss):
    """Mean squared error over the last axis, then over the batch."""

    name = "mean_squared_error"

    def per_sample(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true = y_true.to(y_pred.dtype)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        _check_same_shape(self.name, y_true, y_pred)
        return ((y_pred - y_true) ** 2).mean(-1)


#: Keras loss names -> our Loss classes. Keras' class names are aliases (lookup is
#: case-insensitive), so a ``keras.losses.*`` object resolves through the same table.
LOSSES = Registry("keras loss")
LOSSES.add(
    "categorical_crossentropy", CategoricalCrossentropy, aliases=("CategoricalCrossentropy",)
)
LOSSES.add(
    "sparse_categorical_crossentropy",
    SparseCategoricalCrossentropy,
    aliases=("SparseCategoricalCrossentropy",),
)
LOSSES.add("binary_crossentropy", BinaryCrossentropy, aliases=("BinaryCrossentropy",))
# MSE reads outputs as they are: it takes no from_logits.
LOSSES.add(
    "mean_squared_error", MeanSquaredError, aliases=("mse", "MeanSquaredError"), logits=False
)


def _from_registry(key: str, from_logits: bool, label_smoothing: float = 0.0) -> Loss:
    entry = LOSSES.entry(key)
    if not entry.metadata.get("logits", True):
        return entry.obj()
    return entry.obj(from_logits=from_logits, label_smoothing=label_smoothing)


def get_loss(loss: Any, *, from_logits: bool = True) -> Callable[..., torch.Tensor]:
    """Resolve a loss: a Keras name (``from_logits`` decides how outputs are read), a
    :class:`Loss` instance, a Keras loss object (mapped by class name and its
    ``from_logits``), or any callable ``(y_true, y_pred) -> scalar``."""
    if isinstance(loss, str):
        key = loss.strip()
        if key not in LOSSES:
            raise ConfigError(
                f"unknown loss {loss!r}; available: {', '.join(LOSSES.list(include_aliases=True))} "
                "(or pass a callable loss(y_true, y_pred))"
            )
        return _from_registry(key, from_logits)
    if isinstance(loss, Loss):
        return loss
    # A real keras.losses.* object: translate it so gradients flow through torch.
    cls_name = type(loss).__name__
    if type(loss).__module__.startswith("keras") and cls_name in LOSSES:
        cfg = loss.get_config()
        return _from_registry(
            cls_name,
            from_logits=cfg.get("from_logits", False),
            label_smoothing=cfg.get("label_smoothing", 0.0) or 0.0,
        )
    if callable(loss):
        return loss
    raise ConfigError(f"loss must be a name, a Loss or a callable, got {type(loss).__name__}")

"""Keras metrics by name as streaming torch accumulators (channels-last tensors).

``accuracy``/``acc`` resolves like Keras 3 does: binary when the output has one
channel, sparse when targets are integer labels, categorical for one-hot targets.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from visionforge.errors import ConfigError
from visionforge.registry import Registry

__all__ = ["Metric", "Accuracy", "MeanIoU", "MeanMetric", "get_metric", "METRICS", "METRIC_NAMES"]


class Metric:
    """Running metric: ``reset()``, ``update(y_true, y_pred)``, ``result() -> float``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reset()

    def reset(self) -> None:
        self._total = 0.0
        self._count = 0.0

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, *, from_logits: bool) -> None:
        raise NotImplementedError

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0


class MeanMetric(Metric):
    """Weighted mean of scalar values (used for the loss)."""

    def add(self, value: float, count: float) -> None:
        self._total += float(value) * count
        self._count += count


def _is_sparse(y_true: torch.Tensor, y_pred: torch.Tensor) -> bool:
    return y_true.dim() != y_pred.dim() or (y_true.shape[-1] == 1 and y_pred.shape[-1] != 1)


class Accuracy(Metric):
    """``accuracy`` (auto), ``binary_accuracy``, ``categorical_accuracy``, ``sparse_categorical_accuracy``."""

    def __init__(self, name: str = "accuracy", kind: str = "auto", threshold: float = 0.5) -> None:
        self.kind = kind
        self.threshold = threshold
        super().__init__(name)

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, *, from_logits: bool) -> None:
        kind = self.kind
        if kind == "auto":
            if y_pred.shape[-1] == 1:
                kind = "binary"
            elif _is_sparse(y_true, y_pred):
                kind = "sparse"
            else:
                kind = "categorical"
        if kind == "binary":
            probs = torch.sigmoid(y_pred) if from_logits else y_pred
            target = y_true.reshape(probs.shape) if y_true.numel() == probs.numel() else y_true
            correct = ((probs > self.threshold).to(target.dtype) == target).float()
        elif kind == "sparse":
            target = y_true.long()
            if target.dim() == y_pred.dim():
                target = target.squeeze(-1)
            correct = (y_pred.argmax(-1) == target).float()
        elif kind == "categorical":
            correct = (y_pred.argmax(-1) == y_true.argmax(-1)).float()
        else:  # pragma: no cover - guarded by get_metric
            raise ConfigError(f"unknown accuracy kind {kind!r}")
        self._total += float(correct.sum())
        self._count += correct.numel()


class MeanIoU(Metric):
    """Keras ``MeanIoU``: mean over classes seen in targets or predictions of TP/(TP+FP+FN)."""

    def __init__(self, name: str = "mean_iou", num_classes: int | None = None) -> None:
        self.num_classes = num_classes
        super().__init__(name)

    def reset(self) -> None:
        self._cm: torch.Tensor | None = None

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, *, from_logits: bool) -> None:
        if y_pred.shape[-1] == 1:
            probs = torch.sigmoid(y_pred) if from_logits else y_pred
            pred = (probs > 0.5).long().squeeze(-1)
            classes = self.num_classes or 2
        else:
            pred = y_pred.argmax(-1)
            classes = self.num_classes or y_pred.shape[-1]
        target = y_true.long().squeeze(-1) if _is_sparse(y_true, y_pred) else y_true.argmax(-1)
        if target.dim() == pred.dim() + 1:
            target = target.squeeze(-1)
        idx = target.reshape(-1) * classes + pred.reshape(-1)
        cm = torch.bincount(idx.cpu(), minlength=classes * classes).reshape(classes, classes)
        self._cm = cm if self._cm is None else self._cm + cm

    def result(self) -> float:
        if self._cm is None:
            return 0.0
        cm = self._cm.double()
        tp = cm.diag()
        denom = cm.sum(0) + cm.sum(1) - tp
        valid = denom > 0
        if not valid.any():
            return 0.0
        return float((tp[valid] / denom[valid]).mean())


#: Keras metric names (and Keras metric class names, as aliases) -> metric factories
#: taking ``name=``. Lookup is case-insensitive.
METRICS = Registry("keras metric")
METRICS.add("accuracy", partial(Accuracy, kind="auto"), aliases=("acc",))
METRICS.add("binary_accuracy", partial(Accuracy, kind="binary"), aliases=("BinaryAccuracy",))
METRICS.add(
    "categorical_accuracy", partial(Accuracy, kind="categorical"), aliases=("CategoricalAccuracy",)
)
METRICS.add(
    "sparse_categorical_accuracy",
    partial(Accuracy, kind="sparse"),
    aliases=("SparseCategoricalAccuracy",),
)
METRICS.add("mean_iou", MeanIoU, aliases=("miou", "MeanIoU"))
#: The snake_case names ``compile(metrics=[...])`` accepts.
METRIC_NAMES = tuple(
    key
    for name in METRICS.list()
    for key in (name, *METRICS.entry(name).aliases)
    if key == key.lower()
)


def get_metric(metric: Any) -> Metric:
    """A fresh metric for a Keras name, a :class:`Metric`, or a Keras metric object."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        key = metric.strip().lower()
        if key not in METRICS:
            raise ConfigError(f"unknown metric {metric!r}; available: {', '.join(METRIC_NAMES)}")
        return METRICS.get(key)(name=key)
    cls_name = type(metric).__name__
    if type(metric).__module__.startswith("keras") and cls_name in METRICS:
        cfg = metric.get_config()
        canonical = METRICS.canonical(cls_name)
        kwargs: dict[str, Any] = {"name": cfg.get("name", canonical)}
        if canonical == "mean_iou":
            kwargs["num_classes"] = cfg.get("num_classes")
        return METRICS.get(canonical)(**kwargs)
    raise ConfigError(
        f"unsupported metric {metric!r}; use one of {', '.join(METRIC_NAMES)} or a "
        "visionforge.interop.keras_metrics.Metric subclass"
    )

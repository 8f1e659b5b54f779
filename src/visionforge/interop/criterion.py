"""The adapter's criterion: a Keras loss on channels-last outputs that also keeps Keras' logs.

The engine calls ``criterion(outputs, targets)`` in its training and validation
steps; this module computes the Keras loss there and, as a side effect, updates
the running ``loss`` and metric values Keras reports (per phase, weighted by
batch size as Keras 3 does). That way ``fit`` gets Keras' exact log values from
whatever loop calls it -- the engine's, or ``evaluate``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.interop.keras_metrics import MeanMetric, Metric, get_metric

__all__ = ["KerasCriterion", "channels_last"]


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """``[B, C, *spatial]`` -> ``[B, *spatial, C]`` (no-op for ``[B, C]``)."""
    return t.movedim(1, -1) if t.dim() > 2 else t


class _Phase:
    def __init__(self, metrics: Sequence[Any]) -> None:
        self.loss = MeanMetric("loss")
        self.metrics: list[Metric] = [get_metric(m) for m in metrics]

    def reset(self) -> None:
        self.loss.reset()
        for m in self.metrics:
            m.reset()

    def logs(self, prefix: str = "") -> dict[str, float]:
        out = {f"{prefix}loss": self.loss.result()}
        for m in self.metrics:
            out[f"{prefix}{m.name}"] = m.result()
        return out


class KerasCriterion(nn.Module):
    """``criterion(outputs, targets) -> loss`` with Keras semantics and Keras logs.

    Args:
        loss: a resolved loss ``loss(y_true, y_pred, sample_weight=None)`` on channels-last tensors.
        metrics: Keras metric names or objects.
        from_logits: whether the model's outputs are logits (metrics use it for thresholds).
        class_weight: ``{class_index: weight}`` applied to training batches only (as Keras).
    """

    def __init__(
        self,
        loss: Callable[..., torch.Tensor],
        metrics: Sequence[Any] = (),
        *,
        from_logits: bool = True,
        class_weight: Mapping[int, float] | None = None,
    ) -> None:
        super().__init__()
        self.loss_fn = loss
        self.from_logits = from_logits
        self.class_weight = dict(class_weight) if class_weight else None
        self.mode = "train"
        metrics = list(metrics)
        self.phases = {"train": _Phase(metrics), "val": _Phase(metrics)}

    @property
    def metric_names(self) -> list[str]:
        return [m.name for m in self.phases["train"].metrics]

    def reset(self, mode: str) -> None:
        self.phases[mode].reset()

    def logs(self, mode: str) -> dict[str, float]:
        return self.phases[mode].logs("val_" if mode == "val" else "")

    def _sample_weight(self, targets: torch.Tensor, pred: torch.Tensor) -> torch.Tensor | None:
        if not self.class_weight or self.mode != "train":
            return None
        if (
            targets.dim() == pred.dim()
            and targets.shape[-1] == pred.shape[-1]
            and pred.shape[-1] > 1
        ):
            labels = targets.argmax(-1)
        else:
            labels = (
                targets.long().reshape(pred.shape[:-1]) if pred.shape[-1] > 1 else targets.long()
            )
        table = torch.ones(
            int(max(max(self.class_weight), int(labels.max()))) + 1, device=pred.device
        )
        for cls, w in self.class_weight.items():
            table[int(cls)] = float(w)
        return table[labels]

    def forward(self, outputs: Any, targets: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, Mapping):
            raise ConfigError(
                "KerasAdapter.fit supports single-output models; this model returns "
                f"{sorted(outputs)}: train it with visionforge.Trainer instead"
            )
        pred = channels_last(outputs)
        sample_weight = self._sample_weight(targets, pred)
        loss = (
            self.loss_fn(targets, pred, sample_weight)
            if sample_weight is not None
            else self.loss_fn(targets, pred)
        )
        with torch.no_grad():
            phase = self.phases[self.mode]
            phase.loss.add(float(loss.detach()), pred.shape[0])
            for metric in phase.metrics:
                metric.update(targets, pred.detach().float(), from_logits=self.from_logits)
        return loss

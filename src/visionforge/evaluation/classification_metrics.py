"""Streaming classification metrics over batches of logits/probabilities and labels.

Built on torchmetrics' multiclass metrics; this class only gathers them into one
``update``/``compute``/``reset`` object whose result is a JSON-ready dict.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["ClassificationMetrics"]


class ClassificationMetrics:
    """Accuracy, top-5 accuracy, precision/recall/F1 (macro + per class), ROC-AUC, confusion matrix.

    Args:
        num_classes: number of classes (>= 2).
        class_names: optional names in class-index order (used as dict keys of per-class values).

    ``update(preds, targets)`` takes ``preds`` as logits or probabilities ``[B, C]``
    (softmax is applied when rows do not already sum to one) or as hard labels ``[B]``
    (ROC-AUC and top-k are then not available), and ``targets`` as labels ``[B]``.
    """

    def __init__(self, num_classes: int, class_names: list[str] | None = None) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(
                f"class_names has {len(class_names)} names but num_classes is {num_classes}"
            )
        from torchmetrics.classification import (
            MulticlassAccuracy,
            MulticlassConfusionMatrix,
            MulticlassF1Score,
            MulticlassPrecision,
            MulticlassRecall,
        )

        self.num_classes = num_classes
        self.class_names = (
            list(class_names) if class_names else [str(i) for i in range(num_classes)]
        )
        c = num_classes
        self._cm = MulticlassConfusionMatrix(c)
        self._acc = MulticlassAccuracy(c, average="micro")
        self._prec = MulticlassPrecision(c, average=None)
        self._rec = MulticlassRecall(c, average=None)
        self._f1 = MulticlassF1Score(c, average=None)
        self._top5 = MulticlassAccuracy(c, top_k=5, average="micro") if c > 5 else None
        # Probabilities are kept for ROC-AUC and ROC curves (an exact AUC needs every score).
        self._probs: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._hard_only = False

    def reset(self) -> None:
        """Forget every batch seen so far."""
        for m in (self._cm, self._acc, self._prec, self._rec, self._f1, self._top5):
            if m is not None:
                m.reset()
        self._probs.clear()
        self._targets.clear()
        self._hard_only = False

    def _to_probs(self, preds: torch.Tensor) -> torch.Tensor:
        preds = preds.detach().float().cpu()
        sums = preds.sum(dim=1)
        is_prob = bool(
            (preds >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
        )
        return preds if is_prob else preds.softmax(dim=1)

    @torch.no_grad()
    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch: ``preds`` ``[B, C]`` scores or ``[B]`` labels, ``targets`` ``[B]``."""
        targets = torch.as_tensor(targets).detach().long().cpu().reshape(-1)
        preds = torch.as_tensor(preds)
        if preds.ndim == 2:
            if preds.shape[1] != self.num_classes:
                raise ValueError(
                    f"preds have {preds.shape[1]} columns but num_classes is {self.num_classes}"
                )
            probs = self._to_probs(preds)
            labels = probs.argmax(dim=1)
            self._probs.append(probs)
            if self._top5 is not None:
                self._top5.update(probs, targets)
        elif preds.ndim == 1:
            labels = preds.detach().long().cpu()
            self._hard_only = True
        else:
            raise ValueError(
                f"preds must be [B, C] scores or [B] labels, got shape {tuple(preds.shape)}"
            )
        if labels.shape[0] != targets.shape[0]:
            raise ValueError(f"{labels.shape[0]} predictions but {targets.shape[0]} targets")
        self._targets.append(targets)
        for m in (self._cm, self._acc, self._prec, self._rec, self._f1):
            m.update(labels, targets)

    @property
    def probabilities(self) -> torch.Tensor | None:
        """All predicted probabilities ``[N, C]`` seen so far (None if only labels were given)."""
        if self._hard_only or not self._probs:
            return None
        return torch.cat(self._probs)

    @property
    def targets(self) -> torch.Tensor:
        """All targets ``[N]`` seen so far."""
        return torch.cat(self._targets) if self._targets else torch.zeros(0, dtype=torch.long)

    def _roc_auc(self) -> tuple[list[float], float]:
        from torchmetrics.functional.classification import binary_auroc

        probs, targets = self.probabilities, self.targets
        per_class = []
        for c in range(self.num_classes):
            pos = targets == c
            # One-vs-rest AUC is undefined when a class has no positives or no negatives.
            if probs is None or pos.all() or not pos.any():
                per_class.append(float("nan"))
            else:
                per_class.append(float(binary_auroc(probs[:, c], pos.long())))
        valid = [v for v in per_class if not math.isnan(v)]
        return per_class, (sum(valid) / len(valid) if valid else float("nan"))

    def compute(self) -> dict[str, Any]:
        """Metrics so far as plain Python values (lists are in class-index order)."""
        if not self._targets:
            raise ValueError("ClassificationMetrics.compute() called before any update()")
        cm = self._cm.compute().long()
        prec, rec, f1 = self._prec.compute(), self._rec.compute(), self._f1.compute()
        support = cm.sum(dim=1)
        out: dict[str, Any] = {
            "num_samples": int(support.sum()),
            "accuracy": float(self._acc.compute()),
        }
        if self._top5 is not None and not self._hard_only:
            out["top5_accuracy"] = float(self._top5.compute())
        out.update(
            {
                "precision_macro": float(prec.mean()),
                "recall_macro": float(rec.mean()),
                "f1_macro": float(f1.mean()),
            }
        )
        if not self._hard_only:
            per_auc, macro_auc = self._roc_auc()
            out["roc_auc_macro"] = macro_auc
        out["class_names"] = self.class_names
        out["per_class"] = {
            "precision": prec.tolist(),
            "recall": rec.tolist(),
            "f1": f1.tolist(),
            "support": support.tolist(),
        }
        if not self._hard_only:
            out["per_class"]["roc_auc"] = per_auc
        out["confusion_matrix"] = cm.tolist()
        return out

"""The auxiliary-logit loss of models with an auxiliary classifier (Inception).

A model such as :class:`~visionforge.models.classification.inception_v4.InceptionAuxClassifier`
returns ``(logits, aux_logits)`` (a named tuple with an ``aux_logits`` field) in training
mode; the training loss is then ``loss(logits) + AUX_LOSS_WEIGHT * loss(aux_logits)``, the
0.4 weight of the disease pipeline (Inception-v3 used 0.3). In eval mode such models return
the main logits, so validation, evaluation and export see one output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

__all__ = ["AUX_LOSS_WEIGHT", "split_aux", "aux_weighted_loss"]

#: weight of the auxiliary classifier's loss
AUX_LOSS_WEIGHT = 0.4


def split_aux(out: Any) -> tuple[Any, Tensor | None]:
    """``(main output, auxiliary logits or None)`` of a model output."""
    if isinstance(out, tuple) and hasattr(out, "aux_logits"):
        return out[0], out.aux_logits
    return out, None


def aux_weighted_loss(criterion: Callable[[Any, Any], Tensor], out: Any, target: Any,
                      weight: float = AUX_LOSS_WEIGHT) -> Tensor:
    """``criterion(logits, target) + weight * criterion(aux_logits, target)`` (the first term
    alone for outputs without auxiliary logits)."""
    main, aux = split_aux(out)
    loss = criterion(main, target)
    return loss if aux is None else loss + weight * criterion(aux, target)

"""Magnitude pruning: zero the smallest weights of the whole model (global, unstructured).

Built on ``torch.nn.utils.prune.global_unstructured`` with the L1 criterion over the
weights of every convolution and linear layer: one threshold for the whole model, so
layers with many small weights give up more of them than sensitive ones. The pruning
is made permanent (``prune.remove``), so the model saves and loads as a plain model with
zeros in its weights. Dense formats keep their size; sparsity pays off with sparse
kernels or compression (``gzip`` of the weights file shrinks about in proportion).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import prune

from visionforge.errors import ConfigError

__all__ = ["PRUNABLE", "prunable_weights", "prune_global", "sparsity"]

#: layer types whose ``weight`` is pruned (BatchNorm/LayerNorm scales and biases are kept)
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def prunable_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of every convolution / linear layer with a weight tensor."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, PRUNABLE) and isinstance(getattr(m, "weight", None), torch.Tensor)]


def sparsity(model: nn.Module) -> dict[str, Any]:
    """Share of zero weights over the prunable layers, overall and per layer."""
    per_layer, zeros, total = {}, 0, 0
    for name, m in prunable_weights(model):
        w = m.weight.detach()
        z, n = int((w == 0).sum()), int(w.numel())
        per_layer[name or type(m).__name__] = z / n if n else 0.0
        zeros, total = zeros + z, total + n
    return {"prunable_weights": total, "zero_weights": zeros,
            "sparsity": zeros / total if total else 0.0, "per_layer": per_layer}


def prune_global(model: nn.Module, amount: float) -> dict[str, Any]:
    """Zero the ``amount`` fraction (0..1) of prunable weights with the smallest magnitude,
    in place and permanently; returns :func:`sparsity` of the result."""
    amount = float(amount)
    if not 0.0 <= amount < 1.0:
        raise ConfigError(f"amount={amount}: the fraction of weights to prune must be in [0, 1)")
    layers = prunable_weights(model)
    if not layers:
        raise ConfigError(f"{type(model).__name__} has no convolution or linear layers to prune")
    params = [(m, "weight") for _, m in layers]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)  # weight = weight_orig * mask, as a plain parameter again
    return sparsity(model)

"""Keras-style weight accessors over a PyTorch module (one implementation for the
Keras adapter and its per-layer views)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from visionforge.errors import WeightsError

__all__ = ["ModuleWeights", "load_weight_list"]


def load_weight_list(module: nn.Module, weights: Sequence[Any]) -> None:
    """Load arrays given in ``module.state_dict()`` order, checking count and shapes."""
    state = module.state_dict()
    if len(weights) != len(state):
        raise WeightsError(
            f"set_weights: expected {len(state)} arrays (the module's state dict), got {len(weights)}"
        )
    new = {}
    for (key, ref), value in zip(state.items(), weights, strict=True):
        t = torch.as_tensor(np.asarray(value))
        if tuple(t.shape) != tuple(ref.shape):
            raise WeightsError(
                f"set_weights: {key} expects shape {tuple(ref.shape)}, got {tuple(t.shape)}"
            )
        new[key] = t.to(dtype=ref.dtype)
    module.load_state_dict(new)


class ModuleWeights:
    """Mixin: ``trainable``, ``weights``, ``get_weights``/``set_weights`` and ``count_params``
    for any object holding an ``nn.Module`` as ``self.module``."""

    module: nn.Module

    @property
    def trainable(self) -> bool:
        """True if every parameter requires gradients (False for a parameter-free module)."""
        params = list(self.module.parameters())
        return bool(params) and all(p.requires_grad for p in params)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for p in self.module.parameters():
            p.requires_grad_(bool(value))

    @property
    def weights(self) -> list[torch.Tensor]:
        """Every state-dict tensor (parameters and buffers), as live tensors."""
        return list(self.module.state_dict().values())

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every state-dict tensor (parameters and buffers) as NumPy arrays."""
        return [v.detach().cpu().numpy().copy() for v in self.module.state_dict().values()]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Load arrays in :meth:`get_weights` order."""
        load_weight_list(self.module, weights)

    def count_params(self) -> int:
        """Number of parameters (trainable and frozen; BN moving statistics are buffers and
        not counted, as Keras lists them separately)."""
        return sum(p.numel() for p in self.module.parameters())

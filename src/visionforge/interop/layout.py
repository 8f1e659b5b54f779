"""Channels-last (Keras) <-> channels-first (PyTorch) layout helpers.

Keras arrays are ``[B, H, W, C]`` images or ``[B, length, channels]`` signals; PyTorch
models take ``[B, C, H, W]`` / ``[B, C, L]``. These helpers are shared by the Keras
adapter and the engine bridge (which must not import each other).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from visionforge.errors import ConfigError

__all__ = [
    "to_channels_first",
    "to_channels_last",
    "as_float_tensor",
    "as_target_tensor",
    "check_layout",
    "LAYOUT_RANKS",
]

#: Batched tensor rank each contract layout expects (images may also be 5-D volumes).
LAYOUT_RANKS: dict[str, tuple[int, ...]] = {"NCHW": (4, 5), "NCL": (3,)}


def to_channels_first(x: torch.Tensor) -> torch.Tensor:
    """NHWC -> NCHW, NLC -> NCL and NDHWC -> NCDHW (a view); 2-D inputs pass through."""
    if x.dim() == 4:
        return x.permute(0, 3, 1, 2)
    if x.dim() == 3:
        return x.permute(0, 2, 1)
    if x.dim() == 5:
        return x.permute(0, 4, 1, 2, 3)
    return x


def to_channels_last(y: torch.Tensor) -> torch.Tensor:
    """NCHW -> NHWC and NCL -> NLC (a view); 2-D outputs pass through."""
    return y.movedim(1, -1) if y.dim() > 2 else y


def as_float_tensor(x: Any) -> torch.Tensor:
    """A NumPy array or tensor as a float32 tensor (float16/bfloat16 tensors are kept)."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if not t.is_floating_point() or t.dtype == torch.float64:
        t = t.float()
    return t


def as_target_tensor(y: Any, *, long_ints: bool = False) -> torch.Tensor:
    """Targets as a tensor: float64 -> float32; with ``long_ints`` small ints -> int64."""
    t = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
    if t.dtype == torch.float64:
        t = t.float()
    elif long_ints and t.dtype in (torch.int32, torch.int16, torch.uint8, torch.int8):
        t = t.long()
    return t


def check_layout(x: torch.Tensor, layout: str | None, *, who: str = "model") -> None:
    """Raise if a batch's rank does not fit the model's declared input ``layout``.

    ``layout=None`` (a foreign module with no declared contract) accepts any rank.
    """
    if layout is None or x.dim() in LAYOUT_RANKS[layout]:
        return
    expected = "[B, H, W, C] images" if layout == "NCHW" else "[B, length, channels] signals"
    raise ConfigError(
        f"{who} declares input layout {layout} and takes channels-last {expected}; got an "
        f"array of shape {tuple(x.shape)} (add the batch/channel axis, e.g. x[..., None])"
    )

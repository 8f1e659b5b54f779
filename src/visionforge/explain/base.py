"""Shared pieces of the explanation methods: hook/eval-mode context managers,
reduction of model outputs to per-class scores, target resolution and map normalisation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from visionforge.errors import VisionforgeError

__all__ = [
    "NotApplicableError",
    "forward_hook",
    "eval_mode",
    "select_output",
    "class_scores",
    "resolve_targets",
    "normalize_maps",
    "attribution_heatmap",
]

TargetClass = int | Sequence[int] | torch.Tensor | None


class NotApplicableError(VisionforgeError):
    """An explanation method does not apply to this model or input (the message says why)."""


@contextlib.contextmanager
def forward_hook(module: nn.Module, fn: Callable[..., Any]) -> Iterator[None]:
    """Register a forward hook for the duration of the ``with`` block, removing it on exit."""
    handle = module.register_forward_hook(fn)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def select_output(out: Any, output_key: str | None = None) -> torch.Tensor:
    """The tensor to explain from a model output (a multitask dict picks ``output_key``,
    else ``classification``)."""
    if isinstance(out, dict):
        key = output_key or ("classification" if "classification" in out else next(iter(out)))
        if key not in out:
            raise NotApplicableError(f"model output has no {key!r} entry (keys: {sorted(out)})")
        return out[key]
    if isinstance(out, tuple | list):
        return out[0]
    return out


def class_scores(out: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class scores ``[B, C]``: classification logits as they are; segmentation logits
    ``[B, C, H, W]`` summed over ``region`` (``[H, W]`` or ``[B, H, W]`` mask; whole image if None)."""
    if out.ndim == 2:
        return out
    if out.ndim == 4:
        if region is None:
            return out.sum(dim=(2, 3))
        region = region.to(out.device, out.dtype)
        if region.ndim == 2:
            region = region.unsqueeze(0)
        if region.shape[-2:] != out.shape[-2:]:
            raise ValueError(
                f"region shape {tuple(region.shape[-2:])} does not match output {tuple(out.shape[-2:])}"
            )
        return (out * region.unsqueeze(1)).sum(dim=(2, 3))
    raise NotApplicableError(f"cannot explain a model output of shape {tuple(out.shape)}")


def resolve_targets(scores: torch.Tensor, target_class: TargetClass) -> torch.Tensor:
    """Target class per sample: the predicted class when ``target_class`` is None."""
    b, c = scores.shape
    if target_class is None:
        t = scores.detach().argmax(dim=1)
    elif isinstance(target_class, int):
        t = torch.full((b,), int(target_class), dtype=torch.long)
    else:
        t = torch.as_tensor(target_class, dtype=torch.long).reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.numel() != b:
            raise ValueError(f"target_class has {t.numel()} entries for a batch of {b}")
    t = t.to(scores.device)
    if int(t.min()) < 0 or int(t.max()) >= c:
        raise ValueError(f"target_class must be in [0, {c - 1}], got {t.tolist()}")
    return t


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of a batch ``[B, ...]`` to [0, 1] (a constant map becomes 0)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo) / scale * (hi > lo)).reshape(maps.shape)


def attribution_heatmap(attr: torch.Tensor) -> torch.Tensor:
    """A ``[B, C, H, W]`` attribution as a ``[B, H, W]`` map in [0, 1] (|attr| summed over channels)."""
    return normalize_maps(attr.detach().abs().sum(dim=1))

"""Change the image size a dataset's transform produces, in place (progressive resizing).

torchvision ``v2`` transforms are ``nn.Module`` objects whose resizing steps keep their
output size in a ``size`` attribute read at call time, so setting that attribute on every
``Resize``/``RandomResizedCrop``/crop step changes the size of the next samples without
rebuilding the pipeline (user-given transforms keep their other steps). Lightning has no
progressive resizing of its own, hence this helper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torch.utils.data import Subset
from torchvision.transforms import v2

from visionforge.errors import ConfigError

__all__ = ["as_size", "set_image_size", "train_dataset_of", "RESIZING_STEPS"]

#: the v2 steps whose ``size`` decides the output size
RESIZING_STEPS = (v2.Resize, v2.RandomResizedCrop, v2.CenterCrop, v2.RandomCrop)


def as_size(size: int | Sequence[int]) -> list[int]:
    """``[height, width]`` of an int (square) or a pair; a clear error otherwise."""
    if isinstance(size, int) and not isinstance(size, bool):
        if size < 1:
            raise ConfigError(f"image size must be >= 1, got {size}")
        return [size, size]
    if isinstance(size, Sequence) and len(size) == 2 and all(
        isinstance(s, int) and s >= 1 for s in size
    ):
        return [int(size[0]), int(size[1])]
    raise ConfigError(f"image size must be an int or [height, width], got {size!r}")


def train_dataset_of(source: Any) -> Any:
    """The dataset with a ``transform`` behind a datamodule (its ``train_set``), a
    ``DataLoader`` (its ``dataset``) or ``Subset`` chains; ``None`` if there is none."""
    seen = 0
    obj = source
    while obj is not None and seen < 16:
        seen += 1
        if hasattr(obj, "transform") and not isinstance(obj, Subset):
            return obj
        if isinstance(obj, Subset):
            obj = obj.dataset
        elif hasattr(obj, "train_set"):
            if getattr(obj, "train_set", None) is None and hasattr(obj, "setup"):
                obj.setup("fit")
            obj = obj.train_set
        else:
            obj = getattr(obj, "dataset", None)
    return None


def _steps(transform: Any, depth: int = 0) -> list[Any]:
    """Every step inside ``transform``: ``Compose``/``RandomApply``/``RandomChoice`` keep
    theirs in a plain ``transforms`` list, not as sub-modules."""
    out = [transform]
    if depth > 8:
        return out
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, list | tuple):
        for t in inner:
            out.extend(_steps(t, depth + 1))
    elif isinstance(transform, nn.Module):
        for child in transform.children():
            out.extend(_steps(child, depth + 1))
    return out


def set_image_size(source: Any, size: int | Sequence[int]) -> int:
    """Set the output size of the resizing steps of ``source``'s training transform.

    ``source``: a datamodule, a ``DataLoader``, a dataset or a ``v2`` transform. Returns
    how many steps were changed (0: the transform has no resizing step, e.g. pre-sized
    arrays; the caller decides what to do then). A datamodule also records the size as
    ``image_size``.
    """
    hw = as_size(size)
    transform = source if isinstance(source, nn.Module) else None
    if transform is None:
        ds = train_dataset_of(source)
        transform = getattr(ds, "transform", None)
    changed = 0
    if transform is not None:
        steps = _steps(transform)
        rot90 = any(type(t).__name__ == "RandomRot90" for t in steps)
        resizes = sum(isinstance(t, RESIZING_STEPS) for t in steps)
        if rot90 and hw[0] != hw[1] and resizes < 2:
            # a quarter turn swaps height and width; the pipeline was built square
            raise ConfigError(f"image size {hw[0]}x{hw[1]}: this training transform turns "
                              "images by 90 degrees, so its size must stay square")
        for step in steps:
            if isinstance(step, RESIZING_STEPS):
                step.size = tuple(hw) if isinstance(step.size, tuple) else list(hw)
                changed += 1
    if hasattr(source, "train_set"):
        source.image_size = hw
    return changed

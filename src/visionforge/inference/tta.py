"""Test-time augmentation by flips: average the model's logits over flipped inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from visionforge.errors import ConfigError

__all__ = ["tta", "FLIPS"]

FLIPS = {"none": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}


def tta(
    fn: Callable[[np.ndarray], Any],
    x: np.ndarray,
    *,
    flips: Sequence[str] = ("none", "h", "v"),
) -> Any:
    """Mean of ``fn`` over flipped copies of the batch ``x`` ``[N, C, H, W]``.

    ``fn`` returns an array or a list of arrays (several outputs); the same comes back.

    Dense outputs (segmentation logits) are flipped back before averaging, so label
    maps stay aligned with the input; classification outputs are averaged as is.
    ``flips`` names from ``none``, ``h`` (horizontal), ``v`` (vertical), ``hv``.
    For signals ``h`` reverses time.
    """
    if not flips:
        raise ConfigError("tta needs at least one flip")
    total: list[np.ndarray] | None = None
    single = True
    for name in flips:
        if name not in FLIPS:
            raise ConfigError(f"unknown flip {name!r}; choose from {sorted(FLIPS)}")
        axes = FLIPS[name]
        if x.ndim == 3:  # signals [N, C, L]: only the time axis can flip
            axes = tuple(a for a in axes if a == -1)
        xi = np.flip(x, axes) if axes else x
        res = fn(np.ascontiguousarray(xi))
        single = not isinstance(res, list | tuple)
        outs = [np.asarray(o, np.float32) for o in ([res] if single else res)]
        # dense outputs (same rank as the input) are flipped back so they align with the input
        outs = [np.flip(o, axes) if (o.ndim == x.ndim and axes) else o for o in outs]
        total = outs if total is None else [t + o for t, o in zip(total, outs)]
    assert total is not None
    mean = [t / len(flips) for t in total]
    return mean[0] if single else mean

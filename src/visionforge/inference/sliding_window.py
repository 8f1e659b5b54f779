"""Sliding-window inference: tile a large image, run tiles in batches, blend the logits.

Written here rather than taken from MONAI to avoid a large dependency for ~80 lines and
to run any backend (PyTorch, ONNX Runtime) through a plain ``fn(batch) -> logits``.
Memory is bounded by ``tile_batch`` tiles in flight plus the output accumulator.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from visionforge.errors import ConfigError

__all__ = ["sliding_window_inference", "blend_weights", "tile_starts"]

BLENDS = ("gaussian", "linear", "constant")


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by ``overlap``."""
    if length <= tile:
        return [0]
    step = max(1, int(round(tile * (1 - overlap))))
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


@lru_cache(maxsize=16)
def blend_weights(
    tile_h: int, tile_w: int, mode: str = "gaussian", sigma_scale: float = 0.125
) -> np.ndarray:
    """Per-pixel weights ``[tile_h, tile_w]`` (> 0) that favour tile centres."""
    if mode == "constant":
        return np.ones((tile_h, tile_w), np.float32)
    if mode == "gaussian":

        def g(n: int) -> np.ndarray:
            x = np.arange(n, dtype=np.float64) - (n - 1) / 2
            return np.exp(-0.5 * (x / max(sigma_scale * n, 1e-6)) ** 2)

        w = np.outer(g(tile_h), g(tile_w))
    elif mode == "linear":

        def ramp(n: int) -> np.ndarray:
            x = np.arange(n, dtype=np.float64)
            return np.minimum(x + 1, n - x)

        w = np.outer(ramp(tile_h), ramp(tile_w))
    else:
        raise ConfigError(f"blend must be one of {BLENDS}, got {mode!r}")
    w = w / w.max()
    return np.maximum(w, 1e-3).astype(np.float32)  # keep borders of edge tiles usable


def sliding_window_inference(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    tile_size: int | tuple[int, int],
    *,
    overlap: float = 0.25,
    blend: str = "gaussian",
    tile_batch: int = 4,
    pad_value: float = 0.0,
) -> np.ndarray:
    """Blended logits ``[N, S, H, W]`` (or ``[S, H, W]`` for a ``[C, H, W]`` input).

    Args:
        image: model input(s), already preprocessed: ``[C, H, W]`` or ``[N, C, H, W]`` float32.
        fn: maps a tile batch ``[B, C, th, tw]`` to logits ``[B, S, th, tw]``.
        tile_size: tile height/width (an int for square tiles).
        overlap: fraction of a tile shared with its neighbour, in ``[0, 1)``.
        blend: ``gaussian`` (centre-weighted), ``linear`` (pyramid) or ``constant`` (mean).
        tile_batch: tiles per ``fn`` call; bounds the memory in flight.
        pad_value: value for padding images smaller than a tile.
    """
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if tile_batch < 1:
        raise ConfigError(f"tile_batch must be >= 1, got {tile_batch}")
    th, tw = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
    single = image.ndim == 3
    x = image[None] if single else image
    if x.ndim != 4:
        raise ConfigError(f"image must be [C, H, W] or [N, C, H, W], got shape {list(image.shape)}")
    n, c, h, w = x.shape
    ph, pw = max(h, th), max(w, tw)
    if (ph, pw) != (h, w):
        padded = np.full((n, c, ph, pw), pad_value, np.float32)
        padded[:, :, :h, :w] = x
        x = padded
    weights = blend_weights(th, tw, blend)
    coords = [(y, xx) for y in tile_starts(ph, th, overlap) for xx in tile_starts(pw, tw, overlap)]
    out: np.ndarray | None = None
    norm = np.zeros((ph, pw), np.float32)
    for y, xx in coords:
        norm[y : y + th, xx : xx + tw] += weights
    for i in range(n):
        for k in range(0, len(coords), tile_batch):
            chunk = coords[k : k + tile_batch]
            tiles = np.stack([x[i, :, y : y + th, xx : xx + tw] for y, xx in chunk])
            logits = np.asarray(fn(np.ascontiguousarray(tiles, dtype=np.float32)), np.float32)
            if logits.ndim != 4 or logits.shape[-2:] != (th, tw):
                raise ValueError(
                    f"fn must return [B, S, {th}, {tw}] logits, got {list(logits.shape)}"
                )
            if out is None:
                out = np.zeros((n, logits.shape[1], ph, pw), np.float32)
            for (y, xx), tile_logits in zip(chunk, logits):
                out[i, :, y : y + th, xx : xx + tw] += tile_logits * weights
    assert out is not None
    out /= norm
    out = out[:, :, :h, :w]
    return out[0] if single else out

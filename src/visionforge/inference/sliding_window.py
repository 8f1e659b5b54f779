"""Sliding-window inference: tile a large image, run tiles in batches, blend the logits.

Written here rather than taken from MONAI to avoid a large dependency for ~80 lines and
to run any backend (PyTorch, ONNX Runtime) through a plain ``fn(batch) -> logits``.
Memory is bounded by ``tile_batch`` tiles in flight plus the output accumulator;
:func:`stream_sliding_window` yields finished rows instead, holding one band of rows
(whole-slide inference, :mod:`visionforge.slides.segment`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache

import numpy as np

from visionforge.errors import ConfigError

__all__ = ["sliding_window_inference", "stream_sliding_window", "blend_weights", "tile_starts"]

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


def _tile_size(tile_size: int | tuple[int, int]) -> tuple[int, int]:
    return (tile_size, tile_size) if isinstance(tile_size, int) else (int(tile_size[0]), int(tile_size[1]))


def _check(overlap: float, tile_batch: int) -> None:
    if not 0 <= overlap < 1:
        raise ConfigError(f"overlap must be in [0, 1), got {overlap}")
    if tile_batch < 1:
        raise ConfigError(f"tile_batch must be >= 1, got {tile_batch}")


def _run_tiles(
    strip: np.ndarray, xs: list[int], fn: Callable[[np.ndarray], np.ndarray],
    tile: tuple[int, int], tile_batch: int,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None, pad_value: float = 0.0,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(x, logits [S, th, tw])`` for the tiles of one tile row, ``tile_batch`` per ``fn`` call.

    ``strip`` may be narrower or shorter than a tile (a small image): its tiles are prepared,
    then padded with ``pad_value`` to the tile size.
    """
    th, tw = tile
    for k in range(0, len(xs), tile_batch):
        chunk = xs[k : k + tile_batch]
        tiles = np.stack([strip[:, :, x : x + tw] for x in chunk])
        tiles = np.asarray(prepare(tiles) if prepare is not None else tiles, np.float32)
        if tiles.shape[-2:] != (th, tw):
            padded = np.full(tiles.shape[:2] + (th, tw), pad_value, np.float32)
            padded[:, :, : tiles.shape[2], : tiles.shape[3]] = tiles
            tiles = padded
        logits = np.asarray(fn(np.ascontiguousarray(tiles)), np.float32)
        if logits.ndim != 4 or logits.shape[-2:] != (th, tw) or len(logits) != len(chunk):
            raise ValueError(
                f"fn must return [{len(chunk)}, S, {th}, {tw}] logits, got {list(logits.shape)}"
            )
        yield from zip(chunk, logits)


def stream_sliding_window(
    shape: tuple[int, int],
    read_rows: Callable[[int, int], np.ndarray],
    fn: Callable[[np.ndarray], np.ndarray],
    tile_size: int | tuple[int, int],
    *,
    num_classes: int | None = None,
    overlap: float = 0.25,
    blend: str = "gaussian",
    tile_batch: int = 4,
    pad_value: float = 0.0,
    keep: Callable[[int, int], bool] | None = None,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Sliding-window inference streamed top to bottom over an image of ``shape=(H, W)``.

    Yields ``(y0, logit_sum [S, k, W], weight_sum [k, W])`` for rows ``y0 .. y0+k`` as soon as
    no later tile touches them, so only one band of ``tile`` rows of logits is ever held.
    The yielded arrays are views into that band, valid until the next step of the generator
    (the caller may change them in place, e.g. divide ``logit_sum`` by ``weight_sum``).
    Blended logits are ``logit_sum / weight_sum`` where ``weight_sum > 0``; a weight of 0 means
    no tile ran there (``keep(y, x)`` returned False for every tile covering the pixel).
    The tile grid, weights and summation order are those of :func:`sliding_window_inference`
    (which is this generator run over a whole array).

    Args:
        read_rows: ``(y0, y1) -> [C, y1 - y0, W]`` rows (``y1 <= H``): preprocessed float32,
            or raw (e.g. ``uint8``) when ``prepare`` is given.
        fn: tile batch ``[B, C, th, tw]`` -> logits ``[B, S, th, tw]``.
        num_classes: ``S``; needed only when ``keep`` may skip the first tiles.
        keep: ``(y, x) -> bool``: run the tile at ``(y, x)``? (default: every tile).
        prepare: raw tile batch ``[B, C, th, tw]`` -> float32 model input of the same shape,
            applied per tile batch, so no preprocessed (float32) copy of a whole row band is
            ever made: memory in flight is the raw band plus ``tile_batch`` tiles. It must be
            pixel-wise (normalisation, channel order) for the result to equal preprocessing the
            whole image first.
    """
    _check(overlap, tile_batch)
    th, tw = _tile_size(tile_size)
    h, w = int(shape[0]), int(shape[1])
    ph, pw = max(h, th), max(w, tw)
    weights = blend_weights(th, tw, blend)
    ys, xs = tile_starts(ph, th, overlap), tile_starts(pw, tw, overlap)
    # the band always starts at the current tile row: rows y .. y + th, reused in place
    acc = None if num_classes is None else np.zeros((num_classes, th, pw), np.float32)
    norm = np.zeros((th, pw), np.float32)
    for i, y in enumerate(ys):
        run = [x for x in xs if keep is None or keep(y, x)]
        if run:
            rows = read_rows(y, min(y + th, h))
            strip = rows if prepare is not None else np.asarray(rows, np.float32)
            for x, logits in _run_tiles(strip, run, fn, (th, tw), tile_batch, prepare, pad_value):
                if acc is None:
                    acc = np.zeros((logits.shape[0], th, pw), np.float32)
                acc[:, :, x : x + tw] += logits * weights
                norm[:, x : x + tw] += weights
        if acc is None:
            raise ConfigError("stream_sliding_window: pass num_classes= when keep() skips tiles")
        done = (ys[i + 1] if i + 1 < len(ys) else ph) - y  # rows no later tile touches
        k = max(0, min(done, h - y))
        if k:
            yield y, acc[:, :k, :w], norm[:k, :w]
        if done < th:  # shift the unfinished rows up; the band moves down by `done`
            acc[:, : th - done] = acc[:, done:]  # numpy copies overlapping slices safely
            norm[: th - done] = norm[done:]
        acc[:, th - done :] = 0
        norm[th - done :] = 0


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
    _check(overlap, tile_batch)
    single = image.ndim == 3
    x = image[None] if single else image
    if x.ndim != 4:
        raise ConfigError(f"image must be [C, H, W] or [N, C, H, W], got shape {list(image.shape)}")
    outs = []
    for img in x:
        blocks = [
            total / weight
            for _, total, weight in stream_sliding_window(
                img.shape[1:], lambda y0, y1, img=img: img[:, y0:y1], fn, tile_size,
                overlap=overlap, blend=blend, tile_batch=tile_batch, pad_value=pad_value,
            )
        ]
        outs.append(np.concatenate(blocks, axis=1))
    out = np.stack(outs)
    return out[0] if single else out

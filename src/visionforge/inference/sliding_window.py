"""Sliding-window inference: tile a large image, run tiles in batches, blend the logits.

Written here rather than taken from MONAI to avoid a large dependency for ~80 lines and
to run any backend (PyTorch, ONNX Runtime) through a plain ``fn(batch) -> logits``.
Memory is bounded by ``tile_batch`` tiles in flight plus the output accumulator;
:func:`stream_sliding_window` yields finished rows instead, holding one band of rows
(whole-slide inference, :mod:`visionforge.slides.segment`). Tile batches span tile rows, so a
narrow image still runs full batches (the batch size is what a CPU backend's speed hangs on).
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


class _Band:
    """Logit and weight sums for the image rows ``[top, top + len)``, grown on demand.

    Rows not yet summed into are zero; :meth:`drop` retires finished rows at the top and
    reuses their memory for rows further down (the arrays keep their size once grown).
    """

    def __init__(self, width: int, num_classes: int | None) -> None:
        self.top = 0
        self.width = width
        self.norm = np.zeros((0, width), np.float32)
        self.acc = None if num_classes is None else np.zeros((num_classes, 0, width), np.float32)

    def _ensure(self, rows: int, num_classes: int | None = None) -> None:
        if self.acc is None:
            if num_classes is None:
                raise ConfigError("stream_sliding_window: pass num_classes= when keep() skips tiles")
            self.acc = np.zeros((num_classes, len(self.norm), self.width), np.float32)
        have = len(self.norm)
        if rows > have:
            acc = np.zeros((self.acc.shape[0], rows, self.width), np.float32)
            norm = np.zeros((rows, self.width), np.float32)
            acc[:, :have], norm[:have] = self.acc, self.norm
            self.acc, self.norm = acc, norm

    def add(self, y: int, x: int, logits: np.ndarray, weights: np.ndarray) -> None:
        """Sum one tile's weighted logits ``[S, th, tw]`` in at image position ``(y, x)``."""
        th, tw = weights.shape
        r = y - self.top
        self._ensure(r + th, logits.shape[0])
        self.acc[:, r : r + th, x : x + tw] += logits * weights
        self.norm[r : r + th, x : x + tw] += weights

    def rows(self, y: int, k: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Views of the sums of image rows ``y .. y + k`` (columns ``:w``)."""
        r = y - self.top
        self._ensure(r + k)
        return self.acc[:, r : r + k, :w], self.norm[r : r + k, :w]

    def drop(self, n: int) -> None:
        """Retire the top ``n`` rows (finished and handed out)."""
        have = len(self.norm)
        n_in = min(n, have)
        if self.acc is not None and n_in:
            self.acc[:, : have - n_in] = self.acc[:, n_in:]  # numpy copies overlapping slices safely
            self.acc[:, have - n_in :] = 0
        self.norm[: have - n_in] = self.norm[n_in:]
        self.norm[have - n_in :] = 0
        self.top += n


def _run_batch(
    batch: list[tuple[int, int, np.ndarray]], fn: Callable[[np.ndarray], np.ndarray],
    tile: tuple[int, int], prepare: Callable[[np.ndarray], np.ndarray] | None,
    pad_value: float,
) -> np.ndarray:
    """Logits ``[B, S, th, tw]`` of one batch of ``(y, x, tile pixels)``.

    Tiles may be smaller than ``tile`` (an image smaller than a tile): they are prepared, then
    padded with ``pad_value`` to the tile size.
    """
    th, tw = tile
    tiles = np.stack([t for _, _, t in batch])
    tiles = np.asarray(prepare(tiles) if prepare is not None else tiles, np.float32)
    if tiles.shape[-2:] != (th, tw):
        padded = np.full(tiles.shape[:2] + (th, tw), pad_value, np.float32)
        padded[:, :, : tiles.shape[2], : tiles.shape[3]] = tiles
        tiles = padded
    logits = np.asarray(fn(np.ascontiguousarray(tiles)), np.float32)
    if logits.ndim != 4 or logits.shape[-2:] != (th, tw) or len(logits) != len(batch):
        raise ValueError(
            f"fn must return [{len(batch)}, S, {th}, {tw}] logits, got {list(logits.shape)}"
        )
    return logits


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

    Yields ``(y0, logit_sum [S, k, W], weight_sum [k, W])``, one block per tile row (rows
    ``y0 .. y0+k`` up to the next tile row), as soon as no later tile touches those rows.
    Tiles run in row-major order, ``tile_batch`` per ``fn`` call, and a batch may hold tiles
    of several tile rows (a 768² image in 256² tiles at overlap 0.25 has 4 tiles a row: batches
    of 8 take two rows, as MONAI's do). In memory: the pending batch (views into the raw rows
    of its tile rows) and one band of logits from the oldest unfinished row to the newest tile;
    a partial batch is run early rather than let that band grow past
    ``th * (1 + ceil(tile_batch / tiles per row))`` rows (tissue-sparse rows, see ``keep``).
    The yielded arrays are views into the band, valid until the next step of the generator
    (the caller may change them in place, e.g. divide ``logit_sum`` by ``weight_sum``).
    Blended logits are ``logit_sum / weight_sum`` where ``weight_sum > 0``; a weight of 0 means
    no tile ran there (``keep(y, x)`` returned False for every tile covering the pixel).
    Each pixel sums its tiles in row-major order whatever the batching, so the result is the
    same (bit for bit, for an ``fn`` whose tile outputs do not depend on the batch) as running
    one row at a time. :func:`sliding_window_inference` is this generator over a whole array.

    Args:
        read_rows: ``(y0, y1) -> [C, y1 - y0, W]`` rows (``y1 <= H``): preprocessed float32,
            or raw (e.g. ``uint8``) when ``prepare`` is given.
        fn: tile batch ``[B, C, th, tw]`` -> logits ``[B, S, th, tw]``.
        num_classes: ``S``; needed only when ``keep`` may skip the first tiles.
        keep: ``(y, x) -> bool``: run the tile at ``(y, x)``? (default: every tile).
        prepare: raw tile batch ``[B, C, th, tw]`` -> float32 model input of the same shape,
            applied per tile batch, so no preprocessed (float32) copy of a whole row band is
            ever made: memory in flight is the raw rows plus ``tile_batch`` tiles. It must be
            pixel-wise (normalisation, channel order) for the result to equal preprocessing the
            whole image first.
    """
    _check(overlap, tile_batch)
    th, tw = _tile_size(tile_size)
    h, w = int(shape[0]), int(shape[1])
    ph, pw = max(h, th), max(w, tw)
    ys, xs = tile_starts(ph, th, overlap), tile_starts(pw, tw, overlap)
    max_rows = th * (1 + -(-tile_batch // len(xs)))
    s = _Stream(ys, (h, w), (th, tw), _Band(pw, num_classes), blend_weights(th, tw, blend),
                lambda tiles: _run_batch(tiles, fn, (th, tw), prepare, pad_value))
    for i, y in enumerate(ys):
        if s.pending and y + th - ys[s.nxt] > max_rows:  # bound the band: run the partial batch
            s.run()
            yield from s.finished(y)
        run_xs = [x for x in xs if keep is None or keep(y, x)]
        if run_xs:
            rows = read_rows(y, min(y + th, h))
            strip = rows if prepare is not None else np.asarray(rows, np.float32)
            for x in run_xs:
                s.pending.append((y, x, strip[:, :, x : x + tw]))
                if len(s.pending) == tile_batch:
                    s.run()
        # rows before the next tile row are done unless a pending tile still covers them
        limit = ys[i + 1] if i + 1 < len(ys) else s.ph
        yield from s.finished(min(limit, s.pending[0][0]) if s.pending else limit)
    if s.pending:
        s.run()
    yield from s.finished(s.ph)


class _Stream:
    """State of :func:`stream_sliding_window`: the tiles awaiting a batch, the band of summed
    logits, and the first tile row not yet yielded."""

    def __init__(self, ys: list[int], hw: tuple[int, int], tile: tuple[int, int], band: _Band,
                 weights: np.ndarray, run_batch: Callable[[list], np.ndarray]) -> None:
        self.ys, (self.h, self.w), self.band, self.weights = ys, hw, band, weights
        self.ph = max(self.h, tile[0])
        self.run_batch = run_batch
        self.pending: list[tuple[int, int, np.ndarray]] = []  # (y, x, tile pixels)
        self.nxt = 0  # index in ys of the first tile row not yet yielded

    def run(self) -> None:
        """Run the pending tiles as one batch and add their logits to the band."""
        logits = self.run_batch(self.pending)
        for (y, x, _), lg in zip(self.pending, logits):
            self.band.add(y, x, lg, self.weights)
        self.pending.clear()

    def finished(self, limit: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield the tile rows that end at or before ``limit``, then retire them."""
        ys, start = self.ys, self.nxt
        while self.nxt < len(ys):
            y = ys[self.nxt]
            end = ys[self.nxt + 1] if self.nxt + 1 < len(ys) else self.ph
            if end > limit:
                break
            k = max(0, min(end - y, self.h - y))
            if k:
                yield (y, *self.band.rows(y, k, self.w))
            self.nxt += 1
        if self.nxt > start:
            self.band.drop((ys[self.nxt] if self.nxt < len(ys) else self.ph) - ys[start])


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

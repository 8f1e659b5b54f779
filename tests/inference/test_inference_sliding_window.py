"""Sliding-window blending and flip TTA."""

from __future__ import annotations

import numpy as np
import pytest

from visionforge.errors import ConfigError
from visionforge.inference import Predictor, blend_weights, sliding_window_inference, tta


@pytest.mark.parametrize("blend", ["gaussian", "linear", "constant"])
def test_identity_model_reconstructs_image(blend):
    rng = np.random.default_rng(0)
    img = rng.standard_normal((2, 3, 70, 53)).astype(np.float32)
    seen = []

    def fn(tiles):
        seen.append(len(tiles))
        return tiles * 2.0  # a "model" whose logits are the tile itself, scaled

    out = sliding_window_inference(img, fn, (32, 24), overlap=0.5, blend=blend, tile_batch=3)
    assert out.shape == img.shape
    np.testing.assert_allclose(out, img * 2.0, rtol=1e-5, atol=1e-5)
    assert max(seen) <= 3  # memory bounded by the tile batch


def test_small_image_is_padded_and_cropped():
    img = np.ones((3, 10, 12), np.float32)
    out = sliding_window_inference(img, lambda t: t[:, :2], 16, overlap=0.25)
    assert out.shape == (2, 10, 12) and np.allclose(out, 1)


def test_blend_weights_favour_centre():
    for mode in ("gaussian", "linear"):
        w = blend_weights(33, 33, mode)
        assert w[16, 16] == w.max() and w[0, 0] < w[16, 16] and w.min() > 0
    with pytest.raises(ConfigError):
        blend_weights(8, 8, "cubic")
    with pytest.raises(ConfigError, match="overlap"):
        sliding_window_inference(np.zeros((1, 8, 8), np.float32), lambda t: t, 4, overlap=1.0)


def test_tta_unflips_dense_outputs_and_averages():
    x = np.arange(2 * 1 * 4 * 5, dtype=np.float32).reshape(2, 1, 4, 5)
    dense = tta(lambda t: t * 3, x, flips=("none", "h", "v", "hv"))
    np.testing.assert_allclose(dense, x * 3)  # each flip undone, so the mean is the plain output
    # a position-sensitive classifier: the flipped inputs change its output; TTA averages them
    cls = tta(lambda t: t[:, :, 0, :1].reshape(len(t), 1), x, flips=("none", "h"))
    np.testing.assert_allclose(cls[:, 0], (x[:, 0, 0, 0] + x[:, 0, 0, -1]) / 2)
    with pytest.raises(ConfigError):
        tta(lambda t: t, x, flips=("diagonal",))


def test_predict_large_matches_whole_image_prediction(seg_dir):
    p = Predictor(seg_dir, backend="torch", batch_size=2)
    rng = np.random.default_rng(3)
    big = (rng.random((96, 80, 3)) * 255).astype(np.uint8)
    labels = p.predict_large(big, overlap=0.5, blend="gaussian", tile_batch=2)
    assert labels.shape == (96, 80)
    # the tiny model is fully convolutional: one pass over the whole image is the reference
    whole = Predictor(seg_dir, backend="torch", resize=False).predict(big)[0]
    assert (labels == whole).mean() > 0.9
    with_tta = p.predict_large(big, tta=True, blend="linear")
    assert with_tta.shape == (96, 80)


@pytest.mark.parametrize("shape", [(70, 90), (40, 30)])  # larger than a tile; narrower than one
def test_stream_prepare_per_tile_batch_equals_preprocessing_first(shape):
    """Raw uint8 rows prepared per tile batch give the logits of preprocessing the whole image
    first (including the padding of an image smaller than a tile)."""
    from visionforge.inference.sliding_window import stream_sliding_window

    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (3, *shape), dtype=np.uint8)

    def prepare(x: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) / 255.0 - 0.5) * 2.0

    def fn(x: np.ndarray) -> np.ndarray:  # mixes channels and neighbouring pixels
        return np.stack([x.sum(1), np.roll(x[:, 0], 1, axis=-1), x[:, 2] * x[:, 1]], axis=1)

    ref = sliding_window_inference(prepare(raw[None])[0], fn, 32, overlap=0.25, tile_batch=3)
    blocks = [total / weight for _, total, weight in stream_sliding_window(
        shape, lambda y0, y1: raw[:, y0:y1], fn, 32, overlap=0.25, tile_batch=3, prepare=prepare)]
    np.testing.assert_allclose(np.concatenate(blocks, axis=1), ref, rtol=1e-6, atol=1e-6)



def _brute_force(img, fn, th, tw, overlap, keep=None, num_classes=None):
    """Every tile alone, summed into whole-image arrays in row-major order."""
    from visionforge.inference.sliding_window import tile_starts

    _, h, w = img.shape
    weights = blend_weights(th, tw, "gaussian")
    acc, norm = None, np.zeros((h, w), np.float32)
    for y in tile_starts(h, th, overlap):
        for x in tile_starts(w, tw, overlap):
            if keep is not None and not keep(y, x):
                continue
            lg = np.asarray(fn(img[None, :, y : y + th, x : x + tw]), np.float32)[0]
            if acc is None:
                acc = np.zeros((lg.shape[0], h, w), np.float32)
            acc[:, y : y + th, x : x + tw] += lg * weights
            norm[y : y + th, x : x + tw] += weights
    if acc is None:
        acc = np.zeros((num_classes, h, w), np.float32)
    return acc, norm


@pytest.mark.parametrize("keep_all", [True, False])
def test_stream_batches_span_tile_rows_and_equal_brute_force(keep_all):
    """Batches take tiles of several tile rows (4 tiles a row, batches of 8), rows are still
    yielded one tile row at a time, and the sums equal tile-by-tile accumulation bit for bit."""
    from visionforge.inference.sliding_window import stream_sliding_window, tile_starts

    h, w, t = 100, 100, 32
    rng = np.random.default_rng(1)
    img = rng.standard_normal((2, h, w)).astype(np.float32)
    img[0] = np.arange(h, dtype=np.float32)[:, None] * 1000  # channel 0 encodes the row
    rows_in_batch = []

    def fn(x):
        rows_in_batch.append(sorted({int(v) // 1000 for v in x[:, 0, 0, 0]}))
        return np.stack([x[:, 1] * 3, np.roll(x[:, 1], 2, axis=-1), x[:, 1] ** 2], axis=1)

    keep = None if keep_all else (lambda y, x: (y // 8 + x // 8) % 3 != 0)
    ys = tile_starts(h, t, 0.25)
    assert len(tile_starts(w, t, 0.25)) == 4 and len(ys) == 4
    got = [(y0, a.copy(), n.copy()) for y0, a, n in stream_sliding_window(  # views: copy now
        (h, w), lambda y0, y1: img[:, y0:y1], fn, t, overlap=0.25, tile_batch=8, keep=keep,
        num_classes=3)]
    assert [y0 for y0, _, _ in got] == ys  # one block per tile row, in order
    assert any(len(r) > 1 for r in rows_in_batch)  # a batch spans tile rows
    if keep_all:
        assert all(len(r) == 2 for r in rows_in_batch) and len(rows_in_batch) == 2
    acc = np.concatenate([a for _, a, _ in got], axis=1)
    norm = np.concatenate([n for _, _, n in got], axis=0)
    ref_acc, ref_norm = _brute_force(img, fn, t, t, 0.25, keep, 3)
    np.testing.assert_array_equal(acc, ref_acc)
    np.testing.assert_array_equal(norm, ref_norm)


def test_stream_sparse_rows_keep_the_band_bounded():
    """One tile every few rows (tissue-sparse slide): partial batches run early instead of
    holding the band open; the result still equals the brute-force sums."""
    from visionforge.inference.sliding_window import stream_sliding_window

    h, w, t = 400, 64, 16
    img = np.random.default_rng(2).standard_normal((1, h, w)).astype(np.float32)
    calls = []

    def fn(x):
        calls.append(len(x))
        return np.concatenate([x, -x], axis=1)

    def keep(y, x):
        return x == 0 and y % 96 == 0

    heights = []
    blocks = []
    for _, a, n in stream_sliding_window((h, w), lambda y0, y1: img[:, y0:y1], fn, t,
                                         overlap=0.25, tile_batch=8, keep=keep, num_classes=2):
        blocks.append((a.copy(), n.copy()))
    gen = stream_sliding_window((h, w), lambda y0, y1: img[:, y0:y1], fn, t, overlap=0.25,
                                tile_batch=8, keep=keep, num_classes=2)
    for _ in gen:
        heights.append(len(gen.gi_frame.f_locals["s"].band.norm))
    # 5 tiles a row, batches of 8: the band may reach t * (1 + ceil(8 / 5)) rows, not the
    # 400 rows from the first kept tile to the last that waiting for a full batch would take
    assert max(heights) <= t * 3 and calls == [1] * 10  # 5 kept tiles, each run alone, twice
    acc = np.concatenate([a for a, _ in blocks], axis=1)
    norm = np.concatenate([n for _, n in blocks], axis=0)
    ref_acc, ref_norm = _brute_force(img, fn, t, t, 0.25, keep, 2)
    np.testing.assert_array_equal(acc, ref_acc)
    np.testing.assert_array_equal(norm, ref_norm)

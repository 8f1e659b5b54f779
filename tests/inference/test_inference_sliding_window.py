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

"""Median-frequency and inverse-frequency class weights on hand-computed data."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from visionforge.engine.class_weights import (
    classification_class_weights,
    segmentation_class_weights,
)
from visionforge.errors import DataError


def _masks():
    # 3 masks of 10 pixels, 4 classes.
    m1 = np.array([0] * 9 + [1])  # class 0: 9, class 1: 1
    m2 = np.array([0] * 5 + [2] * 5)  # class 0: 5, class 2: 5
    m3 = np.array([0] * 8 + [1] + [3])  # class 0: 8, class 1: 1, class 3: 1
    return [m.reshape(2, 5) for m in (m1, m2, m3)]


def test_median_frequency_by_hand():
    # freq_0 = 22/30, freq_1 = 2/20 = 0.1, freq_2 = 5/10 = 0.5, freq_3 = 1/10 = 0.1
    # median = (0.1 + 0.5) / 2 = 0.3 -> weights 0.3/(22/30), 3, 0.6, 3
    w = segmentation_class_weights(_masks(), 4)
    np.testing.assert_allclose(w, [0.3 / (22 / 30), 3.0, 0.6, 3.0], rtol=1e-12)


def test_clipping_to_range():
    # class 0 frequent everywhere, class 1 rare, class 2 medium -> extreme ratios
    masks = [np.array([[0] * 999 + [1]]), np.array([[0] * 500 + [2] * 500])]
    # freq_0 = 1499/2000, freq_1 = 0.001, freq_2 = 0.5 -> median 0.5
    w = segmentation_class_weights(masks, 3)
    np.testing.assert_allclose(w, [0.5 / (1499 / 2000), 10.0, 1.0])  # 500 clipped to 10
    w_low = segmentation_class_weights(masks, 3, clip=(0.9, 100.0))
    assert w_low[0] == pytest.approx(0.9)  # 0.667 clipped up to 0.9
    assert w_low[1] == pytest.approx(100.0)


def test_mask_folder_png_and_tiff(tmp_path):
    import tifffile

    m1, m2, m3 = _masks()
    Image.fromarray(m1.astype(np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(m2.astype(np.uint8)).save(tmp_path / "b.png")
    tifffile.imwrite(tmp_path / "c.tif", m3.astype(np.uint16))
    (tmp_path / "notes.txt").write_text("ignored")
    np.testing.assert_allclose(
        segmentation_class_weights(tmp_path, 4), segmentation_class_weights(_masks(), 4)
    )


def test_absent_class_ignore_index_and_errors(tmp_path, caplog):
    masks = [np.array([[0, 0, 1, 255]])]
    w = segmentation_class_weights(masks, 3, ignore_index=255)
    # freq_0 = 2/3, freq_1 = 1/3, median 0.5; class 2 absent -> 1.0
    np.testing.assert_allclose(w, [0.75, 1.5, 1.0])
    assert "never occur" in caplog.text
    with pytest.raises(DataError, match="outside 0..2"):
        segmentation_class_weights(masks, 3)
    with pytest.raises(DataError, match="does not exist"):
        segmentation_class_weights(tmp_path / "missing", 3)
    with pytest.raises(DataError, match="holds no masks"):
        segmentation_class_weights(tmp_path, 3)
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="rgb.png"):
        segmentation_class_weights(tmp_path, 3)


def test_classification_weights_match_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3])
    w = classification_class_weights(labels, 4)
    np.testing.assert_allclose(w, compute_class_weight("balanced", classes=np.arange(4), y=labels))
    assert (w[labels].mean()) == pytest.approx(1.0)  # loss scale unchanged
    # A class with no samples: the others are sklearn's weights over the present classes
    # (so the count-weighted mean stays 1), the absent one 1.0.
    w_missing = classification_class_weights([0, 0, 1], 3)
    np.testing.assert_allclose(w_missing, [3 / (2 * 2), 3 / (2 * 1), 1.0])
    assert w_missing[[0, 0, 1]].mean() == pytest.approx(1.0)
    with pytest.raises(DataError, match="outside"):
        classification_class_weights([0, 5], 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_median_frequency_matches_sklearn_derived_numbers(seed):
    """Median-frequency rule against numbers derived from sklearn's "balanced" weights.

    When every mask contains every present class, ``freq_c = count_c / N``; sklearn's
    balanced weight is ``b_c = N / (K * count_c)``, so ``freq_c = 1 / (K * b_c)`` and the
    median-frequency weight is ``median(freq) / freq_c``. Class 4 never occurs: weight 1.0.
    """
    from sklearn.utils.class_weight import compute_class_weight

    rng = np.random.default_rng(seed)
    present = np.arange(4)
    masks = []
    for _ in range(3):
        m = rng.choice(present, size=(6, 7), p=[0.6, 0.25, 0.1, 0.05])
        m.flat[:4] = present  # every mask holds every present class
        masks.append(m)
    y = np.concatenate([m.ravel() for m in masks])
    b = compute_class_weight("balanced", classes=present, y=y)
    freq = 1.0 / (len(present) * b)
    expected = np.append(np.median(freq) / freq, 1.0)
    got = segmentation_class_weights(masks, 5, clip=(0.0, np.inf))
    np.testing.assert_allclose(got, expected, rtol=1e-12)

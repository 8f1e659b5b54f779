"""Metric cross-checks against scikit-learn on random data, streaming vs one-shot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from visionforge.evaluation import (
    ClassificationMetrics,
    SegmentationMetrics,
    binary_rates,
    datapoint_metrics,
    event_metrics,
    signal_metrics,
    threshold_sweep,
)


def _random_cls(n=300, c=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, c, (n,), generator=g)
    logits = torch.randn(n, c, generator=g) + 1.5 * torch.nn.functional.one_hot(targets, c)
    return logits, targets


def test_classification_metrics_match_sklearn():
    logits, targets = _random_cls()
    m = ClassificationMetrics(7)
    m.update(logits, targets)
    r = m.compute()
    y, probs = targets.numpy(), logits.softmax(1).numpy()
    pred = probs.argmax(1)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert r["top5_accuracy"] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=5))
    for key, fn in (
        ("precision", skm.precision_score),
        ("recall", skm.recall_score),
        ("f1", skm.f1_score),
    ):
        ref = fn(y, pred, average=None, labels=range(7), zero_division=0)
        np.testing.assert_allclose(r["per_class"][key], ref, atol=1e-6)
        assert r[f"{key}_macro"] == pytest.approx(ref.mean(), abs=1e-6)
    assert r["roc_auc_macro"] == pytest.approx(
        skm.roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=1e-5
    )
    np.testing.assert_allclose(
        r["per_class"]["roc_auc"],
        [skm.roc_auc_score(y == c, probs[:, c]) for c in range(7)],
        atol=1e-5,
    )
    np.testing.assert_array_equal(
        r["confusion_matrix"], skm.confusion_matrix(y, pred, labels=range(7))
    )


def test_classification_streaming_equals_one_shot_and_reset():
    logits, targets = _random_cls(seed=1)
    one = ClassificationMetrics(7)
    one.update(logits, targets)
    stream = ClassificationMetrics(7)
    for chunk in range(0, 300, 37):
        stream.update(logits[chunk : chunk + 37], targets[chunk : chunk + 37])
    a, b = one.compute(), stream.compute()
    for key in ("accuracy", "top5_accuracy", "f1_macro", "roc_auc_macro"):
        assert a[key] == pytest.approx(b[key])
    assert a["confusion_matrix"] == b["confusion_matrix"]
    stream.reset()
    with pytest.raises(ValueError):
        stream.compute()


def test_classification_small_and_hard_labels():
    # 3 classes: no top-5; probabilities are used as given; a missing class gives NaN AUC.
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]])
    targets = torch.tensor([0, 1, 1, 1])
    m = ClassificationMetrics(3, class_names=["a", "b", "c"])
    m.update(probs, targets)
    r = m.compute()
    assert "top5_accuracy" not in r
    assert r["accuracy"] == pytest.approx(0.75)
    assert math.isnan(r["per_class"]["roc_auc"][2])
    assert r["roc_auc_macro"] == pytest.approx(
        np.mean([skm.roc_auc_score(targets == c, probs[:, c]) for c in (0, 1)])
    )
    hard = ClassificationMetrics(3)
    hard.update(probs.argmax(1), targets)
    assert hard.compute()["accuracy"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="columns"):
        m.update(torch.rand(2, 4), torch.tensor([0, 1]))


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_segmentation_metrics_match_sklearn_streaming(ignore_index):
    g = torch.Generator().manual_seed(2)
    c = 4
    targets = torch.randint(0, c, (6, 16, 16), generator=g)
    logits = torch.randn(6, c, 16, 16, generator=g) + 2 * torch.nn.functional.one_hot(
        targets, c
    ).permute(0, 3, 1, 2)
    if ignore_index is not None:
        targets[:, :3] = ignore_index
    m = SegmentationMetrics(c, ignore_index=ignore_index)
    for i in range(0, 6, 2):  # streaming over batches
        m.update(logits[i : i + 2], targets[i : i + 2])
    r = m.compute()
    y, p = targets.reshape(-1).numpy(), logits.argmax(1).reshape(-1).numpy()
    keep = y != ignore_index if ignore_index is not None else np.ones_like(y, bool)
    y, p = y[keep], p[keep]
    np.testing.assert_allclose(
        r["per_class_iou"], skm.jaccard_score(y, p, average=None, labels=range(c))
    )
    np.testing.assert_allclose(
        r["per_class_dice"], skm.f1_score(y, p, average=None, labels=range(c))
    )
    assert r["mean_iou"] == pytest.approx(skm.jaccard_score(y, p, average="macro"))
    assert r["pixel_accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert r["num_pixels"] == y.size
    one = SegmentationMetrics(c, ignore_index=ignore_index)
    one.update(logits.argmax(1), targets)  # label maps instead of logits, all at once
    assert one.compute()["confusion_matrix"] == r["confusion_matrix"]


def test_segmentation_absent_class_is_nan_and_excluded():
    m = SegmentationMetrics(3)
    t = torch.zeros(1, 4, 4, dtype=torch.long)
    t[0, :2] = 1
    m.update(t.clone(), t)
    r = m.compute()
    assert math.isnan(r["per_class_iou"][2])
    assert r["mean_iou"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        m.update(torch.zeros(1, 3, 3, dtype=torch.long), t)


def test_binary_rates_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    probs = np.clip(0.35 * y + rng.random(500) * 0.7, 0, 1)
    for th in (0.2, 0.5, 0.8):
        r = datapoint_metrics(probs, y, th)
        pred = probs >= th
        tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
        assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (tp, fp, tn, fn)
        assert r["tpr"] == pytest.approx(skm.recall_score(y, pred))
        assert r["fpr"] == pytest.approx(1 - skm.recall_score(y, pred, pos_label=0))
        assert r["ppv"] == pytest.approx(skm.precision_score(y, pred))
        assert r["npv"] == pytest.approx(skm.precision_score(y, pred, pos_label=0))
        assert r["f1"] == pytest.approx(skm.f1_score(y, pred))
    # [N, C] probabilities pick the positive column
    two = np.stack([1 - probs, probs], 1)
    assert datapoint_metrics(two, y)["f1"] == pytest.approx(datapoint_metrics(probs, y)["f1"])
    assert math.isnan(binary_rates([0, 0], [0, 0])["tpr"])


def test_event_metrics_hand_built_case():
    # events: A (seizure; one window crosses 0.5), B (seizure; never crosses),
    # C (non-seizure; one false-alarm window), D (non-seizure; quiet)
    ids = ["A", "A", "A", "B", "B", "C", "C", "D", "D"]
    labels = [1, 1, 1, 1, 1, 0, 0, 0, 0]
    probs = [0.1, 0.7, 0.2, 0.3, 0.4, 0.6, 0.1, 0.2, 0.1]
    ev = event_metrics(probs, labels, ids, threshold=0.5)
    assert (ev["tp"], ev["fn"], ev["fp"], ev["tn"]) == (1, 1, 1, 1)
    assert ev["tpr"] == 0.5 and ev["fpr"] == 0.5 and ev["num_events"] == 4
    dp = datapoint_metrics(probs, labels, 0.5)
    assert (dp["tp"], dp["fn"], dp["fp"], dp["tn"]) == (1, 4, 1, 3)
    sweep = threshold_sweep(probs, labels, ids)
    assert [r["threshold"] for r in sweep] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    by_th = {r["threshold"]: r for r in sweep}
    assert by_th[0.4]["event"]["tpr"] == 1.0  # B's 0.4 window now counts
    assert by_th[0.8]["event"]["tp"] == 0 and by_th[0.8]["event"]["fp"] == 0
    # event sensitivity is never below datapoint sensitivity
    assert all(r["event"]["tpr"] >= r["datapoint"]["tpr"] for r in sweep)


def test_signal_metrics_without_positive_windows_are_nan_not_zero():
    # No seizure windows at all: sensitivity (and PPV when nothing is predicted positive) is
    # undefined, reported as NaN like sklearn's zero_division=np.nan, never a silent 0.0.
    labels = np.zeros(6, dtype=int)
    probs = np.array([0.1, 0.9, 0.2, 0.3, 0.6, 0.1])
    ids = ["a", "a", "b", "b", "c", "c"]
    dp = datapoint_metrics(probs, labels, 0.5)
    assert dp["tp"] == dp["fn"] == 0 and math.isnan(dp["tpr"])
    assert dp["fpr"] == pytest.approx(2 / 6) and dp["ppv"] == 0.0  # 0 of 2 alarms were right
    nan_tpr = skm.recall_score(labels, probs >= 0.5, zero_division=np.nan)
    assert math.isnan(nan_tpr)
    ev = event_metrics(probs, labels, ids, 0.5)
    assert math.isnan(ev["tpr"]) and ev["fpr"] == pytest.approx(2 / 3)
    quiet = datapoint_metrics(np.zeros(4), np.zeros(4, dtype=int), 0.5)
    assert math.isnan(quiet["tpr"]) and math.isnan(quiet["ppv"]) and quiet["fpr"] == 0.0
    full = signal_metrics(probs, labels, ids)
    assert all(math.isnan(row["event"]["tpr"]) for row in full["sweep"])

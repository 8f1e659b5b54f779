"""Datapoint- and event-level metrics for binary signal classifiers (seizure detection).

Follows nnTraining2's definitions: a *datapoint* is one window; an *event* groups
the windows sharing an event id. An event is truly positive when any of its
windows is labelled positive, and predicted positive when its highest window
probability reaches the threshold (equivalently: any window predicted positive).
Written by hand because these event-level rules are domain specific; the
datapoint counts are cross-checked against scikit-learn in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_THRESHOLDS",
    "binary_rates",
    "datapoint_metrics",
    "event_metrics",
    "group_events",
    "threshold_sweep",
    "signal_metrics",
]

DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))


def _safe_div(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def binary_rates(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """Counts and TPR, FPR, TNR, PPV, NPV, F1, accuracy of binary labels/predictions.

    TPR is sensitivity; FPR is the false alarm rate (1 - specificity). Undefined
    ratios (zero denominator) are NaN.
    """
    t = np.asarray(y_true).astype(bool).reshape(-1)
    p = np.asarray(y_pred).astype(bool).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} labels but {p.size} predictions")
    tp = int(np.sum(t & p))
    fp = int(np.sum(~t & p))
    tn = int(np.sum(~t & ~p))
    fn = int(np.sum(t & ~p))
    ppv = _safe_div(tp, tp + fp)
    tpr = _safe_div(tp, tp + fn)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "tpr": tpr,
        "fpr": _safe_div(fp, fp + tn),
        "tnr": _safe_div(tn, fp + tn),
        "ppv": ppv,
        "npv": _safe_div(tn, tn + fn),
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "accuracy": _safe_div(tp + tn, t.size),
    }


def _positive_probs(probs: np.ndarray, positive_class: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 2:
        probs = probs[:, positive_class]
    if probs.ndim != 1:
        raise ValueError(f"probs must be [N] or [N, C], got shape {probs.shape}")
    return probs


def datapoint_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    threshold: float = 0.5,
    positive_class: int = 1,
) -> dict[str, float]:
    """Window-level rates: a window is positive when its positive-class probability >= threshold.

    ``probs`` is ``[N]`` (positive-class probability) or ``[N, C]``; ``labels`` ``[N]``
    (a label equal to ``positive_class`` is positive).
    """
    p = _positive_probs(probs, positive_class)
    y = np.asarray(labels).reshape(-1) == positive_class
    return binary_rates(y, p >= threshold)


def group_events(
    probs: np.ndarray,
    labels: np.ndarray,
    event_ids: Sequence[Any] | np.ndarray,
    positive_class: int = 1,
) -> dict[str, Any]:
    """Per-event max probability and truth: ``{"event_ids", "max_prob", "label"}`` arrays."""
    p = _positive_probs(probs, positive_class)
    y = np.asarray(labels).reshape(-1) == positive_class
    ids = np.asarray([str(e) for e in event_ids])
    if not (p.size == y.size == ids.size):
        raise ValueError(
            f"{p.size} probabilities, {y.size} labels and {ids.size} event ids differ in length"
        )
    uniq, inverse = np.unique(ids, return_inverse=True)
    max_prob = np.full(uniq.size, -np.inf)
    np.maximum.at(max_prob, inverse, p)
    label = np.zeros(uniq.size, dtype=bool)
    np.logical_or.at(label, inverse, y)
    return {"event_ids": uniq, "max_prob": max_prob, "label": label}


def event_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    event_ids: Sequence[Any] | np.ndarray,
    threshold: float = 0.5,
    positive_class: int = 1,
) -> dict[str, float]:
    """Event-level rates: an event is predicted positive if any window reaches ``threshold``."""
    ev = group_events(probs, labels, event_ids, positive_class)
    out = binary_rates(ev["label"], ev["max_prob"] >= threshold)
    out["num_events"] = int(ev["label"].size)
    return out


def threshold_sweep(
    probs: np.ndarray,
    labels: np.ndarray,
    event_ids: Sequence[Any] | np.ndarray | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    positive_class: int = 1,
) -> list[dict[str, Any]]:
    """Datapoint (and, with ``event_ids``, event) metrics at each threshold (default 0.1..0.9)."""
    rows = []
    for th in thresholds:
        row: dict[str, Any] = {
            "threshold": float(th),
            "datapoint": datapoint_metrics(probs, labels, th, positive_class),
        }
        if event_ids is not None:
            row["event"] = event_metrics(probs, labels, event_ids, th, positive_class)
        rows.append(row)
    return rows


def signal_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    event_ids: Sequence[Any] | np.ndarray | None = None,
    threshold: float = 0.5,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    positive_class: int = 1,
) -> dict[str, Any]:
    """All signal metrics: datapoint (+ event) at ``threshold`` and the threshold sweep."""
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "datapoint": datapoint_metrics(probs, labels, threshold, positive_class),
    }
    if event_ids is not None:
        out["event"] = event_metrics(probs, labels, event_ids, threshold, positive_class)
    out["sweep"] = threshold_sweep(probs, labels, event_ids, thresholds, positive_class)
    return out

"""Event-level stratified splits: every window of an event stays on one side."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from visionforge.data.splits import stratified_assign
from visionforge.errors import DataError

__all__ = ["split_events", "split_by_event"]


def split_events(
    event_ids: Sequence[Any] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Window indices per split (``train``/``val``/``test``), stratified by event label.

    An event's label is the largest label of its windows (a seizure event is a
    seizure event even if some windows were labelled otherwise).
    """
    ids = np.asarray(event_ids)
    labels = np.asarray(labels)
    if len(ids) != len(labels):
        raise DataError(f"{len(ids)} event ids but {len(labels)} labels")
    uniq, inverse = np.unique(ids, return_inverse=True)
    ev_label = np.full(len(uniq), -1, dtype=np.int64)
    np.maximum.at(ev_label, inverse, labels.astype(np.int64))
    ev_split = np.asarray(stratified_assign(ev_label.tolist(), ratios, seed))
    window_split = ev_split[inverse]
    return {s: np.nonzero(window_split == s)[0] for s in ("train", "val", "test")}


def split_by_event(
    dataset: Any, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, Any]:
    """Split a :class:`SignalDataset` into ``{"train", "val", "test"}`` datasets by event."""
    idx = split_events(dataset.event_ids, dataset.labels, ratios, seed)
    return {s: dataset.subset(i) for s, i in idx.items() if len(i)}

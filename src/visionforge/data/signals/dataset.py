"""``SignalDataset``: fixed-length multichannel windows with labels and event ids."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from visionforge.errors import DataError
from visionforge.registry import DATASETS

__all__ = ["SignalDataset"]


@DATASETS.register("signals", aliases=("SignalDataset", "signal"))
class SignalDataset(Dataset):
    """Yields ``(window float32 [channels, length], label int64, event_id)``.

    ``event_id`` defaults to the window index (each window its own "event").
    ``transform`` (optional) maps a window tensor to a window tensor.
    """

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: Sequence[int] | np.ndarray | torch.Tensor,
        event_ids: Sequence[Any] | np.ndarray | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim == 2:  # [N, L] single channel
            x = x[:, None]
        if x.ndim != 3:
            raise DataError(
                f"signal windows must be [N, channels, length], got shape {tuple(x.shape)}"
            )
        y = torch.as_tensor(np.asarray(y)).long()
        if len(y) != len(x):
            raise DataError(f"{len(x)} windows but {len(y)} labels")
        if len(x) == 0:
            raise DataError("signal dataset is empty")
        self.x, self.y = x, y
        ids = np.arange(len(x)) if event_ids is None else np.asarray(event_ids)
        if len(ids) != len(x):
            raise DataError(f"{len(x)} windows but {len(ids)} event ids")
        self.event_ids = ids
        self.transform = transform
        n = int(y.max()) + 1
        self.class_names = (
            list(class_names) if class_names is not None else [str(i) for i in range(n)]
        )

    @classmethod
    def from_osdb(
        cls,
        source: str | os.PathLike[str] | Iterable[Mapping[str, Any]],
        label_map: Mapping[str, int] | None = None,
        **window_kwargs: Any,
    ) -> SignalDataset:
        """Windows from OSDB JSON file(s), a flat CSV, or a list of already loaded events."""
        from visionforge.data.signals.osdb import events_from_csv, load_osdb_events
        from visionforge.data.signals.windowing import windows_from_events

        if isinstance(source, str | os.PathLike):
            events = (
                events_from_csv(source)
                if str(source).lower().endswith(".csv")
                else load_osdb_events(source)
            )
        else:
            events = list(source)
        w = windows_from_events(events, label_map, **window_kwargs)
        ds = cls(w.x, w.y, w.event_ids)
        ds.stats = w.stats
        return ds

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        x = self.x[index]
        if self.transform is not None:
            x = self.transform(x)
        eid = self.event_ids[index]
        return x, self.y[index], eid.item() if hasattr(eid, "item") else eid

    @property
    def labels(self) -> np.ndarray:
        return self.y.numpy()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def length(self) -> int:
        return int(self.x.shape[2])

    def subset(self, indices: Sequence[int] | np.ndarray) -> SignalDataset:
        """A new dataset with the windows at ``indices``."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return SignalDataset(
            self.x[idx], self.y[idx], self.event_ids[idx.numpy()], self.transform, self.class_names
        )

    def __repr__(self) -> str:
        return (
            f"SignalDataset({len(self)} windows, {self.channels} channels x {self.length}, "
            f"{len(np.unique(self.event_ids))} events, classes={self.class_names})"
        )

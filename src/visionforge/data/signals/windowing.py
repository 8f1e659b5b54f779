"""Cutting OSDB events into fixed-length windows (the DeepEpiCnn input)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from visionforge.data.signals.osdb import event_label
from visionforge.errors import ConfigError, DataError

__all__ = ["CHANNEL_SETS", "Windows", "event_signal", "make_windows", "windows_from_events"]

CHANNEL_SETS = ("magnitude", "xyz", "magnitude+xyz")


@dataclass
class Windows:
    """Windows ``x [N, C, L]`` float32 with labels ``y [N]`` and ``event_ids [N]``."""

    x: np.ndarray
    y: np.ndarray
    event_ids: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)


def event_signal(event: Mapping[str, Any], channels: str = "magnitude") -> np.ndarray:
    """Concatenate an event's datapoints in time order into ``[C, samples]`` (milli-g)."""
    if channels not in CHANNEL_SETS:
        raise ConfigError(f"channels={channels!r}; choose one of {', '.join(CHANNEL_SETS)}")
    dps = sorted(event["datapoints"], key=lambda d: str(d.get("dataTime", "")))
    parts = []
    if channels in ("magnitude", "magnitude+xyz"):
        parts.append(
            np.concatenate([np.asarray(d["rawData"], dtype=np.float32) for d in dps])[None]
        )
    if channels in ("xyz", "magnitude+xyz"):
        try:
            xyz = np.concatenate(
                [np.asarray(d["rawData3D"], dtype=np.float32).reshape(-1, 3) for d in dps]
            )
        except (KeyError, TypeError, ValueError):
            xyz = None
        if xyz is None or (parts and xyz.shape[0] != parts[0].shape[1]):
            raise DataError(
                f"event {event.get('id')}: channels={channels!r} needs rawData3D in every datapoint"
            )
        parts.append(xyz.T)
    return np.concatenate(parts, axis=0)


def make_windows(signal: np.ndarray, window: int = 750, step: int = 125) -> np.ndarray:
    """Windows ``[W, C, window]`` with hop ``step`` (a signal shorter than ``window`` gives none)."""
    if window < 1 or step < 1:
        raise ConfigError(f"window and step must be >= 1, got {window}, {step}")
    c, n = signal.shape
    if n < window:
        return np.empty((0, c, window), dtype=np.float32)
    starts = np.arange(0, n - window + 1, step)
    view = np.lib.stride_tricks.sliding_window_view(
        signal, window, axis=1
    )  # [C, n-window+1, window]
    return np.ascontiguousarray(view[:, starts].transpose(1, 0, 2)).astype(np.float32)


def windows_from_events(
    events: Iterable[Mapping[str, Any]],
    label_map: Mapping[str, int] | None = None,
    window: int = 750,
    step: int = 125,
    channels: str = "magnitude",
    mg_to_g: bool = False,
    normalize: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Windows:
    """Window every labelled event.

    ``mg_to_g`` divides by 1000. ``normalize``: ``None``; ``"window"`` (each window,
    per channel, to zero mean / unit std); ``"global"`` (per channel with ``mean``/``std``,
    computed from these windows when not given; the values used are in ``stats`` so
    validation data can reuse them). Events whose type is not in ``label_map`` (and
    that carry no ``label`` key) are skipped, as are events shorter than one window.
    """
    xs, ys, ids = [], [], []
    short = []
    for ev in events:
        lab = ev.get("label") if "label" in ev else event_label(ev, label_map)
        if lab is None or int(lab) < 0:
            continue
        w = make_windows(event_signal(ev, channels), window, step)
        if len(w) == 0:
            short.append(ev.get("id"))
            continue
        xs.append(w)
        ys.extend([int(lab)] * len(w))
        ids.extend([ev["id"]] * len(w))
    if not xs:
        raise DataError(
            f"no windows: no labelled event is at least {window} samples long "
            f"({len(short)} too short); check label_map and window"
        )
    x = np.concatenate(xs)
    if mg_to_g:
        x /= 1000.0
    stats: dict[str, Any] = {"skipped_short_events": short}
    if normalize == "window":
        x = (x - x.mean(axis=2, keepdims=True)) / (x.std(axis=2, keepdims=True) + 1e-6)
    elif normalize == "global":
        m = np.asarray(mean, dtype=np.float32) if mean is not None else x.mean(axis=(0, 2))
        s = np.asarray(std, dtype=np.float32) if std is not None else x.std(axis=(0, 2))
        x = (x - m.reshape(1, -1, 1)) / (s.reshape(1, -1, 1) + 1e-6)
        stats.update(mean=m.tolist(), std=s.tolist())
    elif normalize is not None:
        raise ConfigError(f"normalize={normalize!r}; choose None, 'window' or 'global'")
    return Windows(x.astype(np.float32), np.asarray(ys, dtype=np.int64), np.asarray(ids), stats)

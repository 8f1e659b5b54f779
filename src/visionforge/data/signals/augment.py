"""Event-level augmentation and class balancing for seizure data (after nnTraining2).

All functions work on OSDB event dicts (before windowing), so copies are
whole events and an event-level split still keeps each copy with its original.
Apply them to the training split only.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from visionforge.data.signals.osdb import SAMPLES_PER_DATAPOINT, event_label
from visionforge.errors import ConfigError

__all__ = [
    "noise_copies",
    "phase_shift_copies",
    "oversample_events",
    "undersample_events",
    "balanced_sampler",
]


def _selected(events, label_map, labels):
    for ev in events:
        lab = ev.get("label") if "label" in ev else event_label(ev, label_map)
        if lab is not None and (labels is None or int(lab) in labels):
            yield ev, int(lab)


def noise_copies(
    events: Sequence[dict[str, Any]],
    factor: int = 2,
    sigma_mg: float = 10.0,
    labels: Sequence[int] | None = (1,),
    label_map: Mapping[str, int] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """``factor`` copies of each event with label in ``labels`` (default: seizures), with
    Gaussian noise of ``sigma_mg`` milli-g added to ``rawData`` (and ``rawData3D``)."""
    if factor < 0 or sigma_mg < 0:
        raise ConfigError("noise augmentation needs factor >= 0 and sigma_mg >= 0")
    rng = np.random.default_rng(seed)
    out = []
    for ev, _ in _selected(events, label_map, labels):
        for k in range(factor):
            new = copy.deepcopy(ev)
            new["id"] = f"{ev['id']}-noise{k + 1}"
            new["augmented"] = "noise"
            for dp in new["datapoints"]:
                dp["rawData"] = (
                    np.asarray(dp["rawData"]) + rng.normal(0, sigma_mg, len(dp["rawData"]))
                ).tolist()
                if dp.get("rawData3D"):
                    r3 = np.asarray(dp["rawData3D"])
                    dp["rawData3D"] = (r3 + rng.normal(0, sigma_mg, len(r3))).tolist()
            out.append(new)
    return out


def phase_shift_copies(
    events: Sequence[dict[str, Any]],
    factor: int = 4,
    labels: Sequence[int] | None = (1,),
    label_map: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """``factor`` copies of each selected event whose sample stream starts ``k * 125 / (factor+1)``
    samples later (k = 1..factor), re-cut into 125-sample datapoints, so windows land on
    new phases of the recording. The incomplete last datapoint is dropped."""
    if factor < 0:
        raise ConfigError("phase augmentation needs factor >= 0")
    n = SAMPLES_PER_DATAPOINT
    out = []
    for ev, _ in _selected(events, label_map, labels):
        dps = sorted(ev["datapoints"], key=lambda d: str(d.get("dataTime", "")))
        mag = np.concatenate([np.asarray(d["rawData"], dtype=float) for d in dps])
        has3d = all(d.get("rawData3D") for d in dps)
        xyz = (
            np.concatenate([np.asarray(d["rawData3D"], dtype=float) for d in dps])
            if has3d
            else None
        )
        for k in range(1, factor + 1):
            shift = k * n // (factor + 1)
            m = mag[shift:]
            count = len(m) // n
            if count == 0:
                continue
            new = {key: copy.deepcopy(v) for key, v in ev.items() if key != "datapoints"}
            new["id"] = f"{ev['id']}-phase{k}"
            new["augmented"] = "phase"
            new["datapoints"] = []
            for j in range(count):
                dp = {key: v for key, v in dps[j].items() if key not in ("rawData", "rawData3D")}
                dp["rawData"] = m[j * n : (j + 1) * n].tolist()
                if xyz is not None:
                    dp["rawData3D"] = xyz[3 * shift :][3 * j * n : 3 * (j + 1) * n].tolist()
                new["datapoints"].append(dp)
            out.append(new)
    return out


def _group(events, label_map):
    groups: dict[int, list[dict[str, Any]]] = {}
    for ev, lab in _selected(events, label_map, None):
        groups.setdefault(lab, []).append(ev)
    return groups


def oversample_events(
    events: Sequence[dict[str, Any]], label_map: Mapping[str, int] | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Randomly duplicate events of smaller classes until every class has as many events
    as the largest one. Returns the original events plus the duplicates (ids ``-os<k>``)."""
    rng = np.random.default_rng(seed)
    groups = _group(events, label_map)
    target = max(len(g) for g in groups.values())
    out = [ev for g in groups.values() for ev in g]
    for _lab, group in sorted(groups.items()):
        for k, i in enumerate(rng.integers(0, len(group), target - len(group))):
            new = copy.deepcopy(group[int(i)])
            new["id"] = f"{group[int(i)]['id']}-os{k + 1}"
            out.append(new)
    return out


def undersample_events(
    events: Sequence[dict[str, Any]], label_map: Mapping[str, int] | None = None, seed: int = 0
) -> list[dict[str, Any]]:
    """Randomly drop events of larger classes down to the size of the smallest class."""
    rng = np.random.default_rng(seed)
    groups = _group(events, label_map)
    target = min(len(g) for g in groups.values())
    out = []
    for _lab, group in sorted(groups.items()):
        keep = sorted(rng.choice(len(group), target, replace=False).tolist())
        out.extend(group[i] for i in keep)
    return out


def balanced_sampler(
    labels: Sequence[int] | np.ndarray, num_samples: int | None = None, seed: int | None = None
) -> Any:
    """A ``WeightedRandomSampler`` drawing every class equally often (weights 1 / class count)."""
    import torch
    from torch.utils.data import WeightedRandomSampler

    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels)
    weights = 1.0 / counts[labels]
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples or len(labels),
        replacement=True,
        generator=gen,
    )

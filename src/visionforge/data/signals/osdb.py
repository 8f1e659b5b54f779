"""OpenSeizureDetector (OSDB) event files: load, validate, label, flatten to CSV and back.

An OSDB file is a JSON array of events. Each event has ``id``, ``userId``, ``type``,
``subType``, ``dataTime``, ``sampleFreq`` (25 Hz) and ``datapoints``; each datapoint
has ``dataTime``, ``rawData`` (125 acceleration magnitudes in milli-g, i.e. 5 s),
optionally ``rawData3D`` (375 interleaved x, y, z values), ``hr``, ``o2Sat`` and
``alarmState``. The flat CSV has one row per datapoint::

    eventId,userId,typeStr,type,dataTime,osdAlarmState,hr,o2sat,M000..M124,X000..X124,Y000..Y124,Z000..Z124
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from visionforge.errors import DataError
from visionforge.io import atomic_write_text

__all__ = [
    "DEFAULT_LABEL_MAP",
    "SAMPLES_PER_DATAPOINT",
    "CSV_COLUMNS",
    "load_osdb_events",
    "validate_event",
    "event_label",
    "label_events",
    "events_to_csv",
    "events_from_csv",
]

SAMPLES_PER_DATAPOINT = 125
DEFAULT_LABEL_MAP: dict[str, int] = {"seizure": 1, "false alarm": 0, "nda": 0}
_META = ["eventId", "userId", "typeStr", "type", "dataTime", "osdAlarmState", "hr", "o2sat"]
CSV_COLUMNS = (
    _META
    + [f"M{i:03d}" for i in range(SAMPLES_PER_DATAPOINT)]
    + [f"{a}{i:03d}" for a in "XYZ" for i in range(SAMPLES_PER_DATAPOINT)]
)


def validate_event(event: Any, where: str = "event") -> dict[str, Any]:
    """Check one event's structure; raise :class:`DataError` naming ``where`` and the key."""
    if not isinstance(event, dict):
        raise DataError(f"{where}: an event must be a JSON object, got {type(event).__name__}")
    for key in ("id", "type", "datapoints"):
        if key not in event:
            raise DataError(f"{where}: event lacks required key {key!r}")
    name = f"{where} (id {event['id']})"
    dps = event["datapoints"]
    if not isinstance(dps, list) or not dps:
        raise DataError(f"{name}: 'datapoints' must be a non-empty list")
    for j, dp in enumerate(dps):
        raw = dp.get("rawData") if isinstance(dp, dict) else None
        if not isinstance(raw, list) or len(raw) != SAMPLES_PER_DATAPOINT:
            got = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise DataError(
                f"{name}: datapoint {j} 'rawData' must hold {SAMPLES_PER_DATAPOINT} samples, got {got}"
            )
        raw3d = dp.get("rawData3D")
        if raw3d not in (None, []) and (
            not isinstance(raw3d, list) or len(raw3d) != 3 * SAMPLES_PER_DATAPOINT
        ):
            raise DataError(
                f"{name}: datapoint {j} 'rawData3D' must hold {3 * SAMPLES_PER_DATAPOINT} "
                "interleaved x,y,z samples"
            )
    sf = event.get("sampleFreq", 25)
    if sf not in (None, 25):
        raise DataError(f"{name}: sampleFreq {sf} is not supported (OSDB data is 25 Hz)")
    return event


def load_osdb_events(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[dict[str, Any]]:
    """Load and validate events from one or more OSDB JSON files (arrays of events)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    events: list[dict[str, Any]] = []
    for path in paths:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{p}: OSDB file not found") from None
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: invalid JSON ({exc})") from None
        if isinstance(data, dict) and "events" in data:
            data = data["events"]
        if not isinstance(data, list):
            raise DataError(f"{p}: an OSDB file must contain a JSON array of events")
        for i, ev in enumerate(data):
            events.append(validate_event(ev, f"{p}: event {i}"))
    return events


def event_label(event: Mapping[str, Any], label_map: Mapping[str, int] | None = None) -> int | None:
    """Integer label from the event ``type`` (case-insensitive), or ``None`` when unmapped."""
    lm = {k.lower(): v for k, v in (label_map or DEFAULT_LABEL_MAP).items()}
    return lm.get(str(event.get("type", "")).strip().lower())


def label_events(
    events: Iterable[dict[str, Any]], label_map: Mapping[str, int] | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """``(events, labels)`` keeping only events whose type is in ``label_map``."""
    kept, labels = [], []
    for ev in events:
        lab = event_label(ev, label_map)
        if lab is not None:
            kept.append(ev)
            labels.append(lab)
    return kept, labels


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def events_to_csv(
    events: Iterable[dict[str, Any]],
    path: str | os.PathLike[str],
    label_map: Mapping[str, int] | None = None,
    include_unlabelled: bool = False,
) -> Path:
    """Flatten events to one CSV row per datapoint (``type`` = integer label, -1 if unmapped)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ev in events:
        lab = event_label(ev, label_map)
        if lab is None and not include_unlabelled:
            continue
        for dp in sorted(ev["datapoints"], key=lambda d: str(d.get("dataTime", ""))):
            raw3d = dp.get("rawData3D") or []
            xyz = [""] * (3 * SAMPLES_PER_DATAPOINT)
            if raw3d:  # interleaved x,y,z -> X..., Y..., Z...
                xyz = [_num(v) for a in range(3) for v in raw3d[a::3]]
            w.writerow(
                [
                    ev["id"],
                    _num(ev.get("userId")),
                    ev.get("type", ""),
                    -1 if lab is None else lab,
                    _num(dp.get("dataTime")),
                    _num(dp.get("alarmState")),
                    _num(dp.get("hr")),
                    _num(dp.get("o2Sat", dp.get("o2sat"))),
                ]
                + [_num(v) for v in dp["rawData"]]
                + xyz
            )
    return atomic_write_text(path, buf.getvalue())


def _parse(v: str) -> float | int | None:
    if v == "":
        return None
    f = float(v)
    return int(f) if f.is_integer() else f


def events_from_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Rebuild events (in file order) from a flat CSV written by :func:`events_to_csv`.

    Each event gets ``id``, ``userId``, ``type`` (the ``typeStr``), ``label`` (the integer
    ``type`` column) and ``datapoints`` with ``rawData`` / ``rawData3D`` / ``hr`` / ``o2Sat``
    / ``alarmState``.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: CSV file not found")
    events: dict[str, dict[str, Any]] = {}
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if (
            header is None
            or header[: len(_META)] != _META
            or len(header) < len(_META) + SAMPLES_PER_DATAPOINT
        ):
            raise DataError(
                f"{p}: not an OSDB flat CSV (expected columns {', '.join(_META)}, M000...)"
            )
        n = SAMPLES_PER_DATAPOINT
        has_xyz = len(header) >= len(_META) + 4 * n
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise DataError(f"{p}: line {line} has {len(row)} fields, expected {len(header)}")
            eid = row[0]
            ev = events.setdefault(
                eid,
                {
                    "id": _parse(eid) if eid.lstrip("-").isdigit() else eid,
                    "userId": _parse(row[1]),
                    "type": row[2],
                    "label": int(row[3]),
                    "sampleFreq": 25,
                    "datapoints": [],
                },
            )
            m0 = len(_META)
            try:
                raw = [float(v) for v in row[m0 : m0 + n]]
                xyz_cols = row[m0 + n : m0 + 4 * n] if has_xyz else []
                raw3d: list[float] = []
                if xyz_cols and all(v != "" for v in xyz_cols):
                    x, y, z = (list(map(float, xyz_cols[a * n : (a + 1) * n])) for a in range(3))
                    raw3d = [v for triple in zip(x, y, z) for v in triple]
            except ValueError as exc:
                raise DataError(f"{p}: line {line}: bad sample value ({exc})") from None
            ev["datapoints"].append(
                {
                    "dataTime": row[4],
                    "alarmState": _parse(row[5]),
                    "hr": _parse(row[6]),
                    "o2Sat": _parse(row[7]),
                    "rawData": raw,
                    "rawData3D": raw3d,
                }
            )
    return list(events.values())

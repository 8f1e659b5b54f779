"""OSDB events -> CSV -> windows, labels, event-level splits, augmentation, generic loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from visionforge.data.signals import (
    CSV_COLUMNS,
    SignalDataset,
    balanced_sampler,
    events_from_csv,
    events_to_csv,
    label_events,
    load_basic_motions,
    load_osdb_events,
    load_series,
    noise_copies,
    oversample_events,
    phase_shift_copies,
    split_by_event,
    split_events,
    undersample_events,
    windows_from_events,
)
from visionforge.errors import DataError


def make_event(eid, etype, n_dp=8, seed=0, with3d=True):
    """An OSDB-format event: n_dp datapoints of 125 milli-g samples (5 s at 25 Hz)."""
    rng = np.random.default_rng(seed)
    dps = []
    for j in range(n_dp):
        xyz = rng.normal(0, 300, (125, 3)).round(1)
        mag = np.sqrt((xyz**2).sum(1) + 1000.0**2).round(1)
        dp = {
            "dataTime": f"2024-01-01T00:{j // 12:02d}:{(j * 5) % 60:02d}Z",
            "rawData": mag.tolist(),
            "hr": 70 + j,
            "alarmState": j % 3,
            "o2Sat": 98,
        }
        if with3d:
            dp["rawData3D"] = xyz.reshape(-1).tolist()
        dps.append(dp)
    rng.shuffle(dps)  # files are not always in time order
    return {
        "id": eid,
        "userId": 39,
        "type": etype,
        "subType": "",
        "dataTime": "2024-01-01T00:00:00Z",
        "sampleFreq": 25,
        "datapoints": dps,
    }


@pytest.fixture
def events():
    types = ["Seizure"] * 3 + ["False Alarm"] * 4 + ["nda"] * 3 + ["Fall"]
    return [make_event(1000 + i, t, n_dp=8 + i % 3, seed=i) for i, t in enumerate(types)]


def test_data_osdb_round_trip_json_csv_windows(tmp_path, events):
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    loaded = load_osdb_events(path)
    assert len(loaded) == 11
    csv_path = events_to_csv(loaded, tmp_path / "flat.csv")
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header == CSV_COLUMNS and header[:8] == [
        "eventId",
        "userId",
        "typeStr",
        "type",
        "dataTime",
        "osdAlarmState",
        "hr",
        "o2sat",
    ]
    assert header[8] == "M000" and header[-1] == "Z124" and len(header) == 8 + 4 * 125
    back = events_from_csv(csv_path)
    assert len(back) == 10  # "Fall" is not in the default label map
    for kw in ({"channels": "magnitude"}, {"channels": "magnitude+xyz", "mg_to_g": True}):
        a = windows_from_events(loaded, **kw)
        b = windows_from_events(back, **kw)
        np.testing.assert_allclose(a.x, b.x, rtol=1e-6)
        assert a.y.tolist() == b.y.tolist() and a.event_ids.tolist() == b.event_ids.tolist()
    w = windows_from_events(loaded, channels="magnitude+xyz")
    assert w.x.shape[1:] == (4, 750) and w.x.dtype == np.float32
    # event with 8 datapoints = 1000 samples -> windows at 0,125,250 (750 + 2 * 125 <= 1000)
    assert (w.event_ids == 1000).sum() == 3
    # time order restored: the first window starts with the earliest datapoint
    first = sorted(events[0]["datapoints"], key=lambda d: d["dataTime"])[0]
    np.testing.assert_allclose(w.x[0, 0, :125], first["rawData"], rtol=1e-6)
    np.testing.assert_allclose(w.x[0, 1:, :125].T.reshape(-1), first["rawData3D"], rtol=1e-6)
    assert abs(windows_from_events(loaded, mg_to_g=True).x.mean() - 1.0) < 0.2  # ~1 g at rest
    normed = windows_from_events(loaded, normalize="global")
    assert abs(normed.x.mean()) < 1e-3 and len(normed.stats["mean"]) == 1


def test_data_osdb_labels_map_and_validation(tmp_path, events):
    kept, labels = label_events(events)
    assert len(kept) == 10 and labels.count(1) == 3 and labels.count(0) == 7
    kept, labels = label_events(events, {"seizure": 1, "fall": 2})
    assert sorted(set(labels)) == [1, 2] and len(kept) == 4
    bad = make_event(5, "seizure")
    bad["datapoints"][2]["rawData"] = bad["datapoints"][2]["rawData"][:100]
    (tmp_path / "bad.json").write_text(json.dumps([events[0], bad]))
    with pytest.raises(
        DataError, match=r"bad.json: event 1 \(id 5\): datapoint 2 'rawData' must hold 125"
    ):
        load_osdb_events(tmp_path / "bad.json")
    (tmp_path / "nokey.json").write_text(json.dumps([{"id": 1, "type": "seizure"}]))
    with pytest.raises(DataError, match="lacks required key 'datapoints'"):
        load_osdb_events(tmp_path / "nokey.json")
    with pytest.raises(DataError, match="rawData3D"):
        windows_from_events([make_event(9, "seizure", with3d=False)], channels="xyz")


def test_data_event_level_split_keeps_events_together(events):
    many = [make_event(i, "seizure" if i % 4 == 0 else "nda", n_dp=7, seed=i) for i in range(40)]
    ds = SignalDataset.from_osdb(many)
    assert ds.channels == 1 and ds.length == 750
    x, y, eid = ds[0]
    assert x.shape == (1, 750) and x.dtype == torch.float32 and y.dtype == torch.int64
    idx = split_events(ds.event_ids, ds.labels, (0.6, 0.2, 0.2), seed=1)
    groups = {s: set(ds.event_ids[i].tolist()) for s, i in idx.items()}
    assert not groups["train"] & groups["val"] and not groups["train"] & groups["test"]
    assert not groups["val"] & groups["test"]
    assert sum(len(i) for i in idx.values()) == len(ds)
    for s in ("train", "val", "test"):  # stratified at event level: seizures on every side
        assert 1 in ds.labels[idx[s]]
    assert len(groups["train"]) == 24
    parts = split_by_event(ds, (0.6, 0.2, 0.2), seed=1)
    assert len(parts["train"]) == len(idx["train"])
    again = split_events(ds.event_ids, ds.labels, (0.6, 0.2, 0.2), seed=1)
    assert all(np.array_equal(again[s], idx[s]) for s in idx)


def test_data_augmentation_counts_and_balancing(events):
    noisy = noise_copies(events, factor=2, sigma_mg=20, seed=0)
    assert len(noisy) == 6 and all(e["type"] == "Seizure" for e in noisy)
    assert noisy[0]["id"] == "1000-noise1"
    diff = np.asarray(noisy[0]["datapoints"][0]["rawData"]) - np.asarray(
        events[0]["datapoints"][0]["rawData"]
    )
    assert 10 < diff.std() < 30
    phased = phase_shift_copies(events, factor=4)
    assert len(phased) == 12
    n0 = len(events[0]["datapoints"])
    assert all(
        len(p["datapoints"]) == len(e["datapoints"]) - 1
        for p, e in zip(phased[:4], [events[0]] * 4)
    )
    shift = 125 // 5
    start = np.concatenate(
        [d["rawData"] for d in sorted(events[0]["datapoints"], key=lambda d: d["dataTime"])]
    )
    np.testing.assert_allclose(phased[0]["datapoints"][0]["rawData"], start[shift : shift + 125])
    assert n0 == 8
    over = oversample_events(events)
    _, labels = label_events(over)
    assert labels.count(0) == labels.count(1) == 7
    under = undersample_events(events)
    _, labels = label_events(under)
    assert labels.count(0) == labels.count(1) == 3
    sampler = balanced_sampler([0] * 90 + [1] * 10, num_samples=2000, seed=0)
    drawn = np.asarray(list(sampler))
    assert 0.4 < np.mean(drawn >= 90) < 0.6


def test_data_generic_loader_npy_csv(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 2, 10)).astype(np.float32)
    np.save(tmp_path / "train.npy", x)
    np.save(tmp_path / "train_labels.npy", np.array(["b", "a", "b", "a", "c", "c"]))
    xs, ys, names = load_series(tmp_path / "train.npy")
    assert xs.shape == (6, 2, 10) and names == ["a", "b", "c"] and ys.tolist() == [1, 0, 1, 0, 2, 2]
    rows = ["label," + ",".join(f"v{i}" for i in range(20))]
    rows += [
        f"{lab}," + ",".join(str(v) for v in series.reshape(-1)) for lab, series in zip("xyxyxy", x)
    ]
    (tmp_path / "s.csv").write_text("\n".join(rows))
    xc, yc, nc = load_series(tmp_path / "s.csv", channels=2, label_column="label")
    np.testing.assert_allclose(xc, x, rtol=1e-6)
    assert nc == ["x", "y"] and yc.tolist() == [0, 1, 0, 1, 0, 1]
    with pytest.raises(DataError, match="no labels found"):
        np.save(tmp_path / "nolab.npy", x)
        load_series(tmp_path / "nolab.npy")


def test_data_basic_motions_through_generic_loader():
    x, y, names = load_basic_motions("train")
    assert x.shape == (40, 6, 100) and x.dtype == np.float32
    assert names == ["badminton", "running", "standing", "walking"]
    assert np.bincount(y).tolist() == [10, 10, 10, 10]
    xt, yt, _ = load_basic_motions("test")
    assert xt.shape == (40, 6, 100) and len(set(yt.tolist())) == 4
    ds = SignalDataset(x, y, class_names=names)
    assert ds[3][0].shape == (6, 100) and ds.num_classes == 4

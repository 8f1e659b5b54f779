"""Shared fixtures for the interop tests (digits data, OSDB event generator, TF availability)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    """sklearn digits as NHWC float32 [N, 8, 8, 1] in [0, 1], stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)


@pytest.fixture(scope="session")
def osdb_events():
    """A factory of generated OSDB-format events (see :func:`make_osdb_events`)."""
    return make_osdb_events


def make_osdb_events(
    n_seizure: int = 6, n_normal: int = 6, datapoints: int = 8, seed: int = 0
) -> list[dict]:
    """OSDB-format events: seizures have a strong 3 Hz oscillation, others are low noise."""
    rng = np.random.default_rng(seed)
    events = []
    t = np.arange(125) / 25.0
    for i in range(n_seizure + n_normal):
        seizure = i < n_seizure
        dps = []
        for k in range(datapoints):
            base = 1000 + rng.normal(0, 15, 125)
            if seizure:
                base = base + 400 * np.sin(2 * np.pi * 3.0 * (t + k * 5) + rng.uniform(0, 6))
            dps.append(
                {
                    "dataTime": f"2024-01-01T00:{k:02d}:00Z",
                    "rawData": base.round(1).tolist(),
                    "hr": 80,
                    "alarmState": 0,
                }
            )
        events.append(
            {
                "id": 1000 + i,
                "userId": 7,
                "type": "seizure" if seizure else ("false alarm" if i % 2 else "nda"),
                "subType": "tonic-clonic" if seizure else "",
                "dataTime": "2024-01-01T00:00:00Z",
                "sampleFreq": 25,
                "datapoints": dps,
            }
        )
    return events

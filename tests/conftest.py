"""Shared test settings: small thread pools, fixed seeds, no network."""

from __future__ import annotations

import os

import pytest

# Two CPU cores are shared by pytest-xdist workers; one intra-op thread each avoids oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _torch_defaults():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


def _load_tiny_models():
    """tests/export/vf_tiny_models.py: tiny registered models and model-dir builders."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "vf_tiny_models"
    if name not in sys.modules:
        path = Path(__file__).parent / "export" / "vf_tiny_models.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# Small model dirs shared by the export, inference and serve tests (built once per session).
@pytest.fixture(scope="session")
def tiny_models():
    return _load_tiny_models()


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory, tiny_models):
    return tiny_models.make_classifier_dir(tmp_path_factory.mktemp("tiny_cls") / "model")


@pytest.fixture(scope="session")
def seg_dir(tmp_path_factory, tiny_models):
    return tiny_models.make_tiny_seg_dir(tmp_path_factory.mktemp("tiny_seg") / "model")


@pytest.fixture(scope="session")
def signal_dir(tmp_path_factory, tiny_models):
    return tiny_models.make_signal_dir(tmp_path_factory.mktemp("tiny_sig") / "model")


@pytest.fixture(scope="session")
def multitask_dir(tmp_path_factory, tiny_models):
    return tiny_models.make_multitask_dir(tmp_path_factory.mktemp("tiny_multi") / "model")


# Generated OSDB-format seizure events (the format is public; no third-party data is shipped).
@pytest.fixture(scope="session")
def osdb_events():
    """A factory of generated OSDB-format events (see :func:`make_osdb_events`)."""
    return make_osdb_events


def make_osdb_events(
    n_seizure: int = 6, n_normal: int = 6, datapoints: int = 8, seed: int = 0
) -> list[dict]:
    """OSDB-format events: seizures have a strong 3 Hz oscillation, others are low noise."""
    import numpy as np

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

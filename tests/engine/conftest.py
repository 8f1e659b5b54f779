"""Fixtures for the engine tests; helpers live in engine_testkit.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine_testkit import cls_tensors  # noqa: E402


@pytest.fixture
def cls_loaders():
    from torch.utils.data import DataLoader, TensorDataset

    x, y = cls_tensors()
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=8, shuffle=True), DataLoader(ds, batch_size=16)


@pytest.fixture
def fast() -> dict:
    """Trainer options that keep tests quick and quiet."""
    return {"device": "cpu", "progress": False, "seed": 0}

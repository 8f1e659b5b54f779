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

"""Shared fixtures for the interop tests (digits data, OSDB event generator, TF availability)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits():
    """sklearn digits as NHWC float32 [N, 8, 8, 1] in [0, 1], stratified 80/20 split (seed 0)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype("float32")[..., None]
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)

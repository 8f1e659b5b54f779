"""Settings for the export tests (the tiny model-dir fixtures live in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_onnx_export(monkeypatch):
    # The legacy tracer is ~15x faster than the dynamo exporter; one test covers dynamo.
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")

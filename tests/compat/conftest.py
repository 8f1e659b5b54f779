"""Shared fixtures: a clean framework selection and environment for every compat test."""

from __future__ import annotations

import pytest

_VARS = [
    "VISIONFORGE_FRAMEWORK", "VISIONFORGE_DEVICE", "VISIONFORGE_AMP", "VISIONFORGE_COMPILE",
    "VISIONFORGE_GRADIENT_ACCUMULATION_STEPS", "VISIONFORGE_VALIDATION_FREQUENCY",
    "VISIONFORGE_VALIDATION_INTERVAL", "VISIONFORGE_TILE_GENERATION_MODE",
    "CODAVISION_FRAMEWORK", "CODAVISION_PYTORCH_DEVICE", "CODAVISION_PYTORCH_AMP",
    "CODAVISION_PYTORCH_COMPILE", "CODAVISION_GRADIENT_ACCUMULATION_STEPS",
    "CODAVISION_VALIDATION_FREQUENCY", "CODAVISION_TILE_GENERATION_MODE",
]


@pytest.fixture(autouse=True)
def clean_framework(monkeypatch):
    """No framework variable from the outer environment; CODAvision's class cache reset."""
    from visionforge.compat.codavision import FrameworkConfig
    from visionforge.config.framework import set_framework

    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    FrameworkConfig._framework = None
    yield
    FrameworkConfig._framework = None
    set_framework(None)

"""Typed configuration, settings resolution and framework selection."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "FrameworkConfig": "visionforge.config.framework",
    "get_framework": "visionforge.config.framework",
    "set_framework": "visionforge.config.framework",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'visionforge.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)

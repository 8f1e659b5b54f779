"""visionforge: from a folder of images or 1-D recordings to a trained, explained, deployable model.

Heavy libraries (torch, timm, lightning) are imported only when a public name
that needs them is first used, so ``import visionforge`` and the CLI's
``--help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "create_model": "visionforge.models",
    "list_models": "visionforge.models",
    "register_model": "visionforge.models",
    "load_model": "visionforge.models",
    "save_model_dir": "visionforge.models",
    "Registry": "visionforge.registry",
    "Trainer": "visionforge.engine",
    "TrainSettings": "visionforge.engine",
    "train_staged": "visionforge.engine",
    "set_seed": "visionforge.engine",
    "Predictor": "visionforge.inference",
    "Evaluator": "visionforge.evaluation",
    "Explainer": "visionforge.explain",
    "KerasAdapter": "visionforge.interop",
    "model_call": "visionforge.interop",
    "FrameworkConfig": "visionforge.config",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'visionforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

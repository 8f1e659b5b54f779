"""Imports every built-in model module so that their ``@register_model`` calls run."""

from __future__ import annotations

import importlib

BUILTIN_MODEL_MODULES = (
    "visionforge.models.backbones.cnn",
    "visionforge.models.backbones.vit",
    "visionforge.models.classification",
    "visionforge.models.segmentation",
    "visionforge.models.multitask",
    "visionforge.models.signal",
    "visionforge.models.detection",
)

for _module in BUILTIN_MODEL_MODULES:
    importlib.import_module(_module)

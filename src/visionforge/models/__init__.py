"""Model zoo: registry-backed factory, weights loading, model dirs and verification."""

from __future__ import annotations

from visionforge.models.factory import (
    create_model,
    is_timm_model,
    list_models,
    model_entry,
    register_model,
)
from visionforge.models.model_dir import load_model, read_model_meta, save_model_dir
from visionforge.models.verify import VerifyResult, verify, verify_all
from visionforge.models.weights import LoadReport, load_weights

__all__ = [
    "create_model",
    "list_models",
    "model_entry",
    "register_model",
    "is_timm_model",
    "load_model",
    "save_model_dir",
    "read_model_meta",
    "load_weights",
    "LoadReport",
    "verify",
    "VerifyResult",
    "verify_all",
]

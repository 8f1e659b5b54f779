"""One accessor for what a model knows about itself.

A model built by :func:`~visionforge.models.create_model` carries its *spec* (registry
name, source and constructor arguments) on the attribute :data:`SPEC_ATTR`; a model
loaded from a model dir also carries the whole ``model.json`` on :data:`META_ATTR`.
Everything else (task, family, LR multiplier, preferred scheduler, input contract) is
looked up in the registry entry of that name. Code elsewhere calls these functions
instead of reading the attributes or the registry itself, so the fallbacks are the
same everywhere.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SPEC_ATTR",
    "META_ATTR",
    "model_spec",
    "set_model_spec",
    "model_name",
    "registry_metadata",
    "model_task",
    "model_family",
    "model_contract",
    "model_meta",
]

SPEC_ATTR = "visionforge_spec"
META_ATTR = "visionforge_meta"


def model_spec(model: Any) -> dict[str, Any]:
    """``{"name", "source", "kwargs"}`` of a model built by ``create_model`` (``{}`` otherwise).

    Wrappers (a Keras adapter, a compiled module) are looked through via ``.module`` /
    ``._orig_mod``.
    """
    for obj in (model, getattr(model, "module", None), getattr(model, "_orig_mod", None)):
        spec = getattr(obj, SPEC_ATTR, None) if obj is not None else None
        if spec:
            return dict(spec)
    return {}


def set_model_spec(model: Any, name: str, source: str, kwargs: dict[str, Any]) -> None:
    """Record how ``model`` was built (what ``save_model_dir`` needs to rebuild it)."""
    setattr(model, SPEC_ATTR, {"name": name, "source": source, "kwargs": dict(kwargs)})


def model_meta(model: Any) -> dict[str, Any]:
    """The ``model.json`` contents of a model loaded from a model dir (``{}`` otherwise)."""
    return dict(getattr(model, META_ATTR, None) or {})


def model_name(model: Any) -> str | None:
    """Registry (or timm) name of the model, or ``None`` if it was not built by visionforge."""
    return model_spec(model).get("name")


def registry_metadata(model: Any) -> dict[str, Any]:
    """Metadata of the model's registry entry (``{}`` for timm names and foreign modules)."""
    spec = model_spec(model)
    if spec.get("source", "visionforge") != "visionforge" or not spec.get("name"):
        return {}
    from visionforge.errors import UnknownNameError
    from visionforge.models.factory import is_registered, model_entry

    try:
        return dict(model_entry(spec["name"]).metadata) if is_registered(spec["name"]) else {}
    except UnknownNameError:
        return {}


def model_task(model: Any) -> str | None:
    """The task the model's registration declares (``None`` when unknown)."""
    return registry_metadata(model).get("task") or model_meta(model).get("task")


def model_family(model: Any) -> str | None:
    """Architecture family (registry metadata; a timm model's own name; ``None`` otherwise)."""
    meta = registry_metadata(model)
    if meta:
        return str(meta.get("family") or model_name(model))
    return model_name(model)


def model_contract(model: Any):
    """The :class:`~visionforge.models.contract.InputContract` of a model.

    A loaded model dir's ``model.json`` wins (it records what the model was trained
    with); otherwise the registration's declaration (or timm's ``pretrained_cfg``).
    """
    from visionforge.models.contract import IMAGENET, contract_for, contract_from_meta

    meta = model_meta(model)
    if meta.get("preprocessing") is not None:
        return contract_from_meta(meta)
    name = model_name(model)
    return contract_for(name) if name else IMAGENET

"""Per-family metadata of the classification families: kind and learning-rate multiplier.

The disease-classification pipeline trains every family with one base
learning rate scaled per family: attention models are more sensitive to large
steps (Swin 0.7x, DeiT 0.8x), light CNNs with depthwise convolutions and
re-parameterisable branches tolerate larger ones (up to 1.5x). The engine
multiplies its base LR by :func:`family_lr_multiplier`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FamilyInfo", "FAMILIES", "family_info", "family_lr_multiplier", "family_kind"]


@dataclass(frozen=True)
class FamilyInfo:
    """``kind`` is ``"cnn"``, ``"transformer"`` or ``"hybrid"`` (conv stages + attention)."""

    family: str
    kind: str
    lr_multiplier: float


FAMILIES: dict[str, FamilyInfo] = {
    info.family: info
    for info in (
        FamilyInfo("convnext", "cnn", 1.0),
        FamilyInfo("efficientnetv2", "cnn", 1.2),
        FamilyInfo("ghostnetv2", "cnn", 1.5),
        FamilyInfo("resnet_mish", "cnn", 1.0),
        FamilyInfo("cspdarknet", "cnn", 1.0),
        FamilyInfo("inception_v4", "cnn", 1.0),
        FamilyInfo("vit_hybrid", "transformer", 0.8),
        FamilyInfo("swin", "transformer", 0.7),
        FamilyInfo("coatnet", "hybrid", 0.9),
        FamilyInfo("regnet", "cnn", 1.2),
        FamilyInfo("densenet_hybrid", "hybrid", 1.0),
        FamilyInfo("deit", "transformer", 0.8),
        FamilyInfo("maxvit", "transformer", 0.8),
        FamilyInfo("mobileone", "cnn", 1.5),
        FamilyInfo("dynamic_conv", "cnn", 1.2),
        FamilyInfo("small_cnn", "cnn", 1.0),
    )
}


def family_info(name: str) -> FamilyInfo | None:
    """Metadata of a family, given the family or any registered model name/alias."""
    key = str(name).lower()
    if key in FAMILIES:
        return FAMILIES[key]
    from visionforge.errors import UnknownNameError
    from visionforge.models.factory import model_entry

    try:
        family = model_entry(name).metadata.get("family")
    except UnknownNameError:
        return None
    return FAMILIES.get(str(family).lower())


def family_lr_multiplier(name: str) -> float:
    """Learning-rate multiplier of a family or model (1.0 for anything unknown, e.g. timm names)."""
    info = family_info(name)
    return info.lr_multiplier if info else 1.0


def family_kind(name: str) -> str | None:
    """``"cnn"``, ``"transformer"``, ``"hybrid"``, or ``None`` for a model outside these families."""
    info = family_info(name)
    return info.kind if info else None

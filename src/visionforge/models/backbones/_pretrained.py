"""How encoders honour ``pretrained=False | True | path`` the same way everywhere."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

__all__ = ["PretrainedArg", "is_local_path", "timm_create", "load_local_weights"]

PretrainedArg = bool | str | os.PathLike[str]


def is_local_path(pretrained: object) -> bool:
    """True when ``pretrained`` names a weights file rather than a flag."""
    return isinstance(pretrained, str | os.PathLike) and not isinstance(pretrained, bool)


def timm_create(arch: str, pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` that fails offline within seconds with a :class:`WeightsError`.

    A local ``pretrained`` path is not handled here (the caller loads it into its own module,
    whose parameter names may differ from timm's); only ``True`` fetches timm's weights,
    guarded by :func:`visionforge.models.hub.fetching_weights` (one quick connectivity
    check per process; offline, cached weights still load and missing ones fail at once).
    """
    import timm

    if pretrained is not True:
        return timm.create_model(arch, pretrained=False, **kwargs)
    from visionforge.models.hub import fetching_weights

    with fetching_weights(arch):
        return timm.create_model(arch, pretrained=True, **kwargs)


def load_local_weights(module: nn.Module, path: str | os.PathLike[str]):
    """Load a local ``.safetensors``/``.pth`` state dict into ``module`` (partial loads reported)."""
    from visionforge.models.weights import load_weights

    return load_weights(module, path)

"""How encoders honour ``pretrained=False | True | path`` the same way everywhere."""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from visionforge.errors import WeightsError

__all__ = ["PretrainedArg", "is_local_path", "timm_create", "load_local_weights"]

PretrainedArg = bool | str | os.PathLike[str]


def is_local_path(pretrained: object) -> bool:
    """True when ``pretrained`` names a weights file rather than a flag."""
    return isinstance(pretrained, str | os.PathLike) and not isinstance(pretrained, bool)


def _offline_message(arch: str, exc: BaseException) -> str:
    from visionforge.models.factory import _offline_message as factory_message

    return factory_message(arch, exc)


def timm_create(arch: str, pretrained: PretrainedArg = False, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` that fails offline with a :class:`WeightsError` explaining the fix.

    A local ``pretrained`` path is not handled here (the caller loads it into its own module,
    whose parameter names may differ from timm's); only ``True`` fetches timm's weights.
    """
    import timm

    fetch = pretrained is True
    try:
        return timm.create_model(arch, pretrained=fetch, **kwargs)
    except (OSError, ConnectionError, RuntimeError, ValueError) as exc:
        if fetch:
            raise WeightsError(_offline_message(arch, exc)) from None
        raise


def load_local_weights(module: nn.Module, path: str | os.PathLike[str]):
    """Load a local ``.safetensors``/``.pth`` state dict into ``module`` (partial loads reported)."""
    from visionforge.models.weights import load_weights

    return load_weights(module, path)

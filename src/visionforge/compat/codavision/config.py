"""CODAvision's ``base.config``: ``FrameworkConfig`` class methods and ``ModelDefaults``.

CODAvision keeps the framework choice on the class (``FrameworkConfig.set_framework`` and a
``_framework`` cache that troubleshooting code resets to ``None``) and reads the rest from
``CODAVISION_*`` variables on every call. Here every value comes from the core resolver
(:func:`visionforge.config.framework.resolve_setting`), which reads ``VISIONFORGE_*`` first
and CODAvision's names as aliases.
"""

from __future__ import annotations

import os

from visionforge.config.framework import FRAMEWORKS, resolve_device, resolve_setting
from visionforge.errors import ConfigError

__all__ = ["FrameworkConfig", "ModelDefaults", "DEFAULT_FRAMEWORK", "get_pytorch_device"]

#: CODAvision's default since its PyTorch port (``base/config.py``).
DEFAULT_FRAMEWORK = "pytorch"


class ModelDefaults:
    """CODAvision's training defaults that its trainers fall back on."""

    VALIDATION_FREQUENCY = 128  # iterations between validations
    TILE_GENERATION_MODE = "modern"


class FrameworkConfig:
    """CODAvision's framework settings as class methods (no instance needed)."""

    _framework: str | None = None

    @classmethod
    def get_framework(cls) -> str:
        """``set_framework``'s choice, else ``VISIONFORGE_FRAMEWORK``/``CODAVISION_FRAMEWORK``,
        else ``"pytorch"``."""
        if cls._framework is None:
            cls._framework = resolve_setting("framework")[0]
        return cls._framework

    @classmethod
    def set_framework(cls, framework: str) -> None:
        """Select the framework (and export ``CODAVISION_FRAMEWORK`` like CODAvision does)."""
        if framework not in FRAMEWORKS:
            raise ConfigError(f"Invalid framework: {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
        cls._framework = framework
        os.environ["CODAVISION_FRAMEWORK"] = framework

    @classmethod
    def get_device(cls) -> str:
        """The torch device: ``CODAVISION_PYTORCH_DEVICE`` (``auto`` = CUDA > MPS > CPU)."""
        return resolve_device(resolve_setting("device")[0])

    @classmethod
    def is_pytorch_compile_enabled(cls) -> bool:
        return bool(resolve_setting("compile")[0])

    @classmethod
    def is_amp_enabled(cls) -> bool:
        return bool(resolve_setting("amp")[0])

    @classmethod
    def get_gradient_accumulation_steps(cls) -> int:
        return int(resolve_setting("gradient_accumulation_steps")[0])

    @classmethod
    def get_validation_frequency(cls) -> int:
        """Iterations between validations (``CODAVISION_VALIDATION_FREQUENCY``, default 128)."""
        value = resolve_setting("validation_interval")[0]
        return int(value) if value is not None else ModelDefaults.VALIDATION_FREQUENCY

    @classmethod
    def get_tile_generation_mode(cls) -> str:
        return str(resolve_setting("tile_generation_mode")[0])


def get_pytorch_device() -> str:
    """CODAvision's device helper (``base.models.backbones_pytorch.get_pytorch_device``)."""
    return FrameworkConfig.get_device()

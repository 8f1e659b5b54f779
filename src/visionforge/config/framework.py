"""Framework and device selection (CODAvision's ``FrameworkConfig``).

Each setting is resolved with one priority order::

    explicit argument  >  VISIONFORGE_* (else CODAVISION_*) variable  >  config file/mapping  >  default

and every resolved value remembers where it came from (``"argument"``, ``"env"``,
``"config"`` or ``"default"``) so that ``visionforge config show`` can print it.
Invalid values raise :class:`~visionforge.errors.ConfigError` naming the key and
the valid choices.

Example:
    >>> from visionforge.config import FrameworkConfig
    >>> cfg = FrameworkConfig(framework="pytorch", amp=False)
    >>> cfg.framework, cfg.source("framework")
    ('pytorch', 'argument')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from visionforge.booleans import parse_bool
from visionforge.errors import ConfigError

__all__ = [
    "FrameworkConfig",
    "FRAMEWORKS",
    "DEVICES",
    "TILE_MODES",
    "ENV_VARS",
    "ENV_ALIASES",
    "env_setting",
    "resolve_setting",
    "get_framework",
    "set_framework",
    "resolve_device",
    "best_available_device",
    "mps_available",
]

FRAMEWORKS = ("pytorch", "tensorflow")
DEVICES = ("auto", "cpu", "cuda", "mps")
TILE_MODES = ("modern", "legacy", "simple")
_FRAMEWORK_ALIASES = {
    "torch": "pytorch",
    "pt": "pytorch",
    "tf": "tensorflow",
    "keras": "tensorflow",
}


def _parse_framework(value: Any) -> str:
    text = str(value).strip().lower()
    text = _FRAMEWORK_ALIASES.get(text, text)
    if text not in FRAMEWORKS:
        raise ValueError(f"choose one of {', '.join(FRAMEWORKS)}")
    return text


def _parse_device(value: Any) -> str:
    text = str(value).strip().lower()
    base = text.split(":", 1)[0]
    if base not in DEVICES or (":" in text and base != "cuda"):
        raise ValueError(f"choose one of {', '.join(DEVICES)} (or cuda:N)")
    return text


def _parse_bool(value: Any) -> bool:
    # an empty variable (VISIONFORGE_AMP=) means off here
    return False if str(value).strip() == "" else parse_bool(value)


def _parse_positive_int(value: Any) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError("expected a positive integer") from None
    if isinstance(number, bool) or number < 1:
        raise ValueError("expected a positive integer")
    return number


def _parse_optional_int(value: Any) -> int | None:
    return None if value is None else _parse_positive_int(value)


def _parse_tile_mode(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in TILE_MODES:
        raise ValueError(f"choose one of {', '.join(TILE_MODES)}")
    return text


@dataclass(frozen=True)
class _Setting:
    env: str
    default: Any
    parse: Callable[[Any], Any]


_SETTINGS: dict[str, _Setting] = {
    "framework": _Setting("VISIONFORGE_FRAMEWORK", "pytorch", _parse_framework),
    "device": _Setting("VISIONFORGE_DEVICE", "auto", _parse_device),
    "amp": _Setting("VISIONFORGE_AMP", False, _parse_bool),
    "compile": _Setting("VISIONFORGE_COMPILE", False, _parse_bool),
    "gradient_accumulation_steps": _Setting(
        "VISIONFORGE_GRADIENT_ACCUMULATION_STEPS", 1, _parse_positive_int
    ),
    "validation_frequency": _Setting("VISIONFORGE_VALIDATION_FREQUENCY", 1, _parse_positive_int),
    "validation_interval": _Setting("VISIONFORGE_VALIDATION_INTERVAL", None, _parse_optional_int),
    "tile_generation_mode": _Setting(
        "VISIONFORGE_TILE_GENERATION_MODE", "modern", _parse_tile_mode
    ),
}
ENV_VARS = {key: s.env for key, s in _SETTINGS.items()}
#: CODAvision's names for the same settings, read when our ``VISIONFORGE_*`` name is unset.
#: CODAvision validates every N *iterations*, so its CODAVISION_VALIDATION_FREQUENCY is our
#: ``validation_interval`` (training batches), not ``validation_frequency`` (epochs).
ENV_ALIASES = {
    "framework": ("CODAVISION_FRAMEWORK",),
    "device": ("CODAVISION_PYTORCH_DEVICE",),
    "amp": ("CODAVISION_PYTORCH_AMP",),
    "compile": ("CODAVISION_PYTORCH_COMPILE",),
    "gradient_accumulation_steps": ("CODAVISION_GRADIENT_ACCUMULATION_STEPS",),
    "validation_interval": ("CODAVISION_VALIDATION_FREQUENCY",),
    "tile_generation_mode": ("CODAVISION_TILE_GENERATION_MODE",),
}


def resolve_setting(
    key: str,
    value: Any = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[Any, str, str | None]:
    """One setting resolved as argument > environment > config > default.

    Returns ``(value, source, environment variable or None)``; an invalid value raises
    :class:`ConfigError` naming the key, where it came from and the valid choices.
    """
    if key not in _SETTINGS:
        raise ConfigError(f"unknown framework setting {key!r}; valid: {', '.join(_SETTINGS)}")
    setting, cfg, var = _SETTINGS[key], config or {}, None
    if value is not None:
        raw, source, where = value, "argument", f"argument {key}="
    elif (found := env_setting(key, env)) is not None:
        var, raw = found
        source, where = "env", f"environment variable {var}"
    elif cfg.get(key) is not None:
        raw, source, where = cfg[key], "config", f"config key {key!r}"
    else:
        raw, source, where = setting.default, "default", f"default {key}"
    try:
        return setting.parse(raw), source, var
    except ValueError as exc:
        raise ConfigError(f"invalid {key} {raw!r} (from {where}): {exc}") from None


def env_setting(key: str, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(variable, raw value)`` of the first non-empty environment variable for setting
    ``key``: ``VISIONFORGE_<KEY>`` first, then its CODAvision alias; ``None`` when unset."""
    environ = os.environ if env is None else env
    for var in (_SETTINGS[key].env, *ENV_ALIASES.get(key, ())):
        if environ.get(var, "").strip() != "":
            return var, environ[var]
    return None


class FrameworkConfig:
    """Resolved framework/device/training-mode settings with the source of each value.

    Args:
        framework: ``"pytorch"`` or ``"tensorflow"`` (``torch``/``tf``/``keras`` accepted).
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        amp: mixed precision on/off.
        compile: ``torch.compile`` on/off.
        gradient_accumulation_steps: optimiser step every N batches (>= 1).
        validation_frequency: validate every N epochs (>= 1).
        validation_interval: validate every N training batches (CODAvision's iteration-based
            validation; ``None`` = by epochs).
        tile_generation_mode: ``"modern"`` (class-balanced canvases), ``"legacy"`` (CODAvision's
            MATLAB-aligned slide tiling) or ``"simple"`` (grid).
        config: a mapping (e.g. a loaded YAML/JSON section) consulted after the environment.
        env: the environment to read (default ``os.environ``).

    Any argument left as ``None`` falls back to ``VISIONFORGE_<KEY>`` (then CODAvision's
    name for it, :data:`ENV_ALIASES`), then ``config``, then the default.
    """

    KEYS = tuple(_SETTINGS)

    def __init__(
        self,
        framework: str | None = None,
        device: str | None = None,
        amp: bool | str | None = None,
        compile: bool | str | None = None,
        gradient_accumulation_steps: int | None = None,
        validation_frequency: int | None = None,
        tile_generation_mode: str | None = None,
        validation_interval: int | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        explicit = {
            "framework": framework,
            "device": device,
            "amp": amp,
            "compile": compile,
            "gradient_accumulation_steps": gradient_accumulation_steps,
            "validation_frequency": validation_frequency,
            "tile_generation_mode": tile_generation_mode,
            "validation_interval": validation_interval,
        }
        cfg = dict(config or {})
        unknown = sorted(set(cfg) - set(_SETTINGS))
        if unknown:
            raise ConfigError(
                f"unknown framework config key(s) {unknown}; valid keys: {', '.join(_SETTINGS)}"
            )
        environ = os.environ if env is None else env
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        self._env_names: dict[str, str] = {}
        for key in _SETTINGS:
            value, source, var = resolve_setting(key, explicit[key], cfg, environ)
            self._values[key] = value
            self._sources[key] = source
            if var is not None:
                self._env_names[key] = var

    # -- values ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"FrameworkConfig has no setting {name!r}")

    def source(self, key: str) -> str:
        """Where ``key``'s value came from: ``argument``, ``env``, ``config`` or ``default``."""
        if key not in self._sources:
            raise ConfigError(f"unknown framework setting {key!r}; valid: {', '.join(_SETTINGS)}")
        return self._sources[key]

    def env_variable(self, key: str) -> str | None:
        """The environment variable ``key`` was read from (``None`` if not from the env)."""
        return self._env_names.get(key)

    def sources(self) -> dict[str, str]:
        """Every setting's source."""
        return dict(self._sources)

    def to_dict(self) -> dict[str, Any]:
        """The resolved values (JSON-serialisable)."""
        return dict(self._values)

    def describe(self) -> list[tuple[str, Any, str]]:
        """``(key, value, source)`` rows for printing."""
        return [(k, self._values[k], self._sources[k]) for k in _SETTINGS]

    def get_framework(self) -> str:
        """The selected framework (``pytorch`` or ``tensorflow``)."""
        return self._values["framework"]

    def set_framework(self, framework: str) -> None:
        """Select the framework explicitly (validated)."""
        try:
            self._values["framework"] = _parse_framework(framework)
        except ValueError as exc:
            raise ConfigError(f"invalid framework {framework!r}: {exc}") from None
        self._sources["framework"] = "argument"

    def resolved_device(self) -> str:
        """The concrete device: ``auto`` becomes ``cuda`` > ``mps`` > ``cpu``."""
        return resolve_device(self._values["device"])

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"FrameworkConfig({items})"


def mps_available() -> bool:
    """True when PyTorch's Apple-silicon (MPS) backend can be used."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def best_available_device() -> str:
    """What ``device="auto"`` means everywhere: CUDA > MPS > CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if mps_available() else "cpu"


def resolve_device(device: str = "auto") -> str:
    """Map ``auto`` to the best available device (CUDA > MPS > CPU); validate others."""
    try:
        device = _parse_device(device)
    except ValueError as exc:
        raise ConfigError(f"invalid device {device!r}: {exc}") from None
    return best_available_device() if device == "auto" else device


# Process-wide framework choice made with set_framework(); None = not set explicitly.
_selected_framework: str | None = None


def set_framework(framework: str | None) -> None:
    """Select the framework for this process (``None`` clears the explicit choice)."""
    global _selected_framework
    if framework is None:
        _selected_framework = None
        return
    try:
        _selected_framework = _parse_framework(framework)
    except ValueError as exc:
        raise ConfigError(f"invalid framework {framework!r}: {exc}") from None


def get_framework(framework: str | None = None, *, config: Mapping[str, Any] | None = None) -> str:
    """The framework to use: ``framework`` argument > :func:`set_framework` >
    ``VISIONFORGE_FRAMEWORK`` > ``config['framework']`` > ``"pytorch"``."""
    chosen = framework if framework is not None else _selected_framework
    cfg = {"framework": config.get("framework")} if config else None
    return FrameworkConfig(framework=chosen, config=cfg).framework

"""Settings of ``visionforge pipeline``: its own keys, the debug presets, the backbone list.

The pipeline takes two kinds of ``key=value`` options: its own keys (``models=``,
``head_epochs=``, ``formats=``, ``preset=``...; :data:`PIPELINE_KEYS`) and run-config
overrides (``data.root=``, ``trainer.device=``, ``group=option``...) that every backbone's
run config is composed with (see ``docs/configuration.md``). Presets are YAML files under
``conf/pipeline/`` holding both kinds; ``default`` is always applied first, then the named
preset, then the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.booleans import parse_bool
from visionforge.errors import ConfigError

__all__ = [
    "PIPELINE_FAMILIES",
    "PIPELINE_KEYS",
    "PipelineSettings",
    "list_presets",
    "parse_pipeline_args",
]

#: The document's 15 backbones, in its order (registry names; its class names are aliases).
PIPELINE_FAMILIES = (
    "custom_convnext",
    "custom_efficientnetv2",
    "custom_ghostnetv2",
    "custom_resnet_mish",
    "custom_cspdarknet",
    "custom_inception_v4",
    "custom_vit_hybrid",
    "custom_swin_transformer",
    "custom_coatnet",
    "custom_regnet",
    "custom_densenet_hybrid",
    "custom_deit",
    "custom_maxvit",
    "custom_mobileone",
    "custom_dynamic_convnet",
)


@dataclass
class PipelineSettings:
    """What the pipeline does around each backbone's run config (defaults: the document's)."""

    models: list[str] = field(default_factory=lambda: list(PIPELINE_FAMILIES))
    size: str | None = None  # model size variant (tiny/small/base/...); None: the model's default
    head_epochs: int = 40
    finetune_epochs: int = 25
    head_lr: float = 1e-3
    finetune_lr: float = 1e-4  # base LR of stage 2; the family's multiplier scales it
    patience: int | None = 5
    kfold: int = 0  # >= 2: stratified k-fold CV of the two-stage training before the final run
    formats: list[str] = field(default_factory=lambda: ["all"])
    max_per_class: int | None = None  # keep at most this many images per class in each split
    throughput_batch: int = 16
    out: str | None = None  # pipeline dir; default <project_dir>/pipeline/<name or 'pipeline'>
    retry_failed: bool = True  # on resume, run failed backbones again
    preset: str = "default"

    def fingerprint(self) -> dict[str, Any]:
        """Settings that must not change when a pipeline dir is resumed (not the model list)."""
        out = dataclasses.asdict(self)
        for key in ("models", "out", "retry_failed", "preset"):
            out.pop(key)
        return out


def _bool(value: Any) -> bool:  # named for the error message ("not a valid bool")
    return parse_bool(value)


def _optional_int(value: Any) -> int | None:
    if value is None or str(value).strip().lower() in ("null", "none", ""):
        return None
    return int(value)


def _optional_str(value: Any) -> str | None:
    return None if value is None or str(value).strip().lower() in ("null", "none", "") else str(value)


def _name_list(value: Any) -> list[str]:
    """``[a,b]``, ``a,b``, ``a`` or a YAML list -> names (``all``: the 15 families)."""
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip().strip("'\"") for v in str(value).strip().strip("[]").split(",")]
    items = [v for v in items if v]
    if not items:
        raise ValueError(value)
    return list(PIPELINE_FAMILIES) if items == ["all"] else items


def _format_list(value: Any) -> list[str]:
    """Export formats: ``all`` (kept as is: every format the model supports) or names."""
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip().strip("'\"") for v in str(value).strip().strip("[]").split(",")]
    items = [v for v in items if v]
    if not items:
        raise ValueError(value)
    return ["all"] if "all" in items else items


#: the pipeline's own keys and their converters
PIPELINE_KEYS: dict[str, Any] = {
    "models": _name_list,
    "size": _optional_str,
    "head_epochs": int,
    "finetune_epochs": int,
    "head_lr": float,
    "finetune_lr": float,
    "patience": _optional_int,
    "kfold": int,
    "formats": _format_list,
    "max_per_class": _optional_int,
    "throughput_batch": int,
    "out": _optional_str,
    "retry_failed": _bool,
    "preset": str,
}


def _presets_dir() -> Path:
    from visionforge.config.loader import CONF_DIR

    return CONF_DIR / "pipeline"


def list_presets() -> list[str]:
    """Names of the presets shipped in ``conf/pipeline/``."""
    return sorted(p.stem for p in _presets_dir().glob("*.yaml"))


def _load_preset(name: str) -> tuple[dict[str, Any], list[str]]:
    """``(pipeline keys, run-config overrides)`` of preset ``name``."""
    import yaml

    path = _presets_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"pipeline: unknown preset {name!r}; choose one of {', '.join(list_presets())}")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    keys = dict(data.get("pipeline") or {})
    unknown = sorted(set(keys) - set(PIPELINE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown pipeline keys {unknown}; valid: {', '.join(PIPELINE_KEYS)}")
    return keys, [str(o) for o in data.get("overrides") or []]


def _convert(key: str, value: Any, where: str) -> Any:
    if key in ("patience", "max_per_class", "size", "out") and value is None:
        return None
    try:
        return PIPELINE_KEYS[key](value)
    except (TypeError, ValueError):
        kind = getattr(PIPELINE_KEYS[key], "__name__", "value").lstrip("_")
        raise ConfigError(f"{where}: {key}={value!r} is not a valid {kind}") from None


def _split_items(items: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Command-line items -> (pipeline keys, run-config overrides)."""
    import difflib

    own: dict[str, str] = {}
    overrides: list[str] = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"pipeline: expected key=value, got {item!r}; pipeline keys: {', '.join(PIPELINE_KEYS)}; "
                "other keys are run-config overrides such as data.root=DIR"
            )
        if key in PIPELINE_KEYS:
            own[key] = value
        elif "." in key or key in ("name", "project_dir", "seed", "task") or _is_group(key):
            overrides.append(item)
        else:
            close = difflib.get_close_matches(key, list(PIPELINE_KEYS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"pipeline: unknown option {key!r}{hint}; pipeline keys: {', '.join(PIPELINE_KEYS)}; "
                "run-config keys are dotted (data.root=DIR, trainer.device=cpu)"
            )
    return own, overrides


def _is_group(key: str) -> bool:
    from visionforge.config.loader import GROUPS

    return key in GROUPS


def parse_pipeline_args(items: Sequence[str]) -> tuple[PipelineSettings, list[str]]:
    """Command-line ``key=value`` items -> settings and the run-config overrides.

    Order of precedence (last wins): preset ``default``, the preset named by ``preset=``,
    the command line.
    """
    own, cli_overrides = _split_items(items)
    preset = own.get("preset", "default")
    values: dict[str, Any] = {}
    overrides: list[str] = []
    for name in dict.fromkeys(["default", preset]):
        keys, extra = _load_preset(name)
        values.update({k: _convert(k, v, f"preset {name}") for k, v in keys.items()})
        overrides += extra
    values.update({k: _convert(k, v, "pipeline") for k, v in own.items()})
    settings = PipelineSettings(**values)
    _validate(settings)
    return settings, overrides + cli_overrides


def _validate(s: PipelineSettings) -> None:
    if s.head_epochs < 1 or s.finetune_epochs < 1:
        raise ConfigError("pipeline: head_epochs and finetune_epochs must be >= 1")
    if s.head_lr <= 0 or s.finetune_lr <= 0:
        raise ConfigError("pipeline: head_lr and finetune_lr must be positive")
    if s.kfold == 1 or s.kfold < 0:
        raise ConfigError(f"pipeline: kfold={s.kfold}; use 0 (no cross-validation) or k >= 2")
    if s.max_per_class is not None and s.max_per_class < 1:
        raise ConfigError("pipeline: max_per_class must be >= 1 (or null)")
    if len(set(s.models)) != len(s.models):
        raise ConfigError(f"pipeline: models= names a backbone twice: {s.models}")

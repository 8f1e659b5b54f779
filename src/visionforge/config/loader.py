"""Compose a run configuration from the YAML tree, a saved file, the environment and overrides.

Priority, highest first: explicit ``key=value`` arguments > ``VISIONFORGE_*``
environment variables > a ``--config`` file > the shipped defaults. Config
groups (``model=...``, ``trainer=cpu``) are composed by Hydra's compose API;
the result is validated against :class:`visionforge.config.schema.RunConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionforge.errors import ConfigError

__all__ = [
    "CONF_DIR",
    "GROUPS",
    "ENV_VARS",
    "ComposedConfig",
    "compose_config",
    "group_options",
    "model_config_kwargs",
    "save_config",
    "flatten",
    "config_keys",
    "suggest_keys",
]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("model", "data", "trainer", "optimizer", "scheduler", "callbacks", "logger")

#: environment variable -> config key (lower priority than explicit arguments)
ENV_VARS = {
    "VISIONFORGE_FRAMEWORK": "framework",
    "VISIONFORGE_DEVICE": "trainer.device",
    "VISIONFORGE_DEVICES": "trainer.devices",
    "VISIONFORGE_AMP": "trainer.mixed_precision",
    "VISIONFORGE_COMPILE": "trainer.compile",
    "VISIONFORGE_STRATEGY": "trainer.strategy",
    "VISIONFORGE_PROJECT_DIR": "project_dir",
    "VISIONFORGE_NUM_WORKERS": "data.num_workers",
    "VISIONFORGE_GRADIENT_ACCUMULATION_STEPS": "trainer.accumulate_grad_batches",
    "VISIONFORGE_VALIDATION_FREQUENCY": "trainer.validation_freq",
    "VISIONFORGE_VALIDATION_INTERVAL": "trainer.val_check_interval",
    # CODAvision's names (visionforge.config.framework.ENV_ALIASES): read when ours is unset.
    "CODAVISION_FRAMEWORK": "framework",
    "CODAVISION_PYTORCH_DEVICE": "trainer.device",
    "CODAVISION_PYTORCH_AMP": "trainer.mixed_precision",
    "CODAVISION_PYTORCH_COMPILE": "trainer.compile",
    "CODAVISION_GRADIENT_ACCUMULATION_STEPS": "trainer.accumulate_grad_batches",
    "CODAVISION_VALIDATION_FREQUENCY": "trainer.val_check_interval",  # iterations there
}

_CHOICES = {
    "task": ("auto", "classification", "segmentation", "signal", "multitask"),
    "framework": ("pytorch", "tensorflow"),
    "data.on_bad_image": ("error", "skip"),
    "trainer.mode": ("min", "max"),
    "trainer.device": ("auto", "cpu", "cuda", "mps", "gpu"),
    "optimizer.name": ("adam", "adamw", "sgd"),
    "scheduler.name": ("auto", "onecycle", "warmup_cosine", "plateau", "three_phase", "none"),
}


@dataclass
class ComposedConfig:
    """A validated run config plus where each value came from."""

    cfg: Any  # omegaconf.DictConfig
    sources: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    def to_yaml(self) -> str:
        from omegaconf import OmegaConf

        return OmegaConf.to_yaml(self.cfg)


def group_options(group: str) -> list[str]:
    """Names of the YAML options shipped for a config group (e.g. ``trainer`` -> cpu, gpu, ...)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def model_config_kwargs(name: str) -> dict[str, Any]:
    """The ``kwargs`` of the shipped ``conf/model`` option whose ``name`` is ``name`` (``{}`` if
    none): what ``model=auto`` builds its chosen model with, so the two routes agree."""
    from omegaconf import OmegaConf

    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        option = OmegaConf.load(path)
        if option.get("name") == name:
            kwargs = option.get("kwargs")
            return dict(OmegaConf.to_container(kwargs, resolve=True)) if kwargs else {}
    return {}


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf of a nested config/dict (dict-valued kwargs stay whole)."""
    from omegaconf import DictConfig, OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key != "kwargs":
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _split_overrides(overrides: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    groups: dict[str, str] = {}
    dotted: list[str] = []
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(
                f"cannot parse argument {item!r}: options are key=value pairs, "
                "e.g. model=resnet18 trainer.max_epochs=10"
            )
        key, value = item.split("=", 1)
        key = key.strip().lstrip("+")
        if key in GROUPS:
            if value in group_options(key):
                groups[key] = value
            elif key == "model":  # Ultralytics style: model=<any registry or timm name>
                dotted.append(f"model.name={value}")
            elif key == "data" and (Path(value).exists() or os.sep in value):
                dotted.append(f"data.root={value}")
            else:
                raise ConfigError(
                    f"unknown {key} option {value!r}; choose one of: "
                    f"{', '.join(group_options(key))} (or set keys as {key}.<key>=value)"
                )
        else:
            dotted.append(f"{key}={value}")
    return groups, dotted


def _schema():
    from omegaconf import OmegaConf

    from visionforge.config.schema import RunConfig

    return OmegaConf.structured(RunConfig)


def _merge_checked(base: Any, other: Any, origin: str) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.merge(base, other)
    except OmegaConfBaseException as exc:
        raise ConfigError(_explain(exc, origin)) from None


def config_keys() -> list[str]:
    """Every dotted key of the run config (``trainer.max_epochs``, ``data.root``, ...)."""
    import dataclasses

    from visionforge.config.schema import RunConfig

    def walk(node: Any, prefix: str) -> list[str]:
        out = []
        for f in dataclasses.fields(node):
            kind = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            if dataclasses.is_dataclass(kind):
                out += walk(type(kind), f"{prefix}{f.name}.")
            else:
                out.append(prefix + f.name)
        return out

    return walk(RunConfig, "")


#: names users bring from other tools -> the key's own name here
_KEY_ALIASES = {"learning_rate": "lr", "epochs": "max_epochs", "epoch": "max_epochs",
                "batch": "batch_size", "bs": "batch_size", "workers": "num_workers",
                "imgsz": "image_size", "img_size": "image_size", "size": "image_size",
                "gpus": "devices", "amp": "mixed_precision", "patience": "early_stopping_patience",
                "weights": "pretrained", "arch": "name", "steps": "max_steps"}


def suggest_keys(key: str, n: int = 3) -> list[str]:
    """The config keys closest to ``key`` (a dotted path or a bare name), best first:
    ``trainer.epochs``, ``epochs`` and ``--epochs`` all give ``trainer.max_epochs``."""
    from visionforge.registry import closest_names

    key = key.strip().lstrip("-").replace("-", "_")
    leaf = key.rsplit(".", 1)[-1]
    leaf = _KEY_ALIASES.get(leaf.lower(), leaf)
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    by_leaf: dict[str, list[str]] = {}
    for k in config_keys():
        by_leaf.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    ranked = [k for name in closest_names(leaf, by_leaf, n=n) for k in by_leaf[name]]
    exact = by_leaf.get(leaf, [])
    if exact:  # the same name in another section (trainer.lr -> optimizer.lr) says it all
        return exact[:n]
    ranked.sort(key=lambda k: bool(parent) and not k.startswith(parent + "."))
    return ranked[:n]


def _explain(exc: Exception, origin: str) -> str:
    key = getattr(exc, "full_key", None) or ""
    msg = str(exc).splitlines()[0]
    hint = ""
    if "not in" in msg:
        close = suggest_keys(key)
        hint = ("; did you mean " + " or ".join(f"{k}=..." for k in close) + "?" if close
                else "") + " (all keys: `visionforge config show`)"
    return f"invalid config key {key!r} ({origin}): {msg}{hint}"


def _compose_groups(groups: Mapping[str, str]) -> Any:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    overrides = [f"{k}={v}" for k, v in groups.items()]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name="visionforge"):
            return compose("train", overrides=overrides)
    except HydraException as exc:  # pragma: no cover - options are checked before
        raise ConfigError(str(exc).splitlines()[0]) from None


def _check_choices(cfg: Any) -> None:
    from omegaconf import OmegaConf

    for key, choices in _CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value is not None and str(value) not in choices:
            raise ConfigError(f"invalid value {value!r} for {key}; choose one of: {', '.join(choices)}")
    batch = OmegaConf.select(cfg, "data.batch_size")
    if batch is not None and batch != "auto" and (isinstance(batch, bool)
                                                  or not isinstance(batch, int) or batch < 1):
        raise ConfigError(f"invalid value {batch!r} for data.batch_size; use a positive integer, "
                          "auto (the largest that fits, found by a short search) or null")


def compose_config(
    overrides: Sequence[str] = (),
    *,
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ComposedConfig:
    """Build the validated run config.

    Args:
        overrides: ``key=value`` strings; ``group=option`` picks a YAML of a group
            (``trainer=cpu``), ``model=<name>`` accepts any registry/timm name and
            ``data=<path>`` a dataset folder.
        config_file: a saved run config (e.g. a run dir's ``config.yaml``) used instead of the
            shipped defaults; re-running it reproduces that run.
        env: environment to read ``VISIONFORGE_*`` from (default: ``os.environ``).
    """
    from omegaconf import OmegaConf

    env = os.environ if env is None else env
    groups, dotted = _split_overrides(overrides)
    schema = _schema()
    OmegaConf.set_struct(schema, True)
    OmegaConf.set_struct(schema.model.kwargs, False)  # free-form constructor arguments
    sources: dict[str, str] = {}

    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        try:
            loaded = OmegaConf.load(path)
        except Exception as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        defaults = _compose_groups(groups)
        cfg = _merge_checked(schema, defaults, "shipped defaults")
        base_keys = flatten(cfg)
        cfg = _merge_checked(cfg, loaded, f"file {path}")
        file_keys = set(flatten(loaded))
        sources.update({k: "default" for k in base_keys})
        sources.update({k: f"config file {path.name}" for k in file_keys})
    else:
        defaults = _compose_groups(groups)
        cfg = _merge_checked(schema, defaults, "shipped defaults")
        sources.update({k: "default" for k in flatten(cfg)})
        for group, option in groups.items():
            for key in flatten(OmegaConf.load(CONF_DIR / group / f"{option}.yaml"), group + "."):
                sources[key] = f"{group}={option}"

    explicit = {d.split("=", 1)[0] for d in dotted}
    from_env: dict[str, str] = {}  # key -> variable; the first listed (ours) wins over aliases
    for var, key in ENV_VARS.items():
        if env.get(var, "").strip() != "" and key not in explicit:
            from_env.setdefault(key, var)
    if from_env:
        env_items = [f"{key}={env[var]}" for key, var in from_env.items()]
        cfg = _merge_checked(cfg, OmegaConf.from_dotlist(env_items), "environment")
        for key, var in from_env.items():
            sources[key] = f"env {var}"
    if dotted:
        try:
            dot_cfg = OmegaConf.from_dotlist(dotted)
        except Exception as exc:
            raise ConfigError(f"cannot parse overrides {dotted}: {exc}") from None
        cfg = _merge_checked(cfg, dot_cfg, "command line")
        for key in flatten(dot_cfg):
            sources[key] = "argument"
    _check_choices(cfg)
    return ComposedConfig(cfg=cfg, sources=sources, groups=dict(groups))


def save_config(composed: ComposedConfig | Any, path: str | os.PathLike[str]) -> Path:
    """Write the fully resolved config as YAML (atomically); ``--config`` of it reproduces the run."""
    from omegaconf import OmegaConf

    from visionforge.io import atomic_write_text

    cfg = composed.cfg if isinstance(composed, ComposedConfig) else composed
    return atomic_write_text(path, OmegaConf.to_yaml(cfg, resolve=True))

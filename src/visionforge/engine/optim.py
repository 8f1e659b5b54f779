"""Optimizers by name with parameter groups, LR multipliers and no-decay groups.

``build_optimizer("adamw", model, lr=1e-3, weight_decay=0.05,
lr_multipliers={"backbone": 0.1}, family="swin")`` gives an AdamW whose groups are
``(prefix, decay/no-decay)`` pairs:

- ``lr_multipliers`` maps parameter-name prefixes (module attribute paths such as
  ``"backbone"`` or ``"backbone.layer4"``) to LR factors; the longest matching
  prefix wins, other parameters use factor 1.
- ``family`` scales every group by :func:`family_lr_multiplier` (transformers
  train with a lower LR than CNNs).
- Weight decay is not applied to biases, normalisation weights (every parameter
  with fewer than 2 dimensions) nor to names listed by a timm-style
  ``model.no_weight_decay()`` (position embeddings, class tokens): decaying them
  pulls scale/shift parameters towards 0, which hurts accuracy.

Each group carries ``name`` and ``lr_multiplier`` keys for logging.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.registry import Registry

__all__ = [
    "OPTIMIZERS",
    "FAMILY_LR_MULTIPLIERS",
    "TRANSFORMER_FAMILIES",
    "family_lr_multiplier",
    "is_transformer_family",
    "model_family",
    "param_groups",
    "build_optimizer",
]

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("adam", torch.optim.Adam)
OPTIMIZERS.add("adamw", torch.optim.AdamW)
OPTIMIZERS.add("sgd", torch.optim.SGD)
OPTIMIZERS.add("rmsprop", torch.optim.RMSprop)

# LR factor per architecture family: transformers lower, CNNs 1.0-1.5x (the disease
# classification pipeline's per-family settings). Keys match a family or model name
# by prefix (``swin_tiny_patch4_window7_224`` -> ``swin``).
FAMILY_LR_MULTIPLIERS: dict[str, float] = {
    "swin": 0.7,
    "swinv2": 0.7,
    "deit": 0.8,
    "vit": 0.8,
    "vision_transformer": 0.8,
    "beit": 0.8,
    "cait": 0.8,
    "eva": 0.8,
    "xcit": 0.8,
    "resnet": 1.0,
    "resnext": 1.0,
    "wide_resnet": 1.0,
    "densenet": 1.0,
    "convnext": 1.0,
    "regnet": 1.0,
    "vgg": 1.0,
    "inception": 1.0,
    "efficientnet": 1.2,
    "mobilenet": 1.5,
    "mnasnet": 1.5,
    "ghostnet": 1.5,
}
TRANSFORMER_FAMILIES = frozenset(k for k, v in FAMILY_LR_MULTIPLIERS.items() if v < 1.0)


def _family_key(family: str) -> str | None:
    key = str(family).lower().replace("-", "_")
    if key in FAMILY_LR_MULTIPLIERS:
        return key
    matches = [k for k in FAMILY_LR_MULTIPLIERS if key.startswith(k)]
    return max(matches, key=len) if matches else None


def family_lr_multiplier(family: str | None) -> float:
    """LR factor for an architecture family or model name (1.0 when unknown or None)."""
    if not family:
        return 1.0
    key = _family_key(family)
    return FAMILY_LR_MULTIPLIERS[key] if key else 1.0


def is_transformer_family(family: str | None) -> bool:
    """Whether ``family`` (or a model name) is a vision-transformer family."""
    key = _family_key(family) if family else None
    return key in TRANSFORMER_FAMILIES


def model_family(model: nn.Module) -> str | None:
    """The family of a model built by ``create_model`` (registry metadata, else its name)."""
    spec = getattr(model, "visionforge_spec", None) or {}
    name = spec.get("name")
    if not name:
        return None
    try:
        from visionforge.models.factory import model_entry

        family = model_entry(name).metadata.get("family")
        return str(family or name)
    except Exception:  # a timm name not in our registry: its name is informative enough
        return str(name)


def _no_decay_names(model: nn.Module) -> set[str]:
    fn = getattr(model, "no_weight_decay", None)
    if callable(fn):
        try:
            return {str(n) for n in fn()}
        except Exception:
            return set()
    return set()


def _match_prefix(name: str, multipliers: Mapping[str, float]) -> str | None:
    best = None
    for prefix in multipliers:
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return best


def param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.0,
    lr_multipliers: Mapping[str, float] | None = None,
    trainable_only: bool = True,
) -> list[dict[str, Any]]:
    """Split ``model``'s parameters into groups by LR prefix and decay / no-decay."""
    multipliers = dict(lr_multipliers or {})
    names = dict(model.named_parameters())
    for prefix in multipliers:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            raise ConfigError(
                f"lr_multipliers key {prefix!r} matches no parameter of the model; "
                f"top-level modules are {sorted({n.split('.')[0] for n in names})}"
            )
    skip = _no_decay_names(model)
    groups: dict[tuple[str, bool], dict[str, Any]] = {}
    for name, p in names.items():
        if trainable_only and not p.requires_grad:
            continue
        prefix = _match_prefix(name, multipliers)
        mult = multipliers[prefix] if prefix else 1.0
        decay = weight_decay > 0 and p.ndim >= 2 and name not in skip
        key = (prefix or "default", decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "name": f"{key[0]}/{'decay' if decay else 'no_decay'}",
                "lr": lr * mult,
                "lr_multiplier": mult,
                "weight_decay": weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(p)
    if not groups:
        raise ConfigError("the model has no trainable parameters (all requires_grad=False?)")
    return list(groups.values())


def build_optimizer(
    name_or_instance: str | torch.optim.Optimizer | type[torch.optim.Optimizer],
    model_or_param_groups: nn.Module | Iterable[Any],
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] | None = None,
    nesterov: bool = False,
    lr_multipliers: Mapping[str, float] | None = None,
    family: str | None = None,
    trainable_only: bool = True,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build an optimizer by name (``adam``, ``adamw``, ``sgd``, ``rmsprop``) or class.

    An ``Optimizer`` instance is returned unchanged. ``model_or_param_groups`` is a
    model (grouped by :func:`param_groups`) or anything torch optimizers accept
    (an iterable of tensors or of group dicts; those keep their own settings, scaled
    by the family multiplier). ``family="auto"`` reads the family from a model built
    by ``create_model``. ``momentum`` and ``nesterov`` apply to SGD/RMSprop,
    ``betas`` to Adam/AdamW; other keywords go to the optimizer.
    """
    if isinstance(name_or_instance, torch.optim.Optimizer):
        return name_or_instance
    if isinstance(name_or_instance, str):
        cls = OPTIMIZERS.get(name_or_instance)
    elif inspect.isclass(name_or_instance) and issubclass(name_or_instance, torch.optim.Optimizer):
        cls = name_or_instance
    else:
        raise ConfigError(
            f"optimizer must be a name ({', '.join(OPTIMIZERS.list())}), an Optimizer class "
            f"or instance; got {name_or_instance!r}"
        )
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    if family == "auto":
        family = (
            model_family(model_or_param_groups)
            if isinstance(model_or_param_groups, nn.Module)
            else None
        )
    fam_mult = family_lr_multiplier(family)
    base_lr = lr * fam_mult

    if isinstance(model_or_param_groups, nn.Module):
        groups: list[Any] = param_groups(
            model_or_param_groups,
            lr=base_lr,
            weight_decay=weight_decay,
            lr_multipliers=lr_multipliers,
            trainable_only=trainable_only,
        )
    else:
        if lr_multipliers:
            raise ConfigError("lr_multipliers need a model (names are parameter-name prefixes)")
        groups = list(model_or_param_groups)
        if groups and isinstance(groups[0], Mapping):
            groups = [
                {**g, "lr": g.get("lr", lr) * fam_mult, "params": list(g["params"])} for g in groups
            ]
        if not groups:
            raise ConfigError("no parameters given to the optimizer")

    params = set(inspect.signature(cls.__init__).parameters)
    options: dict[str, Any] = {"lr": base_lr, "weight_decay": weight_decay}
    if "momentum" in params and cls is not torch.optim.Adam:
        options["momentum"] = momentum
    if "nesterov" in params:
        options["nesterov"] = nesterov
    if betas is not None and "betas" in params:
        options["betas"] = tuple(betas)
    options.update(kwargs)
    options = {k: v for k, v in options.items() if k in params or k in kwargs}
    try:
        return cls(groups, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build optimizer {cls.__name__}: {exc}") from exc

"""Optimizers by name with parameter groups, LR multipliers and no-decay groups.

``build_optimizer("adamw", model, lr=1e-3, weight_decay=0.05,
lr_multipliers={"backbone": 0.1})`` gives an AdamW whose groups are
``(prefix, decay/no-decay)`` pairs:

- Every group is scaled by the model's LR multiplier: by default the one its
  registration declares (:func:`registered_lr_multiplier`; transformers train with
  a lower LR than CNNs), or ``lr_multiplier=`` when given (``1.0`` disables it).
- ``lr_multipliers`` maps parameter-name prefixes (module attribute paths such as
  ``"backbone"`` or ``"backbone.layer4"``) to LR factors on top; the longest
  matching prefix wins, other parameters use factor 1.
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
    "registered_lr_multiplier",
    "preferred_scheduler",
    "param_groups",
    "build_optimizer",
    "effective_lrs",
]

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.add("adam", torch.optim.Adam)
OPTIMIZERS.add("adamw", torch.optim.AdamW)
OPTIMIZERS.add("sgd", torch.optim.SGD)
OPTIMIZERS.add("rmsprop", torch.optim.RMSprop)

def registered_lr_multiplier(model: Any) -> float:
    """The LR factor the model's registration declares (1.0 for timm names and foreign modules).

    Families declare it with ``register_model(..., lr_multiplier=...)``: attention models
    are more sensitive to large steps (e.g. Swin 0.7x) than CNNs (up to 1.5x).
    """
    from visionforge.models.spec import registry_metadata

    return float(registry_metadata(model).get("lr_multiplier") or 1.0)


def preferred_scheduler(model: Any) -> str | None:
    """The LR scheduler name the model's registration prefers (``None`` when it declares none).

    CNN families prefer ``onecycle``, transformer families ``warmup_cosine``.
    """
    from visionforge.models.spec import registry_metadata

    name = registry_metadata(model).get("scheduler")
    return str(name) if name else None


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


def _optimizer_class(
    name_or_class: str | type[torch.optim.Optimizer],
) -> type[torch.optim.Optimizer]:
    if isinstance(name_or_class, str):
        return OPTIMIZERS.get(name_or_class)
    if inspect.isclass(name_or_class) and issubclass(name_or_class, torch.optim.Optimizer):
        return name_or_class
    raise ConfigError(
        f"optimizer must be a name ({', '.join(OPTIMIZERS.list())}), an Optimizer class "
        f"or instance; got {name_or_class!r}"
    )


def _given_groups(given: Iterable[Any], lr: float, factor: float) -> list[Any]:
    """Tensors or group dicts as torch accepts them; group LRs scaled by ``factor``."""
    groups = list(given)
    if not groups:
        raise ConfigError("no parameters given to the optimizer")
    if isinstance(groups[0], Mapping):
        return [{**g, "lr": g.get("lr", lr) * factor, "params": list(g["params"])} for g in groups]
    return groups


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
    lr_multiplier: float | None = None,
    trainable_only: bool = True,
    **kwargs: Any,
) -> torch.optim.Optimizer:
    """Build an optimizer by name (``adam``, ``adamw``, ``sgd``, ``rmsprop``) or class.

    An ``Optimizer`` instance is returned unchanged. ``model_or_param_groups`` is a
    model (grouped by :func:`param_groups`) or anything torch optimizers accept
    (an iterable of tensors or of group dicts; those keep their own settings).
    ``lr_multiplier`` scales every group: ``None`` uses the model's registered factor
    (:func:`registered_lr_multiplier`; 1.0 for parameter iterables), a number
    overrides it (``1.0`` disables it). ``momentum`` and ``nesterov`` apply to
    SGD/RMSprop, ``betas`` to Adam/AdamW; other keywords go to the optimizer.
    """
    if isinstance(name_or_instance, torch.optim.Optimizer):
        return name_or_instance
    cls = _optimizer_class(name_or_instance)
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    is_model = isinstance(model_or_param_groups, nn.Module)
    if lr_multiplier is None:
        lr_multiplier = registered_lr_multiplier(model_or_param_groups) if is_model else 1.0
    if lr_multiplier <= 0:
        raise ConfigError(f"lr_multiplier must be > 0, got {lr_multiplier}")
    base_lr = lr * float(lr_multiplier)
    if is_model:
        groups: list[Any] = param_groups(
            model_or_param_groups,
            lr=base_lr,
            weight_decay=weight_decay,
            lr_multipliers=lr_multipliers,
            trainable_only=trainable_only,
        )
    elif lr_multipliers:
        raise ConfigError("lr_multipliers need a model (names are parameter-name prefixes)")
    else:
        groups = _given_groups(model_or_param_groups, lr, float(lr_multiplier))

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


def effective_lrs(optimizer: torch.optim.Optimizer) -> list[tuple[str, float]]:
    """``(group name, learning rate)`` per parameter group (unnamed groups: ``group<i>``)."""
    return [
        (str(g.get("name") or f"group{i}"), float(g["lr"]))
        for i, g in enumerate(optimizer.param_groups)
    ]

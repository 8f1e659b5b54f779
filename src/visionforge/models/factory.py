"""``create_model`` / ``list_models``: build any registered model (or any timm model) by name.

Every model built here carries ``model.visionforge_spec`` -- the registry name
and the JSON-serialisable constructor arguments -- so that a saved model
directory can rebuild it without pickle (see :mod:`visionforge.models.model_dir`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from visionforge.errors import ModelArgumentError, UnknownNameError, VisionforgeError, WeightsError
from visionforge.models.spec import SPEC_ATTR, set_model_spec
from visionforge.registry import MODELS, load_plugins

__all__ = [
    "register_model",
    "create_model",
    "list_models",
    "model_entry",
    "is_registered",
    "is_timm_model",
    "SPEC_ATTR",
]

TASKS = ("classification", "segmentation", "multitask", "signal", "backbone", "detection")


def register_model(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    task: str,
    family: str | None = None,
    test_kwargs: dict[str, Any] | None = None,
    test_input: tuple[int, ...] = (3, 32, 32),
    overfit: bool = False,
    description: str = "",
    input_contract: Any = None,
    lr_multiplier: float = 1.0,
    scheduler: str | None = None,
    kind: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a model factory in :data:`visionforge.registry.MODELS`.

    Args:
        name: canonical registry name (lower_snake_case).
        aliases: other accepted names (e.g. the original pipeline's class name).
        task: one of ``classification``, ``segmentation``, ``multitask``, ``signal``, ``backbone``.
        family: architecture family, used for grouping and per-family defaults.
        test_kwargs: constructor arguments of a tiny variant used by ``verify --all`` and tests.
        test_input: per-sample input shape (without batch) for that tiny variant.
        overfit: include this model in the "overfit one batch" test (one per family).
        description: one line shown by ``visionforge models list``.
        input_contract: the :class:`~visionforge.models.contract.InputContract` the model
            expects (value range, mean/std, channel order, size, interpolation); default:
            ImageNet-normalised RGB for image models, raw windows for signal models.
        lr_multiplier: factor on the run's base learning rate that suits this family.
        scheduler: the family's preferred LR scheduler name (used when the run names none).
        kind: ``"cnn"``, ``"transformer"`` or ``"hybrid"`` (informational, for grouping).
    """
    from visionforge.models.contract import InputContract, default_contract

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    contract = input_contract if input_contract is not None else default_contract(task)
    if not isinstance(contract, InputContract):
        raise TypeError(f"input_contract of {name!r} must be an InputContract")
    if lr_multiplier <= 0:
        raise ValueError(f"lr_multiplier of {name!r} must be positive, got {lr_multiplier}")
    return MODELS.register(
        name,
        aliases=aliases,
        task=task,
        family=family or name,
        test_kwargs=dict(test_kwargs or {}),
        test_input=tuple(test_input),
        overfit=overfit,
        description=description,
        input_contract=contract,
        lr_multiplier=float(lr_multiplier),
        scheduler=scheduler,
        kind=kind,
    )


_builtins_loaded = False


def _ensure_registered() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        import visionforge.models.zoo  # noqa: F401  (registers the built-in models)

        load_plugins()


def is_timm_model(name: str) -> bool:
    """True if ``name`` is a timm architecture (e.g. ``resnet18``, ``convnext_atto``)."""
    import timm

    return bool(timm.is_model(name))


def unknown_model_message(name: str) -> str:
    """The error for a model name that is neither registered nor a timm architecture,
    naming the closest registered and timm names (``resnet_18`` -> ``resnet18``)."""
    import timm

    from visionforge.registry import closest_names

    _ensure_registered()
    registered = MODELS.list(include_aliases=False)
    close = closest_names(name, [*registered, *timm.list_models()], n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return (f"Unknown model {name!r}.{hint} Choose a registered model ({len(registered)}; "
            "`visionforge models list`) or any timm architecture (timm.list_models()).")


def is_registered(name: str) -> bool:
    """True if ``name`` (or an alias) is a registered model; loads the built-ins and plugins first."""
    _ensure_registered()
    return name in MODELS


def model_entry(name: str):
    """The registry entry (name, factory, aliases, metadata) for ``name``."""
    _ensure_registered()
    return MODELS.entry(name)


def list_models(pattern: str | None = None, *, task: str | None = None) -> list[str]:
    """Registered model names matching the wildcard ``pattern`` (aliases match too).

    timm's architectures are not listed (there are over a thousand) but any of
    them is accepted by :func:`create_model`; see ``timm.list_models()``.
    """
    _ensure_registered()
    names = MODELS.list(pattern, include_aliases=True)
    if task is not None:
        names = [n for n in names if MODELS.entry(n).metadata.get("task") == task]
    return names


def _accepts(fn: Callable[..., Any], param: str) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return param in sig.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values()
    )


def _offline_message(name: str, exc: BaseException) -> str:
    """Kept for callers of the old private name; see :func:`visionforge.models.hub.offline_message`."""
    from visionforge.models.hub import offline_message

    return offline_message(name, exc)


def _argument_message(name: str, factory: Callable[..., Any] | None, kwargs: dict[str, Any],
                      exc: BaseException) -> str:
    given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "none"
    accepted = ""
    try:
        params = inspect.signature(factory).parameters if factory is not None else {}
    except (TypeError, ValueError):
        params = {}
    names = [p for p, v in params.items() if v.kind is v.KEYWORD_ONLY or
             v.kind is v.POSITIONAL_OR_KEYWORD]
    if names:
        accepted = f"; its arguments: {', '.join(names)}"
    return (f"model {name!r} rejected its arguments ({given}): {exc}{accepted}. Fix the value "
            "or drop the argument (CLI: model.kwargs.NAME=VALUE)")


def create_model(name: str, *, pretrained: bool | str | os.PathLike[str] = False, **kwargs: Any):
    """Build a model by registry name or alias (case-insensitive), or by any timm model name.

    Args:
        name: e.g. ``"DeepLabV3_plus"``, ``"deepepicnn"``, ``"custom_convnext"`` or ``"resnet18"`` (timm).
        pretrained: ``False``; ``True`` to fetch the library's usual weights (needs a network;
            offline -- ``HF_HUB_OFFLINE=1``, or the hub not answering within
            :data:`~visionforge.models.hub.PROBE_TIMEOUT_S` s -- weights already in the local
            cache still load, otherwise it fails at once with instructions); or a local
            ``.safetensors``/``.pth`` path.
        **kwargs: constructor arguments (``num_classes``, ``in_chans``, ``img_size``, ...).

    Returns:
        A plain ``torch.nn.Module`` with a ``visionforge_spec`` attribute.

    Raises:
        UnknownNameError: ``name`` is neither registered nor a timm model.
        ModelArgumentError: the constructor rejected an argument (a ``ValueError`` and a
            ``TypeError``); the message names the model and the arguments given.
    """
    from visionforge.models.hub import FETCH_ERRORS, fetching_weights
    from visionforge.models.weights import load_weights

    _ensure_registered()
    local_path = None
    if isinstance(pretrained, str | os.PathLike) and not isinstance(pretrained, bool):
        local_path, pretrained = os.fspath(pretrained), False

    if name in MODELS:
        canonical, source = MODELS.canonical(name), "visionforge"
        factory = MODELS.get(canonical)
        if pretrained and not _accepts(factory, "pretrained"):
            raise WeightsError(
                f"Model {canonical!r} has no published pretrained weights; pass a local "
                f"file instead: create_model({canonical!r}, pretrained='/path/to/weights.safetensors')"
            )
        build = partial(factory, **({**kwargs, "pretrained": True} if pretrained else kwargs))
        errors: tuple[type[BaseException], ...] = (OSError, ConnectionError)
    elif is_timm_model(name):
        import timm

        canonical, source, factory = name, "timm", None
        build = partial(timm.create_model, name, pretrained=bool(pretrained), **kwargs)
        errors = FETCH_ERRORS
    else:
        raise UnknownNameError(unknown_model_message(name))

    try:
        if pretrained:  # a download: decided offline within seconds, one clear error
            with fetching_weights(canonical, errors=errors):
                model = build()
        else:
            model = build()
    except VisionforgeError:
        raise
    except (ValueError, TypeError) as exc:
        if isinstance(exc, TypeError) and "keyword argument" not in str(exc):
            raise  # a bug, not a bad argument: keep the traceback
        raise ModelArgumentError(_argument_message(canonical, factory, kwargs, exc)) from exc
    if local_path is not None:
        load_weights(model, local_path)
    set_model_spec(model, canonical, source, kwargs)
    return model

"""``Explainer``: run several explanation methods on one batch and collect the results.

Methods are looked up in :data:`visionforge.registry.EXPLAINERS`; a method that
does not apply to the model (or fails on it) is reported under ``"skipped"``
with the reason, so one unsuitable method never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

# Importing the method modules registers them in EXPLAINERS (each beside its class).
from visionforge.explain import attention, attributions, gradcam  # noqa: F401
from visionforge.explain.base import (
    BaseExplainer,
    NotApplicableError,
    TargetClass,
    attribution_heatmap,
    class_scores,
    eval_mode,
    resolve_targets,
    select_output,
)
from visionforge.registry import EXPLAINERS

__all__ = ["Explainer", "DEFAULT_METHODS", "heatmaps"]

_log = logging.getLogger(__name__)
DEFAULT_METHODS = ("grad_cam", "saliency", "smoothgrad", "integrated_gradients", "attention")


class Explainer:
    """Several explanation methods behind one call.

    Args:
        model: the model to explain.
        methods: names or aliases registered in ``EXPLAINERS`` (default: all built-ins).
        target_layer: Grad-CAM layer (module or dotted name); default chosen per architecture.
        output_key: entry of a multitask dict output to explain.
        options: per-method constructor options, e.g. ``{"smoothgrad": {"num_samples": 8}}``.

    Example:
        >>> result = Explainer(model, methods=["grad_cam", "ig"]).explain(x, target_class=1)
        >>> result["grad_cam"].shape, result["skipped"]
    """

    def __init__(
        self,
        model: nn.Module,
        methods: Sequence[str] = DEFAULT_METHODS,
        *,
        target_layer: nn.Module | str | None = None,
        output_key: str | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.output_key = output_key
        self.methods = [EXPLAINERS.canonical(m) for m in methods]  # unknown name -> clear error
        opts = {EXPLAINERS.canonical(k): dict(v) for k, v in (options or {}).items()}
        self._instances: dict[str, Any] = {}
        self._skipped: dict[str, str] = {}
        for name in self.methods:
            cls = EXPLAINERS.get(name)
            reason = cls.check(model) if hasattr(cls, "check") else None
            if reason:
                self._skipped[name] = reason
                continue
            kwargs = dict(opts.get(name, {}))
            params = _init_params(cls)
            if "target_layer" in params:  # Grad-CAM and its variants
                kwargs.setdefault("target_layer", target_layer)
            if "output_key" in params:
                kwargs.setdefault("output_key", output_key)
            try:
                self._instances[name] = cls(model, **kwargs)
            except NotApplicableError as exc:
                self._skipped[name] = str(exc)

    def explain(
        self,
        inputs: torch.Tensor,
        target_class: TargetClass = None,
        region: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """Run every method on ``inputs``; returns ``{method: result, "target_class": [B],
        "skipped": {method: reason}}``. All methods explain the same target class
        (default: the model's prediction)."""
        with eval_mode(self.model), torch.no_grad():
            scores = class_scores(select_output(self.model(inputs), self.output_key), region)
        targets = resolve_targets(scores, target_class)
        result: dict[str, Any] = {"target_class": targets.cpu()}
        skipped = dict(self._skipped)
        for name, method in self._instances.items():
            try:
                if isinstance(method, BaseExplainer):
                    result[name] = method.attribute(inputs, targets, region=region)
                else:  # a plugin class with only the older ``explain`` call
                    result[name] = method.explain(inputs, target_class=targets, region=region)
            except NotApplicableError as exc:
                skipped[name] = str(exc)
            except Exception as exc:  # one failing method must not lose the others' results
                _log.warning("explanation method %s failed: %s", name, exc)
                skipped[name] = f"failed: {type(exc).__name__}: {exc}"
        result["skipped"] = skipped
        return result

    __call__ = explain


def heatmaps(result: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """``[B, H, W]`` maps in [0, 1] for each method of an :meth:`Explainer.explain` result
    (maps as they are; image attributions: |attr| summed over channels; attention: the
    rollout; 1-D signal attributions have no image map and are left out)."""
    out = {}
    for name, value in result.items():
        if name in ("skipped", "target_class"):
            continue
        kind = getattr(EXPLAINERS.get(name), "kind", None) if name in EXPLAINERS else None
        if isinstance(value, dict):
            if "rollout" in value:
                out[name] = value["rollout"]
        elif kind == "map":
            out[name] = value
        elif value.ndim == 4:
            out[name] = attribution_heatmap(value)
    return out


def _init_params(cls: type) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters)

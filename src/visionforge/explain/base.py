"""The template every explanation method follows, and the pieces it shares.

:class:`BaseExplainer.attribute` is a template method (the shape of pytorch-grad-cam's
``BaseCAM.forward``): it puts the model in eval mode, registers the method's forward
hooks, runs one forward pass to get per-class scores, resolves the target class, calls the
method's single :meth:`~BaseExplainer._attribute`, always removes the hooks and restores the
train/eval mode (also when ``_attribute`` raises), and post-processes the result. A method
is one subclass registered in :data:`visionforge.registry.EXPLAINERS` with
:func:`register_explainer` beside its definition.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from visionforge.errors import VisionforgeError
from visionforge.registry import EXPLAINERS

__all__ = [
    "BaseExplainer",
    "register_explainer",
    "NotApplicableError",
    "Hook",
    "eval_mode",
    "select_output",
    "class_scores",
    "resolve_targets",
    "resize_map",
    "normalize_maps",
    "attribution_heatmap",
]

TargetClass = int | Sequence[int] | torch.Tensor | None
#: A forward hook to register for one call: ``(module, fn(module, args, output))``.
Hook = tuple[nn.Module, Callable[[nn.Module, Any, Any], None]]


class NotApplicableError(VisionforgeError):
    """An explanation method does not apply to this model or input (the message says why)."""


def register_explainer(
    name: str, *, aliases: Sequence[str] = (), description: str = ""
) -> Callable[[type], type]:
    """Class decorator: register an explainer in ``EXPLAINERS`` as ``name`` (and ``aliases``)
    and set its ``name`` attribute, so the registry and the class cannot disagree."""

    def decorator(cls: type) -> type:
        cls.name = name
        EXPLAINERS.add(name, cls, aliases=tuple(aliases), description=description)
        return cls

    return decorator


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block and restore its previous mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


class BaseExplainer:
    """Base class of every explanation method: subclasses implement only :meth:`_attribute`.

    Class attributes a subclass may set:
        name: registry name (set by :func:`register_explainer`).
        kind: what :meth:`attribute` returns: ``"map"`` (a heatmap ``[B, H, W]`` in [0, 1]),
            ``"attribution"`` (same shape as the inputs) or ``"attention"`` (a dict).
        needs_grad: run the scoring forward pass with autograd on, so ``_attribute`` can
            differentiate ``scores`` with respect to ``inputs`` or hooked activations.
        input_ndim: required ``inputs.ndim`` (e.g. 4 for images), ``None`` for any.

    Args:
        model: the model to explain.
        output_key: which entry of a dict (multitask) output to explain.

    Example (see ``docs/explain.md``, "Add an explainer"):
        >>> @register_explainer("input_x_gradient")
        ... class InputXGradient(BaseExplainer):
        ...     needs_grad = True
        ...     def _attribute(self, inputs, targets, scores, region):
        ...         (grad,) = torch.autograd.grad(scores.gather(1, targets[:, None]).sum(), inputs)
        ...         return (inputs * grad).abs().sum(dim=1)
    """

    name: ClassVar[str] = "explainer"
    kind: ClassVar[str] = "map"
    needs_grad: ClassVar[bool] = False
    input_ndim: ClassVar[int | None] = None

    def __init__(self, model: nn.Module, output_key: str | None = None) -> None:
        self.model = model
        self.output_key = output_key
        self.captured: dict[str, Any] = {}  # what hooks record during one call; cleared after it

    @staticmethod
    def check(model: nn.Module) -> str | None:
        """Why this method cannot explain ``model`` (None when it can)."""
        return None

    # -- the steps a subclass may override ------------------------------------------
    def _hooks(self, inputs: torch.Tensor) -> list[Hook]:
        """Forward hooks to hold during one call (they write into ``self.captured``)."""
        return []

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> Any:
        """The method itself. ``inputs``: a copy of the inputs that requires grad;
        ``targets``: ``[B]`` class indices; ``scores``: ``[B, C]`` per-class scores of the
        forward pass (with a graph when ``needs_grad``); ``region``: ``[B, H, W]`` or None."""
        raise NotImplementedError(f"{type(self).__name__} must implement _attribute")

    def _postprocess(self, raw: Any, inputs: torch.Tensor, normalize: bool) -> Any:
        """A coarse map ``[B, h, w]`` (or ``[B, 1, h, w]``) resized to the inputs and, with
        ``normalize``, min-max scaled to [0, 1] per sample."""
        heat = resize_map(raw.detach(), inputs)
        return normalize_maps(heat) if normalize else heat

    def _scores(self, x: torch.Tensor, region: torch.Tensor | None) -> torch.Tensor:
        return class_scores(select_output(self.model(x), self.output_key), region)

    # -- the template ------------------------------------------------------------------
    def attribute(
        self,
        inputs: torch.Tensor,
        target: TargetClass = None,
        *,
        region: torch.Tensor | None = None,
        normalize: bool = True,
    ) -> Any:
        """Explain ``inputs`` for ``target`` (default: the predicted class; for segmentation
        the class whose logits, summed over ``region`` or the whole image, are largest).

        ``region``: ``[H, W]`` or ``[B, H, W]`` mask for segmentation outputs; ``normalize``:
        scale maps to [0, 1] (attributions are never rescaled).
        """
        if self.input_ndim is not None and inputs.ndim != self.input_ndim:
            raise NotApplicableError(
                f"{self.name} needs inputs with {self.input_ndim} dimensions, "
                f"got shape {tuple(inputs.shape)}"
            )
        if region is not None and region.ndim == 2:
            region = region.expand(inputs.shape[0], *region.shape)
        handles: list[torch.utils.hooks.RemovableHandle] = []
        with eval_mode(self.model):
            try:
                # A copy that needs grad, so activations do even for frozen models.
                x = inputs.detach().clone().requires_grad_(True)
                for module, fn in self._hooks(x):
                    handles.append(module.register_forward_hook(fn))
                with torch.set_grad_enabled(self.needs_grad):
                    scores = self._scores(x, region)
                targets = resolve_targets(scores, target)
                with torch.enable_grad():
                    raw = self._attribute(x, targets, scores, region)
            finally:
                for handle in handles:
                    handle.remove()
                self.captured.clear()
        return self._postprocess(raw, inputs, normalize)

    def explain(
        self,
        inputs: torch.Tensor,
        target_class: TargetClass = None,
        region: torch.Tensor | None = None,
        normalize: bool = True,
    ) -> Any:
        """:meth:`attribute` under its original name and argument names."""
        return self.attribute(inputs, target_class, region=region, normalize=normalize)

    __call__ = explain


def select_output(out: Any, output_key: str | None = None) -> torch.Tensor:
    """The tensor to explain from a model output (a multitask dict picks ``output_key``,
    else ``classification``)."""
    if isinstance(out, dict):
        key = output_key or ("classification" if "classification" in out else next(iter(out)))
        if key not in out:
            raise NotApplicableError(f"model output has no {key!r} entry (keys: {sorted(out)})")
        return out[key]
    if isinstance(out, tuple | list):
        return out[0]
    return out


def class_scores(out: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class scores ``[B, C]``: classification logits as they are; segmentation logits
    ``[B, C, H, W]`` summed over ``region`` (``[H, W]`` or ``[B, H, W]`` mask; whole image if None)."""
    if out.ndim == 2:
        return out
    if out.ndim == 4:
        if region is None:
            return out.sum(dim=(2, 3))
        region = region.to(out.device, out.dtype)
        if region.ndim == 2:
            region = region.unsqueeze(0)
        if region.shape[-2:] != out.shape[-2:]:
            raise ValueError(
                f"region shape {tuple(region.shape[-2:])} does not match output {tuple(out.shape[-2:])}"
            )
        return (out * region.unsqueeze(1)).sum(dim=(2, 3))
    raise NotApplicableError(f"cannot explain a model output of shape {tuple(out.shape)}")


def resolve_targets(scores: torch.Tensor, target_class: TargetClass) -> torch.Tensor:
    """Target class per sample: the predicted class when ``target_class`` is None."""
    b, c = scores.shape
    if target_class is None:
        t = scores.detach().argmax(dim=1)
    elif isinstance(target_class, int):
        t = torch.full((b,), int(target_class), dtype=torch.long)
    else:
        t = torch.as_tensor(target_class, dtype=torch.long).reshape(-1)
        if t.numel() == 1:
            t = t.expand(b)
        if t.numel() != b:
            raise ValueError(f"target_class has {t.numel()} entries for a batch of {b}")
    t = t.to(scores.device)
    if int(t.min()) < 0 or int(t.max()) >= c:
        raise ValueError(f"target_class must be in [0, {c - 1}], got {t.tolist()}")
    return t


def resize_map(heat: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """A map ``[B, h, w]`` / ``[B, 1, h, w]`` (or ``[B, l]`` for 1-D inputs) resized to the
    spatial size of ``inputs`` (bilinear; linear for signals)."""
    size = tuple(inputs.shape[2:])
    if heat.ndim == len(size) + 2:
        heat = heat[:, 0]
    if tuple(heat.shape[1:]) == size:
        return heat
    mode = "bilinear" if len(size) == 2 else "linear"
    return F.interpolate(heat[:, None], size=size, mode=mode, align_corners=False)[:, 0]


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of a batch ``[B, ...]`` to [0, 1] (a constant map becomes 0)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo) / scale * (hi > lo)).reshape(maps.shape)


def attribution_heatmap(attr: torch.Tensor) -> torch.Tensor:
    """A ``[B, C, H, W]`` attribution as a ``[B, H, W]`` map in [0, 1] (|attr| summed over channels)."""
    return normalize_maps(attr.detach().abs().sum(dim=1))

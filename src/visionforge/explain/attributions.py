"""Gradient attributions backed by Captum: saliency, SmoothGrad, Integrated Gradients.

One base class wraps the model so that Captum sees per-class scores ``[B, C]``
(classification logits, or segmentation logits summed over a region) and
resolves the target class; each method overrides only how Captum is called.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from visionforge.explain.base import (
    TargetClass,
    class_scores,
    eval_mode,
    resolve_targets,
    select_output,
)

__all__ = ["GradientAttribution", "VanillaSaliency", "SmoothGrad", "IntegratedGradients"]


class GradientAttribution:
    """Base class: ``explain(inputs, target_class=None, region=None) -> [B, C, H, W]``
    (same shape as ``inputs``, so 1-D signals ``[B, C, L]`` work too)."""

    name = "attribution"

    def __init__(self, model: nn.Module, output_key: str | None = None) -> None:
        self.model = model
        self.output_key = output_key

    @staticmethod
    def check(model: nn.Module) -> str | None:
        """Why this method cannot explain ``model`` (None: gradients always apply)."""
        return None

    def _forward(self, x: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
        return class_scores(select_output(self.model(x), self.output_key), region)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor, extra: Any) -> torch.Tensor:
        raise NotImplementedError

    def explain(
        self,
        inputs: torch.Tensor,
        target_class: TargetClass = None,
        region: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attributions for ``target_class`` (default: the predicted class)."""
        with eval_mode(self.model):
            if region is not None and region.ndim == 2:
                region = region.expand(inputs.shape[0], *region.shape)
            extra = (region,) if region is not None else None
            with torch.no_grad():
                targets = resolve_targets(self._forward(inputs, region), target_class)
            with torch.enable_grad():
                attr = self._attribute(inputs.detach().clone().requires_grad_(True), targets, extra)
        return attr.detach()

    __call__ = explain


class VanillaSaliency(GradientAttribution):
    """|d score / d input| (Simonyan et al. 2014) via ``captum.attr.Saliency``."""

    name = "saliency"

    def __init__(self, model: nn.Module, output_key: str | None = None, abs: bool = True) -> None:
        super().__init__(model, output_key)
        self.abs = abs

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor, extra: Any) -> torch.Tensor:
        from captum.attr import Saliency

        return Saliency(self._forward).attribute(
            inputs, target=targets.tolist(), abs=self.abs, additional_forward_args=extra
        )


class SmoothGrad(GradientAttribution):
    """Saliency averaged over noisy copies of the input (``captum.attr.NoiseTunnel``).

    Args:
        num_samples: noisy copies per input.
        noise: noise standard deviation as a fraction of each input's value range.
    """

    name = "smoothgrad"

    def __init__(
        self,
        model: nn.Module,
        output_key: str | None = None,
        num_samples: int = 16,
        noise: float = 0.15,
    ) -> None:
        super().__init__(model, output_key)
        self.num_samples = num_samples
        self.noise = noise

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor, extra: Any) -> torch.Tensor:
        from captum.attr import NoiseTunnel, Saliency

        flat = inputs.detach().reshape(inputs.shape[0], -1)
        spread = float((flat.max(dim=1).values - flat.min(dim=1).values).mean()) or 1.0
        return NoiseTunnel(Saliency(self._forward)).attribute(
            inputs,
            nt_type="smoothgrad",
            nt_samples=self.num_samples,
            stdevs=self.noise * spread,
            target=targets.tolist(),
            additional_forward_args=extra,
        )


class IntegratedGradients(GradientAttribution):
    """Integrated Gradients (Sundararajan et al. 2017) via ``captum.attr.IntegratedGradients``.

    Args:
        num_steps: Riemann steps along the path from baseline to input.
        baseline: a float (constant image), a tensor broadcastable to the inputs, or None (zeros).
        internal_batch_size: evaluate the path in chunks of this many samples (memory bound).

    After ``explain`` the completeness error per sample (sum of attributions minus
    f(input) - f(baseline)) is in ``last_delta``.
    """

    name = "integrated_gradients"

    def __init__(
        self,
        model: nn.Module,
        output_key: str | None = None,
        num_steps: int = 50,
        baseline: float | torch.Tensor | None = None,
        internal_batch_size: int | None = None,
    ) -> None:
        super().__init__(model, output_key)
        self.num_steps = num_steps
        self.baseline = baseline
        self.internal_batch_size = internal_batch_size
        self.last_delta: torch.Tensor | None = None

    def _baselines(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.baseline is None:
            return torch.zeros_like(inputs)
        if isinstance(self.baseline, int | float):
            return torch.full_like(inputs, float(self.baseline))
        return torch.as_tensor(self.baseline, dtype=inputs.dtype, device=inputs.device).expand_as(
            inputs
        )

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor, extra: Any) -> torch.Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        attr, delta = CaptumIG(self._forward).attribute(
            inputs,
            baselines=self._baselines(inputs),
            target=targets.tolist(),
            n_steps=self.num_steps,
            internal_batch_size=self.internal_batch_size,
            additional_forward_args=extra,
            return_convergence_delta=True,
        )
        self.last_delta = delta.detach()
        return attr

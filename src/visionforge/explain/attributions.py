"""Gradient attributions backed by Captum: saliency, SmoothGrad, Integrated Gradients.

:class:`GradientAttribution` hands Captum a forward function giving per-class scores
``[B, C]`` (classification logits, or segmentation logits summed over a region); the
base class :class:`~visionforge.explain.base.BaseExplainer` resolves the target class
and restores the model's mode, and each method implements only ``_attribute``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from visionforge.explain.base import BaseExplainer, register_explainer

__all__ = ["GradientAttribution", "VanillaSaliency", "SmoothGrad", "IntegratedGradients"]


class GradientAttribution(BaseExplainer):
    """Base class of the Captum methods: ``attribute(inputs, target=None, region=None)``
    returns attributions of the same shape as ``inputs`` (so 1-D signals ``[B, C, L]`` work
    too); they are never rescaled."""

    name = "attribution"
    kind = "attribution"

    def _forward(self, x: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
        return self._scores(x, region)

    @staticmethod
    def _extra(region: torch.Tensor | None) -> tuple[torch.Tensor] | None:
        """Captum's ``additional_forward_args`` (split along the batch with the inputs)."""
        return (region,) if region is not None else None

    def _postprocess(self, raw: Any, inputs: torch.Tensor, normalize: bool) -> torch.Tensor:
        return raw.detach()


@register_explainer(
    "saliency",
    aliases=("vanilla_saliency", "gradient"),
    description="|gradient| saliency [B, C, H, W]",
)
class VanillaSaliency(GradientAttribution):
    """|d score / d input| (Simonyan et al. 2014) via ``captum.attr.Saliency``."""

    def __init__(self, model: nn.Module, output_key: str | None = None, abs: bool = True) -> None:
        super().__init__(model, output_key)
        self.abs = abs

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> Tensor:
        from captum.attr import Saliency

        return Saliency(self._forward).attribute(
            inputs,
            target=targets.tolist(),
            abs=self.abs,
            additional_forward_args=self._extra(region),
        )


@register_explainer(
    "smoothgrad",
    aliases=("smooth_grad", "noise_tunnel"),
    description="SmoothGrad saliency [B, C, H, W]",
)
class SmoothGrad(GradientAttribution):
    """Saliency averaged over noisy copies of the input (``captum.attr.NoiseTunnel``).

    Args:
        num_samples: noisy copies per input.
        noise: noise standard deviation as a fraction of each input's value range.
    """

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

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> Tensor:
        from captum.attr import NoiseTunnel, Saliency

        flat = inputs.detach().reshape(inputs.shape[0], -1)
        spread = float((flat.max(dim=1).values - flat.min(dim=1).values).mean()) or 1.0
        return NoiseTunnel(Saliency(self._forward)).attribute(
            inputs,
            nt_type="smoothgrad",
            nt_samples=self.num_samples,
            stdevs=self.noise * spread,
            target=targets.tolist(),
            additional_forward_args=self._extra(region),
        )


@register_explainer(
    "integrated_gradients",
    aliases=("ig", "integratedgradients"),
    description="Integrated Gradients [B, C, H, W]",
)
class IntegratedGradients(GradientAttribution):
    """Integrated Gradients (Sundararajan et al. 2017) via ``captum.attr.IntegratedGradients``.

    Args:
        num_steps: Riemann steps along the path from baseline to input.
        baseline: a float (constant image), a tensor broadcastable to the inputs, or None (zeros).
        internal_batch_size: evaluate the path in chunks of this many samples (memory bound).

    After ``attribute`` the completeness error per sample (sum of attributions minus
    f(input) - f(baseline)) is in ``last_delta``.
    """

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

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> Tensor:
        from captum.attr import IntegratedGradients as CaptumIG

        attr, delta = CaptumIG(self._forward).attribute(
            inputs,
            baselines=self._baselines(inputs),
            target=targets.tolist(),
            n_steps=self.num_steps,
            internal_batch_size=self.internal_batch_size,
            additional_forward_args=self._extra(region),
            return_convergence_delta=True,
        )
        self.last_delta = delta.detach()
        return attr

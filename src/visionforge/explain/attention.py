"""Per-layer attention maps and attention rollout (Abnar & Zuidema 2020) for timm ViTs.

timm computes attention with a fused kernel that never materialises the
softmax, so a forward hook on each ``Attention`` module recomputes it from the
module's own ``qkv`` projection (and q/k norms) on the module's input. This
keeps the model untouched (no monkey-patching, no toggling ``fused_attn``); the
base class holds the hooks only for the duration of one ``attribute`` call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from visionforge.explain.base import (
    BaseExplainer,
    Hook,
    NotApplicableError,
    normalize_maps,
    register_explainer,
)
from visionforge.explain.layers import is_swin

__all__ = ["AttentionMaps", "attention_modules", "attention_rollout"]


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """Global self-attention modules (timm-style: ``qkv`` linear and ``num_heads``) in order."""
    return [
        m
        for m in model.modules()
        if isinstance(getattr(m, "qkv", None), nn.Linear)
        and hasattr(m, "num_heads")
        and not hasattr(m, "window_size")
    ]


def _attention_probs(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, n, _ = x.shape
    heads = module.num_heads
    qkv = module.qkv(x).reshape(b, n, 3, heads, -1).permute(2, 0, 3, 1, 4)
    q, k = qkv[0], qkv[1]
    if hasattr(module, "q_norm"):
        q, k = module.q_norm(q), module.k_norm(k)
    scale = getattr(module, "scale", q.shape[-1] ** -0.5)
    return ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)


def attention_rollout(layers: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Roll out head-averaged attention ``[B, L, N, N]`` through the residual stream -> ``[B, N, N]``."""
    b, _, n, _ = layers.shape
    eye = torch.eye(n, device=layers.device, dtype=layers.dtype).expand(b, n, n)
    joint = eye.clone()
    for a in layers.unbind(dim=1):
        a = residual * eye + (1 - residual) * a
        a = a / a.sum(dim=-1, keepdim=True)
        joint = a @ joint
    return joint


@register_explainer(
    "attention",
    aliases=("attention_maps", "attention_rollout"),
    description="ViT attention maps and rollout",
)
class AttentionMaps(BaseExplainer):
    """Attention of a timm ViT: per-layer maps (mean over heads) and rollout.

    ``attribute(inputs)`` returns a dict (the target class is ignored: attention is
    class-agnostic): ``layers`` ``[B, L, N, N]`` (head-averaged attention per layer),
    ``cls_attention`` ``[B, L, gh, gw]`` (class-token -> patch attention per layer; the mean
    over query tokens when the model has no class token), ``rollout_grid`` ``[B, gh, gw]`` and
    ``rollout`` ``[B, H, W]`` (upsampled to the input, in [0, 1]).
    """

    kind = "attention"
    input_ndim = 4

    def __init__(self, model: nn.Module, output_key: str | None = None) -> None:
        super().__init__(model, output_key)
        reason = self.check(model)
        if reason:
            raise NotApplicableError(reason)
        self.modules = attention_modules(model)

    @staticmethod
    def check(model: nn.Module) -> str | None:
        """Why attention maps do not apply to ``model`` (None when they do)."""
        if is_swin(model):
            return "Swin uses shifted-window attention; there is no global attention to roll out"
        if not attention_modules(model) or not hasattr(model, "patch_embed"):
            return "model has no timm-style global self-attention blocks (not a ViT)"
        return None

    def _grid(self, inputs: torch.Tensor, n: int) -> tuple[int, int, int]:
        patch = getattr(self.model.patch_embed, "patch_size", None)
        if patch is None:
            raise NotApplicableError("cannot infer the patch grid (patch_embed has no patch_size)")
        gh, gw = inputs.shape[-2] // patch[0], inputs.shape[-1] // patch[1]
        return gh, gw, n - gh * gw

    def _hooks(self, inputs: torch.Tensor) -> list[Hook]:
        def make_hook(i: int) -> Any:
            def hook(module: nn.Module, args: Any, out: Any) -> None:
                with torch.no_grad():
                    self.captured[i] = _attention_probs(module, args[0]).mean(dim=1)

            return hook

        return [(m, make_hook(i)) for i, m in enumerate(self.modules)]

    def _attribute(
        self, inputs: Tensor, targets: Tensor, scores: Tensor, region: Tensor | None
    ) -> dict[str, Tensor]:
        if len(self.captured) != len(self.modules):
            raise NotApplicableError("not every attention block ran in the forward pass")
        layers = torch.stack([self.captured[i] for i in range(len(self.modules))], dim=1)
        b, num_layers, n, _ = layers.shape
        gh, gw, prefix = self._grid(inputs, n)
        if prefix < 0:
            raise NotApplicableError(f"{n} tokens do not cover a {gh}x{gw} patch grid")
        joint = attention_rollout(layers)
        if prefix > 0:
            per_layer, rolled = layers[:, :, 0, prefix:], joint[:, 0, prefix:]
        else:
            per_layer, rolled = layers.mean(dim=2), joint.mean(dim=1)
        return {
            "layers": layers,
            "cls_attention": per_layer.reshape(b, num_layers, gh, gw),
            "rollout_grid": normalize_maps(rolled.reshape(b, gh, gw)),
        }

    def _postprocess(
        self, raw: dict[str, torch.Tensor], inputs: torch.Tensor, normalize: bool
    ) -> dict[str, Tensor]:
        rollout = super()._postprocess(raw["rollout_grid"], inputs, normalize=True)
        return {**raw, "rollout": rollout}

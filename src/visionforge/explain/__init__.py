"""Why a model decides what it decides: Grad-CAM(++), Captum attributions and ViT attention.

Every method is a :class:`BaseExplainer` subclass with one call,
``method.attribute(inputs, target=None)`` (``explain(inputs, target_class=...)`` is the same);
each is registered in :data:`visionforge.registry.EXPLAINERS` beside its class.
:class:`Explainer` runs several and reports methods that do not apply instead of failing.
"""

from visionforge.explain.attention import AttentionMaps, attention_rollout
from visionforge.explain.attributions import (
    GradientAttribution,
    IntegratedGradients,
    SmoothGrad,
    VanillaSaliency,
)
from visionforge.explain.base import (
    BaseExplainer,
    NotApplicableError,
    attribution_heatmap,
    normalize_maps,
    register_explainer,
)
from visionforge.explain.explainer import DEFAULT_METHODS, Explainer, heatmaps
from visionforge.explain.gradcam import GradCAM, GradCAMPlusPlus
from visionforge.explain.layers import find_target_layer
from visionforge.explain.overlay import overlay_heatmap, save_overlay

__all__ = [
    "BaseExplainer",
    "register_explainer",
    "GradCAM",
    "GradCAMPlusPlus",
    "VanillaSaliency",
    "SmoothGrad",
    "IntegratedGradients",
    "GradientAttribution",
    "AttentionMaps",
    "Explainer",
    "DEFAULT_METHODS",
    "NotApplicableError",
    "overlay_heatmap",
    "save_overlay",
    "heatmaps",
    "attribution_heatmap",
    "normalize_maps",
    "attention_rollout",
    "find_target_layer",
]

"""Fast inference from a model dir: ``Predictor``, sliding-window inference and flip TTA."""

from __future__ import annotations

from visionforge.inference.predictor import BACKENDS, Predictor
from visionforge.inference.preprocess import load_image, prepare_batch, to_samples
from visionforge.inference.sliding_window import blend_weights, sliding_window_inference
from visionforge.inference.tta import tta

__all__ = [
    "Predictor",
    "BACKENDS",
    "sliding_window_inference",
    "blend_weights",
    "tta",
    "load_image",
    "to_samples",
    "prepare_batch",
]

"""The modular library reference's names (``models``, ``training``, ``data``, ``evaluation``,
``explainability``) over the visionforge core; see ``docs/migrating.md``.

Most names are the core classes themselves (they were built to that reference). What the
layer adds: datasets that yield ``(image, target)`` tuples by default (so
``images, labels = next(iter(loader))`` works; the dummy datasets keep yielding dicts as the
reference's testing utilities use ``batch["image"]``), :class:`Transforms` (one callable for
train or eval, classification or segmentation), and :class:`BaseExplainer` whose subclasses
implement ``explain(inputs, model, target_class)`` directly.

Example:
    >>> from visionforge.compat.library import DummyClassificationDataset
    >>> DummyClassificationDataset(num_samples=2, image_size=(8, 12))[0]["image"].shape
    torch.Size([3, 8, 12])
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from visionforge.data import ClassificationDataset as _ClassificationDataset
from visionforge.data import DummyClassificationDataset, DummySegmentationDataset
from visionforge.data import SegmentationDataset as _SegmentationDataset
from visionforge.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transforms,
    train_transforms,
)
from visionforge.engine import MixedPrecisionManager, Trainer, enable_cudnn_determinism, set_seed
from visionforge.evaluation import (
    ClassificationMetrics,
    Evaluator,
    Experiment,
    SegmentationMetrics,
)
from visionforge.explain import (
    AttentionMaps,
    Explainer,
    GradCAM,
    IntegratedGradients,
    SmoothGrad,
    VanillaSaliency,
)
from visionforge.explain import BaseExplainer as _CoreExplainer
from visionforge.models.backbones import CNNBackbone
from visionforge.models.backbones import VisionTransformer as _CoreViT
from visionforge.models.backbones import ViTSpatial as _CoreViTSpatial
from visionforge.models.decoders import UNetDecoder
from visionforge.models.layers import CBAM
from visionforge.models.multitask import MultitaskModel

__all__ = [
    "CNNBackbone", "VisionTransformer", "ViTSpatial", "CBAM", "UNetDecoder", "MultitaskModel",
    "Trainer", "MixedPrecisionManager",
    "ClassificationDataset", "SegmentationDataset", "DummyClassificationDataset",
    "DummySegmentationDataset", "Transforms",
    "ClassificationMetrics", "SegmentationMetrics", "Evaluator", "Experiment", "set_seed",
    "enable_cudnn_determinism",
    "BaseExplainer", "GradCAM", "VanillaSaliency", "SmoothGrad", "IntegratedGradients",
    "AttentionMaps", "Explainer",
]


class VisionTransformer(_CoreViT):
    """The core ViT backbone with the reference's ``image_size`` argument (ours: ``img_size``)."""

    def __init__(self, image_size: int | None = None, patch_size: int = 16, num_layers: int = 12,
                 hidden_dim: int = 768, num_heads: int = 12, mlp_dim: int = 3072,
                 **kwargs: Any) -> None:
        if image_size is not None:
            kwargs.setdefault("img_size", image_size)
        super().__init__(patch_size=patch_size, num_layers=num_layers, hidden_dim=hidden_dim,
                         num_heads=num_heads, mlp_dim=mlp_dim, **kwargs)


class ViTSpatial(VisionTransformer, _CoreViTSpatial):
    """The core ``ViTSpatial`` with the reference's ``image_size`` argument."""


class ClassificationDataset(_ClassificationDataset):
    """The core dataset yielding ``(image, label)`` tuples (``return_tuple=False``: dicts)."""

    def __init__(self, root: str | os.PathLike[str], split: str | None = None,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 *, return_tuple: bool = True, **kwargs: Any) -> None:
        if split is not None and not _has_split(root, split):
            split = None  # the reference passes split="train" with root="data/train"
        super().__init__(root, split, transform, return_tuple=return_tuple, **kwargs)


def _has_split(root: str | os.PathLike[str], split: str) -> bool:
    from pathlib import Path

    base = Path(root)
    return (base / split).is_dir() or (base / "splits.csv").is_file()


class SegmentationDataset(_SegmentationDataset):
    """The core dataset yielding ``(image, mask)`` tuples (``return_tuple=False``: dicts)."""

    def __init__(self, images_dir: str | os.PathLike[str], masks_dir: str | os.PathLike[str],
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 *, return_tuple: bool = True, **kwargs: Any) -> None:
        super().__init__(images_dir, masks_dir, transform, return_tuple=return_tuple, **kwargs)


class Transforms:
    """``Transforms(resize=224, augment=True, normalize=True)``: the core's
    :func:`train_transforms` (``augment``) or :func:`eval_transforms`, for a classification or
    segmentation sample (chosen per call by whether it has a ``mask``: the mask gets the same
    geometric steps, nearest-neighbour). ``normalize`` uses the ImageNet mean/std."""

    def __init__(self, resize: int | Sequence[int] = 224, augment: bool = False,
                 normalize: bool = True, **kwargs: Any) -> None:
        self.resize, self.augment, self.normalize = resize, augment, normalize
        self.kwargs = kwargs  # further train_transforms options (hflip=, rotation=, ...)
        stats = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD} if normalize else {}
        build = train_transforms if augment else eval_transforms
        options = {**stats, **(kwargs if augment else {})}
        self._pipelines = {task: build(task, resize, **options)
                           for task in ("classification", "segmentation")}

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        task = "segmentation" if "mask" in sample else "classification"
        return self._pipelines[task](sample)

    def __repr__(self) -> str:
        return f"Transforms(resize={self.resize}, augment={self.augment}, normalize={self.normalize})"


class BaseExplainer(_CoreExplainer, abc.ABC):
    """The reference's abstract explainer: a subclass implements
    ``explain(inputs, model, target_class)`` and returns ``[B, H, W]`` or ``[B, C, H, W]``.

    It is still a core :class:`~visionforge.explain.BaseExplainer`: the model may be given at
    construction (``MyExplainer(model)``) and ``attribute(inputs, target)`` then calls
    ``explain(inputs, self.model, target)`` in eval mode.
    """

    def __init__(self, model: nn.Module | None = None, output_key: str | None = None) -> None:
        super().__init__(model, output_key)  # type: ignore[arg-type]

    @abc.abstractmethod
    def explain(self, inputs: Any, model: nn.Module, target_class: Any = None) -> Any:  # type: ignore[override]
        """Attribution for ``inputs`` of ``model`` towards ``target_class``."""

    def attribute(self, inputs: Any, target: Any = None, **_: Any) -> Any:  # type: ignore[override]
        from visionforge.explain.base import eval_mode

        if self.model is None:
            raise ValueError(f"{type(self).__name__} was built without a model; call explain()")
        with eval_mode(self.model):
            return self.explain(inputs, self.model, target)

    __call__ = attribute

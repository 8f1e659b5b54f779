"""The 15 classification families of the disease-classification pipeline.

One module per family, each registering a factory under ``custom_<family>``
with the pipeline's class name as alias (e.g. ``CustomConvNeXt``). Every
factory takes ``num_classes``, ``in_chans``, ``img_size``, ``size``
(``"tiny"``, ``"small"``, ``"base"``), ``pretrained`` and ``drop_rate``, and
returns a :class:`BackboneHeadClassifier` exposing ``backbone`` and ``head``.
Each registration also declares the family's ``lr_multiplier`` (on the run's base
learning rate), preferred ``scheduler`` and ``kind`` (``cnn``, ``transformer``,
``hybrid``); read them with :func:`visionforge.models.spec.registry_metadata`.
"""

from __future__ import annotations

from visionforge.models.classification import (  # noqa: F401  (imported to register)
    coatnet,
    convnext,
    cspdarknet,
    deit,
    densenet_hybrid,
    dynamic_conv,
    efficientnetv2,
    ghostnetv2,
    inception_v4,
    maxvit,
    mobileone,
    regnet,
    resnet_mish,
    small_cnn,
    swin,
    vit_hybrid,
)
from visionforge.models.classification.base import BackboneHeadClassifier

__all__ = ["BackboneHeadClassifier"]

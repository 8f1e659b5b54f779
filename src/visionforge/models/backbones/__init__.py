"""Encoders returning feature pyramids: ResNet ``CNNBackbone``, ViTs, any timm model."""

from visionforge.models.backbones.cnn import CNNBackbone
from visionforge.models.backbones.encoder import TimmFeatures, create_encoder
from visionforge.models.backbones.vit import VisionTransformer, ViTSpatial

__all__ = ["CNNBackbone", "VisionTransformer", "ViTSpatial", "TimmFeatures", "create_encoder"]

"""Decoders turning feature pyramids into dense logits."""

from visionforge.models.decoders.deeplab import DeepLabV3PlusDecoder
from visionforge.models.decoders.unet import DecoderBlock, UNetDecoder

__all__ = ["UNetDecoder", "DecoderBlock", "DeepLabV3PlusDecoder"]

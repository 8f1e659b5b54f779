"""Keras 3 versions of our DeepLabV3+ (CODAvision), UNet (ResNet encoders) and DeepEpiCnn.

Each mirrors the PyTorch model layer for layer: every Keras layer that holds
weights is named after the PyTorch module it corresponds to (``backbone.layer1.0.conv1``,
``head.aspp.branches.1.0``...), which is what :mod:`~visionforge.interop.tensorflow.weights`
uses to move weights between them. Padding is explicit (``ZeroPadding`` + ``valid``
convolutions) because Keras' ``same`` padding is asymmetric for stride 2 and PyTorch's
is symmetric; BatchNorm uses PyTorch's epsilon (1e-5) and momentum (0.1 = Keras 0.9).
Inputs are NHWC (images) or NLC (signals); outputs are logits, channels-last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from visionforge.errors import ConfigError
from visionforge.interop.tensorflow import require_tensorflow
from visionforge.interop.tensorflow.layers import custom_layers
from visionforge.registry import Registry

__all__ = [
    "build_deeplabv3plus",
    "build_unet",
    "build_deepepicnn",
    "KERAS_MODELS",
    "build_keras_model",
]

_RESNET_BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
_UNET_DEFAULT_CHANNELS = (256, 128, 64, 32, 16, 16, 16, 16)


def _hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    size = [int(v) for v in image_size]
    if len(size) == 3:  # (H, W, C) as CODAvision passes it
        size = size[:2]
    if len(size) != 2:
        raise ConfigError(f"image size must be N, (H, W) or (H, W, C), got {image_size!r}")
    return size[0], size[1]


class _Builder:
    """Layer helpers that name layers after PyTorch modules and apply L2 regularisation."""

    def __init__(self, l2: float = 0.0) -> None:
        _, self.keras = require_tensorflow("building a Keras model")
        self.L = self.keras.layers
        self.reg = self.keras.regularizers.L2(l2) if l2 else None
        self.custom = custom_layers()

    def conv2d(
        self,
        x: Any,
        filters: int,
        k: int,
        name: str,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = False,
        pad: int | None = None,
    ) -> Any:
        p = dilation * (k // 2) if pad is None else pad
        if p:
            x = self.L.ZeroPadding2D(p, name=f"{name}_pad")(x)
        return self.L.Conv2D(
            filters,
            k,
            strides=stride,
            dilation_rate=dilation,
            padding="valid",
            use_bias=bias,
            kernel_regularizer=self.reg,
            name=name,
        )(x)

    def conv1d(self, x: Any, filters: int, k: int, name: str, stride: int = 1) -> Any:
        return self.L.Conv1D(
            filters,
            k,
            strides=stride,
            padding="valid",
            use_bias=True,
            kernel_regularizer=self.reg,
            name=name,
        )(x)

    def dense(self, x: Any, units: int, name: str) -> Any:
        return self.L.Dense(units, kernel_regularizer=self.reg, name=name)(x)

    def bn(self, x: Any, name: str) -> Any:
        return self.L.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name)(x)

    def relu(self, x: Any) -> Any:
        return self.L.ReLU()(x)

    def conv_bn_relu(self, x: Any, filters: int, k: int, name: str, dilation: int = 1) -> Any:
        """Mirror of ``visionforge.models.layers.aspp.conv_bn_relu`` (``name.0`` conv, ``name.1`` BN)."""
        x = self.conv2d(x, filters, k, f"{name}.0", dilation=dilation)
        return self.relu(self.bn(x, f"{name}.1"))

    def resize(self, x: Any, size: tuple[int, int], name: str | None = None) -> Any:
        return self.custom["ResizeBilinear"](size, name=name)(x)

    # -- ResNet (timm layout, as CNNBackbone) ----------------------------------------
    def resnet(self, x: Any, depth: int, prefix: str) -> list[Any]:
        if depth not in _RESNET_BLOCKS:
            raise ConfigError(f"ResNet depth must be one of {tuple(_RESNET_BLOCKS)}, got {depth}")
        bottleneck = depth >= 50
        x = self.conv2d(x, 64, 7, f"{prefix}conv1", stride=2, pad=3)
        x = self.relu(self.bn(x, f"{prefix}bn1"))
        # Zero padding equals PyTorch's -inf padding here: the input is >= 0 after ReLU.
        x = self.L.ZeroPadding2D(1, name=f"{prefix}maxpool_pad")(x)
        x = self.L.MaxPooling2D(3, strides=2, padding="valid", name=f"{prefix}maxpool")(x)
        in_ch, feats = 64, []
        for stage, n_blocks in enumerate(_RESNET_BLOCKS[depth]):
            width = 64 * 2**stage
            out_ch = width * 4 if bottleneck else width
            for b in range(n_blocks):
                stride = 2 if (stage > 0 and b == 0) else 1
                name = f"{prefix}layer{stage + 1}.{b}"
                shortcut = x
                if bottleneck:
                    y = self.relu(self.bn(self.conv2d(x, width, 1, f"{name}.conv1"), f"{name}.bn1"))
                    y = self.relu(
                        self.bn(
                            self.conv2d(y, width, 3, f"{name}.conv2", stride=stride), f"{name}.bn2"
                        )
                    )
                    y = self.bn(self.conv2d(y, out_ch, 1, f"{name}.conv3"), f"{name}.bn3")
                else:
                    y = self.relu(
                        self.bn(
                            self.conv2d(x, width, 3, f"{name}.conv1", stride=stride), f"{name}.bn1"
                        )
                    )
                    y = self.bn(self.conv2d(y, width, 3, f"{name}.conv2"), f"{name}.bn2")
                if stride != 1 or in_ch != out_ch:
                    shortcut = self.conv2d(x, out_ch, 1, f"{name}.downsample.0", stride=stride)
                    shortcut = self.bn(shortcut, f"{name}.downsample.1")
                x = self.relu(self.L.Add()([y, shortcut]))
                in_ch = out_ch
            feats.append(x)
        return feats


def build_deeplabv3plus(
    image_size: int | Sequence[int],
    num_classes: int = 5,
    *,
    l2_regularization_weight: float = 0.0,
    name: str = "DeepLabV3_plus",
) -> Any:
    """The CODAvision DeepLabV3+ in Keras, mirroring ``deeplabv3plus_codavision``.

    Input: RGB in [0, 255], NHWC of ``image_size``; BGR mean subtraction inside.
    Output: logits ``[B, H, W, num_classes]``.
    """
    b = _Builder(l2_regularization_weight)
    h, w = _hw(image_size)
    inputs = b.keras.Input((h, w, 3), name="image")
    x = b.custom["BgrMeanPreprocess"](name="preprocess")(inputs)
    feats = b.resnet(x, 50, "backbone.")
    low, deep = feats[1], feats[-1]
    # ASPP on layer4 (head.aspp.*)
    branches = [b.conv_bn_relu(deep, 256, 1, "head.aspp.branches.0")]
    for i, rate in enumerate((6, 12, 18), start=1):
        branches.append(b.conv_bn_relu(deep, 256, 3, f"head.aspp.branches.{i}", dilation=rate))
    pooled = b.L.GlobalAveragePooling2D(keepdims=True, name="head.aspp.pooling.0")(deep)
    pooled = b.conv2d(pooled, 256, 1, "head.aspp.pooling.1")
    pooled = b.relu(b.bn(pooled, "head.aspp.pooling.2"))
    branches.append(b.resize(pooled, tuple(deep.shape[1:3])))
    x = b.L.Concatenate(axis=-1)(branches)
    x = b.conv_bn_relu(x, 256, 1, "head.aspp.project.0")
    x = b.L.Dropout(0.5)(x)
    # Decoder (head.low_level, head.refine, head.classifier)
    low = b.conv_bn_relu(low, 48, 1, "head.low_level")
    x = b.resize(x, tuple(low.shape[1:3]))
    x = b.L.Concatenate(axis=-1)([x, low])
    x = b.conv_bn_relu(x, 256, 3, "head.refine.0")
    x = b.L.Dropout(0.5)(x)
    x = b.conv_bn_relu(x, 256, 3, "head.refine.2")
    x = b.L.Dropout(0.1)(x)
    x = b.conv2d(x, num_classes, 1, "head.classifier", bias=True)
    outputs = b.resize(x, (h, w), name="logits")
    return b.keras.Model(inputs, outputs, name=name)


def build_unet(
    image_size: int | Sequence[int],
    num_classes: int = 2,
    *,
    in_chans: int = 3,
    backbone: str = "resnet18",
    decoder_channels: Sequence[int] | None = None,
    upsample_stages: int = 2,
    l2_regularization_weight: float = 0.0,
    name: str = "UNet",
) -> Any:
    """U-Net with a ResNet encoder in Keras, mirroring our ``unet`` model (ResNet backbones).

    ``upsample_stages`` mirrors the PyTorch decoder's x2 upsample+conv stages after the last
    skip (``log2`` of the encoder's first stride: 2 for ResNets; 0 for a decoder built
    without ``strides``). Output: logits ``[B, H, W, num_classes]``.
    """
    key = backbone.lower()
    if not (key.startswith("resnet") and key[6:].isdigit() and int(key[6:]) in _RESNET_BLOCKS):
        raise ConfigError(
            f"the Keras UNet supports ResNet encoders (resnet18/34/50/101/152), got {backbone!r}"
        )
    b = _Builder(l2_regularization_weight)
    h, w = _hw(image_size)
    inputs = b.keras.Input((h, w, in_chans), name="image")
    feats = b.resnet(inputs, int(key[6:]), "backbone.")
    chans = [int(f.shape[-1]) for f in feats]
    dec = (
        list(decoder_channels)
        if decoder_channels is not None
        else list(_UNET_DEFAULT_CHANNELS[: len(chans)])
    )
    if len(dec) != len(chans):
        raise ConfigError(
            f"decoder_channels has {len(dec)} entries but the pyramid has {len(chans)} levels"
        )
    x = b.conv_bn_relu(feats[-1], dec[0], 3, "head.center.convs.0")
    x = b.conv_bn_relu(x, dec[0], 3, "head.center.convs.1")
    for i, skip in enumerate(feats[-2::-1]):
        if tuple(x.shape[1:3]) != tuple(skip.shape[1:3]):
            x = b.resize(x, tuple(skip.shape[1:3]))
        x = b.L.Concatenate(axis=-1)([x, skip])
        x = b.conv_bn_relu(x, dec[i + 1], 3, f"head.blocks.{i}.convs.0")
        x = b.conv_bn_relu(x, dec[i + 1], 3, f"head.blocks.{i}.convs.1")
    # Full-resolution refinement (UNetDecoder's ``upsample`` stages): x2 bilinear + conv-BN-ReLU
    # per halving of the encoder's first stride (4 for ResNets -> 2 stages).
    for j in range(int(upsample_stages)):
        x = b.resize(x, (int(x.shape[1]) * 2, int(x.shape[2]) * 2))
        x = b.conv_bn_relu(x, dec[-1], 3, f"head.upsample.{j}")
    x = b.conv2d(x, num_classes, 1, "head.classifier", bias=True)
    outputs = b.resize(x, (h, w), name="logits")
    return b.keras.Model(inputs, outputs, name=name)


def build_deepepicnn(
    num_classes: int = 2,
    *,
    length: int = 750,
    in_chans: int = 1,
    dropout: float = 0.025,
    conv_dropout: float = 0.0,
    l2_regularization_weight: float = 0.0,
    name: str = "DeepEpiCnn",
) -> Any:
    """nnTraining2's DeepEpiCnn in Keras (input ``[B, length, channels]``), mirroring ``deepepicnn``."""
    b = _Builder(l2_regularization_weight)
    filters = (16,) + (32,) * 11 + (64, 64)
    inputs = b.keras.Input((length, in_chans), name="signal")
    x = inputs
    for i, f in enumerate(filters):
        stride = 2 if (i + 1) in (5, 10, 14) else 1
        x = b.conv1d(x, f, 5, f"backbone.{i}.0", stride=stride)
        x = b.relu(b.bn(x, f"backbone.{i}.1"))
        if conv_dropout:
            x = b.L.Dropout(conv_dropout)(x)
    x = b.L.GlobalAveragePooling1D(name="backbone.14")(x)
    x = b.relu(b.bn(b.dense(x, 64, "head.0"), "head.1"))
    x = b.L.Dropout(dropout)(x)
    x = b.relu(b.bn(b.dense(x, 64, "head.4"), "head.5"))
    x = b.relu(b.bn(b.dense(x, 32, "head.7"), "head.8"))
    x = b.relu(b.bn(b.dense(x, 16, "head.10"), "head.11"))
    outputs = b.dense(x, num_classes, "head.13")
    return b.keras.Model(inputs, outputs, name=name)


#: CODAvision/nnTraining2 names -> Keras builders; ``torch_name`` is the registry name of
#: the PyTorch twin (what ``model_call`` builds for framework "pytorch"). Case-insensitive.
KERAS_MODELS = Registry("keras model")
KERAS_MODELS.add(
    "DeepLabV3_plus",
    build_deeplabv3plus,
    aliases=("deeplabv3plus", "deeplabv3plus_codavision"),
    torch_name="deeplabv3plus_codavision",
)
KERAS_MODELS.add("UNet", build_unet, torch_name="unet")
KERAS_MODELS.add("DeepEpiCnn", build_deepepicnn, torch_name="deepepicnn", image_size="length")


def build_keras_model(
    name: str,
    image_size: Any,
    num_classes: int,
    *,
    l2_regularization_weight: float = 0.0,
    **kwargs: Any,
) -> Any:
    """Build a Keras model by its CODAvision/nnTraining2 name (case-insensitive)."""
    key = name.strip().replace("-", "_")
    if key not in KERAS_MODELS:
        raise ConfigError(
            f"model {name!r} has no TensorFlow implementation; TensorFlow models: "
            f"{', '.join(KERAS_MODELS.list())} (use framework='pytorch' for the full registry)"
        )
    entry = KERAS_MODELS.entry(key)
    if entry.metadata.get("image_size") == "length":
        # A 1-D model: IMAGE_SIZE is the window length.
        if image_size is not None and "length" not in kwargs:
            size = image_size if isinstance(image_size, int) else int(list(image_size)[0])
            kwargs["length"] = size
        return entry.obj(num_classes, l2_regularization_weight=l2_regularization_weight, **kwargs)
    return entry.obj(
        image_size, num_classes, l2_regularization_weight=l2_regularization_weight, **kwargs
    )

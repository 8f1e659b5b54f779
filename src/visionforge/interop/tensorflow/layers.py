"""Small custom Keras layers our Keras models need (serialisable, so ``.keras`` files load).

Built on first use (Keras is optional), and registered under the ``visionforge`` package
name for ``keras.saving.load_model``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from visionforge.interop.tensorflow import require_tensorflow

__all__ = ["custom_layers", "custom_objects"]


@cache
def custom_layers() -> dict[str, Any]:
    """The layer classes ``{"BgrMeanPreprocess", "ResizeBilinear"}`` (defined once)."""
    _, keras = require_tensorflow("visionforge's Keras models")
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="visionforge")
    class BgrMeanPreprocess(keras.layers.Layer):
        """RGB [0, 255] -> BGR minus the ImageNet BGR mean (the CODAvision DeepLabV3+ input)."""

        def __init__(
            self, mean_bgr: tuple[float, ...] = (103.939, 116.779, 123.68), **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.mean_bgr = tuple(float(v) for v in mean_bgr)

        def call(self, x: Any) -> Any:
            return ops.flip(x, axis=-1) - ops.convert_to_tensor(self.mean_bgr, dtype=x.dtype)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mean_bgr": list(self.mean_bgr)}

    @keras.saving.register_keras_serializable(package="visionforge")
    class ResizeBilinear(keras.layers.Layer):
        """Bilinear resize to a fixed ``size`` (half-pixel centres, no antialias), which is
        PyTorch's ``F.interpolate(mode="bilinear", align_corners=False)``."""

        def __init__(self, size: tuple[int, int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = (int(size[0]), int(size[1]))

        def call(self, x: Any) -> Any:
            if tuple(x.shape[1:3]) == self.size:
                return x
            return ops.image.resize(x, self.size, interpolation="bilinear", antialias=False)

        def compute_output_shape(self, input_shape: tuple) -> tuple:
            return (input_shape[0], *self.size, input_shape[-1])

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "size": list(self.size)}

    return {"BgrMeanPreprocess": BgrMeanPreprocess, "ResizeBilinear": ResizeBilinear}


def custom_objects() -> dict[str, Any]:
    """``custom_objects`` for ``keras.saving.load_model``."""
    return dict(custom_layers())

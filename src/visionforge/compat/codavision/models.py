"""CODAvision's model API: ``model_call``, the Keras adapters, ``load_model``, the builders.

``base.models.backbones``/``wrappers``/``backbones_pytorch`` map onto
:mod:`visionforge.interop` (``KerasAdapter``, ``model_call``, ``load_model``) and the
registry model ``deeplabv3plus_codavision``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from visionforge.compat.codavision.config import FrameworkConfig
from visionforge.errors import ConfigError, WeightsError
from visionforge.interop.adapter import KerasAdapter
from visionforge.interop.model_call import load_model as _load_model
from visionforge.interop.model_call import model_call as _model_call

__all__ = [
    "PyTorchKerasAdapter",
    "TensorFlowKerasAdapter",
    "create_model_adapter",
    "model_call",
    "unfreeze_model",
    "load_model",
    "PyTorchDeepLabV3Plus",
]


class PyTorchKerasAdapter(KerasAdapter):
    """CODAvision's adapter: a :class:`KerasAdapter` whose module is also ``.model``;
    ``save("x.pth")`` writes a weights-only ``.pth`` file (plus the model dir's
    ``model.json`` and safetensors beside it, so ``load_model(dir)`` can rebuild it)."""

    def __init__(self, pytorch_model: nn.Module, device: str | None = None, **kwargs: Any) -> None:
        super().__init__(pytorch_model, device=device, **kwargs)

    @property
    def model(self) -> nn.Module:
        """The wrapped ``nn.Module``."""
        return self.module

    def save(self, filepath: str | os.PathLike[str], overwrite: bool = True, **meta: Any) -> Path:
        path = Path(filepath)
        if path.suffix.lower() not in (".pth", ".pt"):
            return super().save(path, overwrite=overwrite, **meta)
        import torch

        from visionforge.io import atomic_write

        if path.exists() and not overwrite:
            raise WeightsError(f"{path}: exists and overwrite=False")
        super().save(path.parent, overwrite=overwrite, **meta)  # model.json records the model
        with atomic_write(path) as tmp:
            torch.save(self.module.state_dict(), tmp)  # tensors only: loads with weights_only
        return path


class TensorFlowKerasAdapter:
    """CODAvision's pass-through wrapper of a ``keras.Model`` (needs the ``[tf]`` extra)."""

    def __init__(self, keras_model: Any) -> None:
        from visionforge.interop.tensorflow import require_tensorflow

        _, keras = require_tensorflow("TensorFlowKerasAdapter")
        if not isinstance(keras_model, keras.Model):
            raise ConfigError(f"Expected a keras.Model, got {type(keras_model).__name__}")
        self.model = keras_model

    def predict(self, x: Any, batch_size: int = 32, verbose: int = 0) -> Any:
        return self.model.predict(x, batch_size=batch_size, verbose=verbose)

    def __call__(self, x: Any, training: bool = False) -> Any:
        return self.model(x, training=training)

    def compile(self, optimizer: Any = "adam", loss: Any = "categorical_crossentropy",
                metrics: Any = None, learning_rate: float = 1e-4) -> None:
        from visionforge.interop.tensorflow import require_tensorflow

        _, keras = require_tensorflow("TensorFlowKerasAdapter.compile")
        if isinstance(optimizer, str) and optimizer.lower() in ("adam", "sgd"):
            cls = keras.optimizers.Adam if optimizer.lower() == "adam" else keras.optimizers.SGD
            optimizer = cls(learning_rate=learning_rate)
        self.model.compile(optimizer=optimizer, loss=_keras_loss(loss), metrics=metrics or [])

    def fit(self, x: Any = None, y: Any = None, batch_size: int = 32, epochs: int = 10,
            validation_data: Any = None, callbacks: Any = None, verbose: int = 1) -> Any:
        return self.model.fit(x=x, y=y, batch_size=batch_size, epochs=epochs,
                              validation_data=validation_data, callbacks=callbacks, verbose=verbose)

    def save(self, filepath: str | os.PathLike[str]) -> None:
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)
        self.model.save(str(filepath))

    def load_weights(self, filepath: str | os.PathLike[str]) -> None:
        self.model.load_weights(str(filepath))

    @property
    def trainable(self) -> bool:
        return bool(self.model.trainable)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.model.trainable = bool(value)


def _keras_loss(loss: Any) -> Any:
    # CODAvision's examples pass loss="crossentropy", which Keras does not know by that name.
    return "categorical_crossentropy" if loss == "crossentropy" else loss


def create_model_adapter(model: Any) -> Any:
    """The adapter for ``model``: ``PyTorchKerasAdapter`` for an ``nn.Module``,
    ``TensorFlowKerasAdapter`` for a ``keras.Model``; an adapter is returned as it is."""
    if isinstance(model, PyTorchKerasAdapter | TensorFlowKerasAdapter):
        return model
    if isinstance(model, KerasAdapter):
        return PyTorchKerasAdapter(model.module, outputs=model.outputs,
                                   output_activation=model.output_activation)
    if isinstance(model, nn.Module):
        return PyTorchKerasAdapter(model)
    return TensorFlowKerasAdapter(model)


def model_call(name: str, IMAGE_SIZE: Any = None, NUM_CLASSES: int = 2,  # noqa: N803
               l2_regularization_weight: float = 1e-4, encoder_id: int = 0,
               wrap_with_adapter: bool = True, **kwargs: Any) -> Any:
    """CODAvision's factory for :attr:`FrameworkConfig.get_framework`'s framework: a
    ``PyTorchKerasAdapter`` (or the raw module with ``wrap_with_adapter=False``) or a
    ``keras.Model``. The result keeps ``IMAGE_SIZE``/``input_size`` and
    ``NUM_CLASSES``/``num_classes``."""
    framework = kwargs.pop("framework", None) or FrameworkConfig.get_framework()
    model = _model_call(name, IMAGE_SIZE, NUM_CLASSES, l2_regularization_weight, encoder_id,
                        wrap_with_adapter, framework, **kwargs)
    if isinstance(model, KerasAdapter):
        adapter = PyTorchKerasAdapter(model.module, name=model.name)
        for attr in ("l2_regularization_weight", "IMAGE_SIZE", "input_size", "NUM_CLASSES"):
            if hasattr(model, attr):
                setattr(adapter, attr, getattr(model, attr))
        return adapter
    return model


def unfreeze_model(model: Any, encoder_id: int = 0) -> Any:
    """Make every layer trainable (an adapter, a ``keras.Model`` or an ``nn.Module``)."""
    if isinstance(model, nn.Module):
        model.requires_grad_(True)
    else:
        model.trainable = True
    return model


def load_model(filepath: str | os.PathLike[str], framework: str | None = None) -> Any:
    """Load a ``.pth``/``.keras``/``.h5`` file or a model dir holding one (the framework as
    :func:`visionforge.interop.load_model` decides: argument, the environment when both kinds
    are there, the one recorded in ``model.json``, the kind present); PyTorch models come
    back in a :class:`PyTorchKerasAdapter`."""
    loaded = _load_model(filepath, framework=framework)
    return create_model_adapter(loaded) if isinstance(loaded, KerasAdapter) else loaded


class PyTorchDeepLabV3Plus:
    """CODAvision's builder: ``build_model()`` returns the DeepLabV3+ ``nn.Module``
    (``deeplabv3plus_codavision``: ResNet-50 encoder, frozen as CODAvision trains it)."""

    def __init__(self, input_size: int | None = None, num_classes: int | None = None,
                 encoder_id: int = 0, l2_regularization_weight: float = 0.0, *,
                 IMAGE_SIZE: int | None = None, NUM_CLASSES: int | None = None,  # noqa: N803
                 pretrained: Any = False) -> None:
        self.input_size = input_size if input_size is not None else IMAGE_SIZE
        classes = num_classes if num_classes is not None else NUM_CLASSES
        if self.input_size is None or classes is None:
            raise ConfigError("PyTorchDeepLabV3Plus needs input_size (IMAGE_SIZE) and num_classes")
        if encoder_id != 0:
            raise ConfigError(f"encoder_id={encoder_id}: only 0 (ResNet-50) exists")
        self.num_classes, self.encoder_id = int(classes), encoder_id
        self.l2_regularization_weight = float(l2_regularization_weight)
        self.pretrained = pretrained
        self.device = FrameworkConfig.get_device()
        self.model: nn.Module | None = None

    def _get_framework(self) -> str:
        return "pytorch"

    def build_model(self) -> nn.Module:
        from visionforge.models import create_model

        model = create_model("deeplabv3plus_codavision", num_classes=self.num_classes,
                             pretrained=self.pretrained)
        model.input_size = self.input_size
        self.model = model.to(self.device)
        return self.model

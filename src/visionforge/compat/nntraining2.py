"""nnTraining2's names (``nnTrainer``, ``nnModel``, the DeepEpiCnn model classes) over
:mod:`visionforge.interop.nntraining2` and the registry model ``deepepicnn``.

The training entry points take nnTraining2's JSON configs unchanged: the framework comes
from ``modelConfig.framework``, else the legacy ``modelType``, else TensorFlow (nnTraining2's
default); PyTorch runs write ``<modelFname>.pt`` (weights only), TensorFlow runs
``<modelFname>.keras``, and both write ``history.json``, ``training_curves.png`` and
``testResults.json``. The model classes build networks that end in a softmax (their outputs
are class probabilities, as nnTraining2's are); the core ``deepepicnn`` returns logits.

Example:
    >>> from visionforge.compat.nntraining2 import get_framework_from_config
    >>> get_framework_from_config({"modelConfig": {"epochs": 1}})
    'tensorflow'
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionforge.errors import ConfigError
from visionforge.interop.nntraining2 import detect_framework, run_nntraining2

__all__ = [
    "get_framework_from_config",
    "trainModel",
    "trainModel_pytorch",
    "trainModel_tensorflow",
    "NnModel",
    "DeepEpiCnnModelPyTorch",
    "DeepEpiCnnModel",
    "ProbabilityOutput",
    "main",
]


def _model_config(configObj: Mapping[str, Any]) -> Mapping[str, Any]:  # noqa: N803
    block = configObj.get("modelConfig", configObj)
    return block if isinstance(block, Mapping) else {}


def get_framework_from_config(configObj: Mapping[str, Any]) -> str:  # noqa: N803
    """``"pytorch"`` or ``"tensorflow"`` as nnTraining2 decides it for ``configObj``."""
    from visionforge.config.framework import get_framework

    return get_framework(detect_framework(_model_config(configObj)))


def trainModel(configObj: Mapping[str, Any] | str | os.PathLike[str],  # noqa: N802, N803
               outDir: str | os.PathLike[str] = "output", **kwargs: Any) -> dict[str, Any]:  # noqa: N803
    """Train as the config says (either framework); returns the ``testResults.json`` content.
    ``kwargs`` go to :func:`~visionforge.interop.nntraining2.run_nntraining2` (``kfold``,
    ``events``, ``overrides``, ``verbose``)."""
    return run_nntraining2(configObj, outDir, **kwargs)


def _forced(framework: str, configObj: Any, outDir: Any, kwargs: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
    kwargs["overrides"] = {**(kwargs.get("overrides") or {}), "framework": framework}
    return run_nntraining2(configObj, outDir, **kwargs)


def trainModel_pytorch(configObj: Any, outDir: Any = "output", **kwargs: Any) -> dict[str, Any]:  # noqa: N802, N803
    """:func:`trainModel` with PyTorch whatever the config says."""
    return _forced("pytorch", configObj, outDir, kwargs)


def trainModel_tensorflow(configObj: Any, outDir: Any = "output", **kwargs: Any) -> dict[str, Any]:  # noqa: N802, N803
    """:func:`trainModel` with TensorFlow (needs the ``[tf]`` extra)."""
    return _forced("tensorflow", configObj, outDir, kwargs)


class ProbabilityOutput(nn.Module):
    """``softmax(model(x))`` over the class dimension: nnTraining2's models end in a softmax."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class NnModel:
    """nnTraining2's model base: framework detection, datapoint vectors, save/load."""

    framework_name: str | None = None  # set by the framework-specific subclasses

    def __init__(self, configObj: Mapping[str, Any] | None = None, debug: bool = False) -> None:  # noqa: N803
        self.configObj = dict(configObj or {})
        self.debug = debug
        self.framework = self.framework_name or self._detect_framework(self.configObj)
        self.model: Any = None

    @staticmethod
    def _detect_framework(configObj: Mapping[str, Any]) -> str:  # noqa: N803
        return get_framework_from_config(configObj)

    def get_framework(self) -> str:
        return self.framework

    def makeModel(self, input_shape: Sequence[int] | None = None, num_classes: int = 2,  # noqa: N802
                  nLayers: int = 14) -> Any:  # noqa: N803
        raise NotImplementedError(f"{type(self).__name__} must implement makeModel")

    def dp2vector(self, dpObj: Mapping[str, Any], normalise: bool = False) -> np.ndarray:  # noqa: N803
        """A datapoint's ``rawData`` (milli-g) as a float32 vector, optionally standardised."""
        if "rawData" not in dpObj:
            raise ConfigError(f"datapoint has no 'rawData' (keys {sorted(dpObj)})")
        return self.accData2vector(dpObj["rawData"], normalise)

    def accData2vector(self, accData: Sequence[float], normalise: bool = False) -> np.ndarray:  # noqa: N802, N803
        """Acceleration samples as float32; ``normalise``: mean-centred, std-scaled."""
        vec = np.asarray(accData, dtype=np.float32)
        if normalise:
            std = float(vec.std())
            vec = (vec - vec.mean()) / (std if std > 0 else 1.0)
        return vec

    @staticmethod
    def hdQuantile(values: Sequence[float], q: float = 0.5) -> float:  # noqa: N802
        """Harrell-Davis quantile estimate (scipy's ``hdquantiles``), as the fold ensemble uses."""
        from scipy.stats.mstats import hdquantiles

        return float(np.asarray(hdquantiles(np.asarray(values, dtype=np.float64), prob=[q]))[0])


def _length_channels(input_shape: Sequence[int] | None) -> tuple[int, int]:
    """``(length, channels)`` of a Keras-style ``input_shape`` (``(750, 1)``) or ``(750,)``."""
    if not input_shape:
        return 750, 1
    shape = [int(v) for v in input_shape]
    return (shape[0], shape[1] if len(shape) > 1 else 1)


def _check_layers(n_layers: int) -> None:
    if int(n_layers) != 14:
        raise ConfigError(f"nLayers={n_layers}: DeepEpiCnn has 14 convolution layers")


class DeepEpiCnnModelPyTorch(NnModel):
    """The DeepEpiCnn in PyTorch (``deepepicnn``), outputs softmax probabilities
    (:class:`ProbabilityOutput`); ``save_model`` writes the weights only (``.pt``)."""

    framework_name = "pytorch"

    def makeModel(self, input_shape: Sequence[int] | None = None, num_classes: int = 2,  # noqa: N802
                  nLayers: int = 14) -> nn.Module:  # noqa: N803
        from visionforge.models import create_model

        _check_layers(nLayers)
        _, channels = _length_channels(input_shape)
        self.model = ProbabilityOutput(create_model("deepepicnn", num_classes=num_classes,
                                                    in_chans=channels))
        return self.model

    def save_model(self, filepath: str | os.PathLike[str]) -> Path:
        from visionforge.io import atomic_write

        if self.model is None:
            raise ConfigError("save_model before makeModel")
        inner = self.model.model if isinstance(self.model, ProbabilityOutput) else self.model
        with atomic_write(Path(filepath)) as tmp:
            torch.save(inner.state_dict(), tmp)
        return Path(filepath)

    def load_model(self, filepath: str | os.PathLike[str]) -> nn.Module:
        """Load ``.pt`` weights (``torch.load(weights_only=True)``) into a fresh model."""
        from visionforge.io import load_state_dict_file

        state = load_state_dict_file(filepath)
        last = [k for k in state if k.startswith("head.") and k.endswith(".weight")]
        num_classes = int(state[max(last, key=lambda k: int(k.split(".")[1]))].shape[0])
        channels = int(state["backbone.0.0.weight"].shape[1]) if "backbone.0.0.weight" in state else 1
        model = self.makeModel((750, channels), num_classes=num_classes)
        model.model.load_state_dict(state)
        return model.eval()


class DeepEpiCnnModel(NnModel):
    """The DeepEpiCnn in Keras (needs the ``[tf]`` extra), ending in a softmax."""

    framework_name = "tensorflow"

    def makeModel(self, input_shape: Sequence[int] | None = None, num_classes: int = 2,  # noqa: N802
                  nLayers: int = 14) -> Any:  # noqa: N803
        from visionforge.interop.tensorflow import require_tensorflow
        from visionforge.interop.tensorflow.models import build_deepepicnn

        _check_layers(nLayers)
        _, keras = require_tensorflow("DeepEpiCnnModel")
        length, channels = _length_channels(input_shape)
        base = build_deepepicnn(num_classes, length=length, in_chans=channels)
        inputs = keras.Input(shape=(length, channels))
        self.model = keras.Model(inputs, keras.layers.Softmax()(base(inputs)), name="DeepEpiCnn")
        return self.model

    def save_model(self, filepath: str | os.PathLike[str]) -> Path:
        if self.model is None:
            raise ConfigError("save_model before makeModel")
        self.model.save(str(filepath))
        return Path(filepath)

    def load_model(self, filepath: str | os.PathLike[str]) -> Any:
        from visionforge.interop import load_model

        self.model = load_model(filepath, framework="tensorflow")
        return self.model


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m visionforge.compat.nntraining2 --config nnConfig.json [--out DIR]``
    (nnTrainer's command line)."""
    parser = argparse.ArgumentParser(description="Train as an nnTraining2 config says.")
    parser.add_argument("--config", required=True, help="nnTraining2 JSON config")
    parser.add_argument("--out", default="output", help="run directory")
    parser.add_argument("--kfold", type=int, default=None, help="event-level folds")
    args = parser.parse_args(argv)
    from visionforge.errors import VisionforgeError

    try:
        result = trainModel(args.config, args.out, kfold=args.kfold)
    except VisionforgeError as exc:  # a clear message, no traceback (as the CLI does)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"event tpr={result['event']['tpr']:.3f} fpr={result['event']['fpr']:.3f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Weight transfer between a PyTorch model and its Keras twin (``torch_to_keras`` / ``keras_to_torch``).

Keras layers carry the name of the PyTorch module they mirror (see
:mod:`~visionforge.interop.tensorflow.models`), so the mapping is by name;
layouts are converted per layer type (conv kernels ``OIHW <-> HWIO``, dense
``[out, in] <-> [in, out]``, BatchNorm with its running statistics).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from visionforge.errors import WeightsError
from visionforge.interop.tensorflow import require_tensorflow

__all__ = ["TransferReport", "torch_to_keras", "keras_to_torch"]


@dataclass
class TransferReport:
    """Which layers were transferred, and which PyTorch modules with weights were not."""

    transferred: list[str] = field(default_factory=list)
    unmatched_torch: list[str] = field(default_factory=list)

    @property
    def num_tensors(self) -> int:
        return len(self.transferred)


def _weighted_torch_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: m
        for name, m in model.named_modules()
        if any(True for _ in m.parameters(recurse=False))
        or any(True for _ in m.buffers(recurse=False))
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear | nn.BatchNorm1d | nn.BatchNorm2d)
    }


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _torch_to_keras_arrays(layer: Any, module: nn.Module) -> list[np.ndarray]:
    kind = type(layer).__name__
    if isinstance(module, nn.Conv2d) and kind == "Conv2D":
        out = [_np(module.weight).transpose(2, 3, 1, 0)]
    elif isinstance(module, nn.Conv1d) and kind == "Conv1D":
        out = [_np(module.weight).transpose(2, 1, 0)]
    elif isinstance(module, nn.Linear) and kind == "Dense":
        out = [_np(module.weight).T]
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and kind == "BatchNormalization":
        if abs(float(layer.epsilon) - module.eps) > 1e-12:
            raise WeightsError(
                f"{layer.name}: BatchNorm epsilon differs (Keras {layer.epsilon}, PyTorch {module.eps})"
            )
        return [
            _np(module.weight),
            _np(module.bias),
            _np(module.running_mean),
            _np(module.running_var),
        ]
    else:
        raise WeightsError(
            f"layer {layer.name!r}: Keras {kind} does not match PyTorch {type(module).__name__}"
        )
    if getattr(module, "bias", None) is not None:
        out.append(_np(module.bias))
    return out


def _check_shapes(layer: Any, arrays: list[np.ndarray]) -> None:
    expected = [tuple(w.shape) for w in layer.get_weights()]
    got = [a.shape for a in arrays]
    if expected != got:
        raise WeightsError(
            f"layer {layer.name!r}: Keras expects shapes {expected}, PyTorch gives {got}"
        )


def _matched_layers(keras_model: Any, torch_model: nn.Module, report: TransferReport,
                    strict: bool) -> Iterator[tuple[Any, nn.Module]]:
    """Pairs (Keras layer with weights, PyTorch module of the same name), in Keras order.

    Unmatched modules end up in ``report.unmatched_torch``; with ``strict`` any unmatched
    layer or module is an error."""
    modules = _weighted_torch_modules(torch_model)
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        module = modules.pop(layer.name, None)
        if module is None:
            if strict:
                raise WeightsError(f"Keras layer {layer.name!r} has no PyTorch module of that name")
            continue
        yield layer, module
        report.transferred.append(layer.name)
    report.unmatched_torch = sorted(modules)
    if strict and report.unmatched_torch:
        raise WeightsError(f"PyTorch modules without a Keras layer: {report.unmatched_torch[:10]}")


def torch_to_keras(
    torch_model: nn.Module, keras_model: Any, *, strict: bool = True
) -> TransferReport:
    """Copy every weight (and BN running statistic) of ``torch_model`` into ``keras_model``.

    With ``strict`` every Keras layer holding weights and every PyTorch conv/linear/BN
    module must have a partner; otherwise unmatched ones are listed in the report.
    """
    require_tensorflow("torch_to_keras")
    report = TransferReport()
    for layer, module in _matched_layers(keras_model, torch_model, report, strict):
        arrays = _torch_to_keras_arrays(layer, module)
        _check_shapes(layer, arrays)
        layer.set_weights(arrays)
    return report


def _keras_to_torch_pairs(layer: Any, module: nn.Module) -> tuple[list[Any], list[np.ndarray]]:
    """(PyTorch tensors, Keras arrays in PyTorch layout) to copy for one layer."""
    arrays = [np.asarray(a) for a in layer.get_weights()]
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return [module.weight, module.bias, module.running_mean, module.running_var], arrays
    kernel = arrays[0]
    if kind == "Conv2D":
        kernel = kernel.transpose(3, 2, 0, 1)
    elif kind == "Conv1D":
        kernel = kernel.transpose(2, 1, 0)
    else:  # Dense
        kernel = kernel.T
    targets = [module.weight] + ([module.bias] if module.bias is not None else [])
    return targets, [kernel] + arrays[1:]


def keras_to_torch(
    keras_model: Any, torch_model: nn.Module, *, strict: bool = True
) -> TransferReport:
    """Copy every weight of ``keras_model`` into ``torch_model`` (the inverse of :func:`torch_to_keras`)."""
    require_tensorflow("keras_to_torch")
    report = TransferReport()
    with torch.no_grad():
        for layer, module in _matched_layers(keras_model, torch_model, report, strict):
            _check_shapes(layer, _torch_to_keras_arrays(layer, module))
            targets, values = _keras_to_torch_pairs(layer, module)
            for target, value in zip(targets, values, strict=True):
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))
    return report

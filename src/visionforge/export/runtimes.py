"""Runtimes that run an exported ONNX file on CPU: ONNX Runtime and OpenVINO.

Each runner is a callable ``runner(x) -> list[np.ndarray]`` (outputs in graph order) with
``output_names``; both take the fp32 ONNX export or a quantised INT8 (QDQ) ONNX file.
They live with the exporters (not in ``inference``) because export measures its INT8 files
with them too, and export sits below inference. OpenVINO converts the ONNX file itself (``Core.read_model``); its CPU plugin runs QDQ
graphs in INT8. fp32 graphs run with ``INFERENCE_PRECISION_HINT=f32`` so that OpenVINO
does not silently switch to bf16 on CPUs that have it (the Predictor checks parity).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from typing import Any, Protocol

import numpy as np

__all__ = ["Runner", "onnxruntime_runner", "openvino_runner", "make_runner", "available"]


class Runner(Protocol):
    """A compiled model: call it on a float32 batch, get its outputs in graph order."""

    name: str
    output_names: list[str]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]: ...


def available(runtime: str) -> bool:
    """Whether ``runtime`` (``onnxruntime`` or ``openvino``) is installed."""
    return importlib.util.find_spec(runtime) is not None


def _threads(threads: int | None) -> int:
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    return max(1, int(threads))


class _OrtRunner:
    def __init__(self, path: str | os.PathLike[str], threads: int | None) -> None:
        from visionforge.export.onnx import ort_session

        self.name = "onnxruntime"
        self.session = ort_session(path, threads=_threads(threads))
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        from visionforge.export.onnx import run_session

        return run_session(self.session, x)


class _OpenVinoRunner:
    def __init__(self, path: str | os.PathLike[str], threads: int | None) -> None:
        import openvino as ov

        self.name = "openvino"
        core = ov.Core()
        model = core.read_model(str(path))
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": _threads(threads),
            "INFERENCE_PRECISION_HINT": "f32",
        }
        self.compiled = core.compile_model(model, "CPU", config)
        self.output_names = [
            (o.get_names() and sorted(o.get_names())[0]) or f"output{i}"
            for i, o in enumerate(self.compiled.outputs)
        ]
        # One infer request is not thread-safe: the serve layer calls from several threads.
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float32)
        with self._lock:
            self._request.infer({0: x})
            return [
                np.array(self._request.get_output_tensor(i).data, copy=True)
                for i in range(len(self.compiled.outputs))
            ]


def onnxruntime_runner(path: str | os.PathLike[str], threads: int | None = None) -> Runner:
    """ONNX Runtime CPU session on ``path`` (full graph optimisation, ``threads`` intra-op)."""
    return _OrtRunner(path, threads)


def openvino_runner(path: str | os.PathLike[str], threads: int | None = None) -> Runner:
    """OpenVINO CPU compiled model of ``path`` (ONNX or IR ``.xml``), latency hint."""
    return _OpenVinoRunner(path, threads)


def make_runner(runtime: str, path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """A runner of ``runtime`` (``onnxruntime`` | ``openvino``) on ``path``."""
    if runtime == "onnxruntime":
        return onnxruntime_runner(path, threads)
    if runtime == "openvino":
        return openvino_runner(path, threads)
    raise ValueError(f"unknown runtime {runtime!r}")

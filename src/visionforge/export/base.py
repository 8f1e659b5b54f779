"""What every exporter shares: its context, its result, parity and latency measurement.

An exporter is a function ``export(ctx: ExportContext) -> ExportResult`` registered in
:data:`visionforge.registry.EXPORTERS`. It writes its artifact under ``ctx.out_dir``,
loads it back in the artifact's own runtime, runs ``ctx.inputs`` and compares the
outputs with ``ctx.reference`` (the PyTorch model's outputs on the same batch).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionforge.registry import EXPORTERS

__all__ = [
    "ExportContext",
    "ExportResult",
    "register_exporter",
    "max_abs_diff",
    "median_latency_ms",
    "parity_result",
    "check_artifact",
    "OutputTuple",
]

_log = logging.getLogger(__name__)

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass
class ExportResult:
    """One row of the export report."""

    format: str
    status: str = FAILED  # ok | failed | skipped
    file: str | None = None
    size_bytes: int | None = None
    parity_error: float | None = None  # max |artifact - pytorch| over the smoke batch
    tolerance: float | None = None
    latency_ms: float | None = None  # median per batch of the smoke check
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def set_file(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        self.file = str(p)
        if p.is_dir():
            self.size_bytes = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        elif p.exists():
            self.size_bytes = p.stat().st_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExportContext:
    """Everything an exporter needs; built once by :func:`visionforge.export.export_model`."""

    model: Any  # torch.nn.Module in eval mode on CPU
    meta: dict[str, Any]
    model_dir: Path
    out_dir: Path
    inputs: np.ndarray  # smoke batch, preprocessed, float32
    reference: list[tuple[str, np.ndarray]]  # PyTorch outputs on ``inputs``
    options: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Path] = field(default_factory=dict)  # format -> file, for later formats

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])

    @property
    def output_names(self) -> list[str]:
        return [name for name, _ in self.reference]

    def wrapped_model(self) -> torch.nn.Module:
        """The model returning a tensor or a tuple (dict outputs in reference order), in eval mode."""
        return OutputTuple(
            self.model, self.output_names if len(self.reference) > 1 else None
        ).eval()


def register_exporter(
    name: str, *, order: int, description: str, default: bool = True
) -> Callable[[Callable[[ExportContext], ExportResult]], Callable[[ExportContext], ExportResult]]:
    """Register an exporter function under ``name`` (``order`` sets its place in reports)."""
    return EXPORTERS.register(name, order=order, description=description, default=default)


def max_abs_diff(
    reference: Sequence[tuple[str, np.ndarray]], outputs: Sequence[np.ndarray]
) -> float:
    """Largest absolute difference between reference outputs and artifact outputs (in order)."""
    if len(outputs) != len(reference):
        raise ValueError(f"artifact returned {len(outputs)} outputs, PyTorch {len(reference)}")
    worst = 0.0
    for (name, ref), out in zip(reference, outputs):
        out = np.asarray(out, dtype=np.float32)
        if out.shape != ref.shape:
            raise ValueError(f"output {name!r}: artifact shape {out.shape} vs PyTorch {ref.shape}")
        if not np.all(np.isfinite(out)):
            raise ValueError(f"output {name!r} contains NaN or Inf")
        worst = max(worst, float(np.max(np.abs(out - ref))) if out.size else 0.0)
    return worst


def median_latency_ms(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def parity_result(
    result: ExportResult,
    reference: Sequence[tuple[str, np.ndarray]],
    outputs: Sequence[np.ndarray],
    tolerance: float,
) -> ExportResult:
    """Fill ``parity_error``/``status`` from the artifact's outputs."""
    err = max_abs_diff(reference, outputs)
    result.parity_error = err
    result.tolerance = tolerance
    if err <= tolerance:
        result.status = OK
    else:
        result.status = FAILED
        result.reason = f"parity error {err:.3g} exceeds tolerance {tolerance:g}"
    return result


def check_artifact(
    result: ExportResult,
    ctx: ExportContext,
    run: Callable[[], Sequence[np.ndarray]],
    tolerance: float,
) -> ExportResult:
    """Run the artifact on the smoke batch (``run()``), fill parity/status, then its latency."""
    parity_result(result, ctx.reference, run(), tolerance)
    result.latency_ms = median_latency_ms(run)
    return result


class OutputTuple(torch.nn.Module):
    """Wraps a model so that it returns a tuple of tensors (dict outputs in key order).

    Tracers and exporters want tensors or tuples; multitask models return dicts.
    """

    def __init__(self, model: torch.nn.Module, names: list[str] | None = None) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, x: torch.Tensor):
        out = self.model(x)
        if isinstance(out, dict):
            keys = self.names or list(out)
            return tuple(out[k] for k in keys)
        return out

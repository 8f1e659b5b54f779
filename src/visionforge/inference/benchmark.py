"""End-to-end CPU/GPU inference benchmark of a model dir: latency p50/p99 and img/s.

Each backend is a :class:`~visionforge.inference.Predictor` running the whole
``predict`` path (RGB ``uint8`` images in, contract applied, forward, labels or
probabilities out), so the figures are what a user waits for. ``eager`` is the baseline:
the same path with a plain fp32 PyTorch forward (contiguous memory, no export). Calls are
interleaved across backends (A B C, A B C, ...) so that a change in machine load during
the run hits every backend alike; every ratio is against the first backend named.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from visionforge.errors import ConfigError

__all__ = ["BenchRow", "BenchReport", "run_benchmark", "sample_images", "DEFAULT_BACKENDS"]

DEFAULT_BACKENDS = ("eager", "auto", "torch", "onnxruntime", "openvino")


@dataclass
class BenchRow:
    """One backend at one batch size."""

    backend: str
    batch: int
    p50_ms: float
    p99_ms: float
    img_per_s: float
    ratio: float | None = None  # img/s over the first backend's at this batch
    detail: str = ""


@dataclass
class BenchReport:
    """All rows plus what they were measured on."""

    model_dir: str
    image_size: list[int]
    calls: int
    rows: list[BenchRow] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """A plain-text table: backend, batch, p50, p99, img/s, ratio to the baseline."""
        base = self.rows[0].backend if self.rows else "-"
        lines = [
            f"{'backend':<28}{'batch':>6}{'p50 ms':>10}{'p99 ms':>10}{'img/s':>10}"
            f"{'x ' + base:>{max(10, len(base) + 4)}}"
        ]
        for r in self.rows:
            ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
            lines.append(
                f"{r.backend:<28}{r.batch:>6}{r.p50_ms:>10.1f}{r.p99_ms:>10.1f}"
                f"{r.img_per_s:>10.2f}{ratio:>{max(10, len(base) + 4)}}"
            )
        for name, why in self.skipped.items():
            lines.append(f"skipped {name}: {why}")
        return "\n".join(lines)


def sample_images(n: int, size: Sequence[int], channels: int = 3) -> list[np.ndarray]:
    """``n`` real photographs (scikit-image samples) as ``uint8`` ``[H, W, C]`` arrays."""
    from visionforge.export.contract import real_sample_inputs

    meta = {"input_size": [channels, *size], "preprocessing": {"input_range": [0, 255]}}
    x = real_sample_inputs(meta, n)
    return [np.clip(a, 0, 255).round().astype(np.uint8).transpose(1, 2, 0) for a in x]


def _predictor(model_dir: Any, name: str, batch: int) -> tuple[Any, str]:
    """A Predictor running ``name`` and a note of what it runs."""
    import torch

    from visionforge.inference.predictor import Predictor

    if name in ("eager", "auto", "torch"):
        pred = Predictor(model_dir, backend="torch" if name == "eager" else name, batch_size=batch)
        if name == "eager":  # the baseline: no channels_last, no export
            pred.model = pred.model.to(memory_format=torch.contiguous_format)
            pred._channels_last = False
            return pred, "plain fp32 PyTorch forward"
        return pred, str(pred.selection.get("candidate", pred.backend))
    pred = Predictor(model_dir, backend="torch", batch_size=batch)
    pred.use(name)
    return pred, name


def _time(fns: dict[str, Any], calls: int) -> dict[str, list[float]]:
    for fn in fns.values():
        fn()  # warm-up (lazy allocations, first-call compilation)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(calls):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1000)
    return times


def run_benchmark(
    model_dir: str | os.PathLike[str],
    backends: Sequence[str] = DEFAULT_BACKENDS,
    batches: Sequence[int] = (1,),
    image_size: Sequence[int] | None = None,
    calls: int = 5,
    threads: int | None = None,
) -> BenchReport:
    """Time ``Predictor.predict`` for each backend and batch size (see the module docstring).

    ``backends``: ``eager``, ``auto``, ``torch``, ``onnxruntime``, ``openvino`` or a variant
    such as ``onnxruntime-int8-static`` (see ``Predictor.variants``); ones that cannot run
    here (a runtime not installed, no INT8 file) are skipped with the reason.
    ``image_size``: ``(h, w)`` of the input images (default: the model's input size).
    ``calls``: timed calls per backend and batch (median/p99 over them; at least 3).
    ``threads``: intra-op threads of every runtime (``torch.set_num_threads``; default: as is).
    """
    import torch

    from visionforge.inference.selection import machine_fingerprint
    from visionforge.models.model_dir import model_dir_path, read_model_meta

    if calls < 3:
        raise ConfigError(f"benchmark: calls must be >= 3 (median of >= 3), got {calls}")
    if not backends or any(b < 1 for b in batches) or not batches:
        raise ConfigError("benchmark: name at least one backend and batch sizes >= 1")
    if threads is not None:
        torch.set_num_threads(int(threads))
    mdir = model_dir_path(model_dir)
    shape = list(read_model_meta(mdir)["input_size"])
    if len(shape) != 3:
        raise ConfigError(f"{mdir}: benchmark times image models; input_size is {shape}")
    size = list(image_size) if image_size else shape[1:]
    report = BenchReport(str(mdir), size, calls, machine=machine_fingerprint())
    report.machine["platform"] = platform.platform()
    imgs = sample_images(max(batches), size, shape[0])
    for batch in batches:
        preds = {}
        for name in backends:
            try:
                preds[name] = _predictor(mdir, name, batch)
            except Exception as exc:
                report.skipped[name] = str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
        xs = imgs[:batch]
        fns = {k: (lambda p=p, xs=xs: p.predict(xs, layout="NHWC")) for k, (p, _) in preds.items()}
        times = _time(fns, calls)
        base = None
        for name, ts in times.items():
            ips = batch * 1000 / statistics.median(ts)
            base = base or ips
            report.rows.append(
                BenchRow(
                    name,
                    batch,
                    statistics.median(ts),
                    float(np.percentile(ts, 99)),
                    ips,
                    ips / base,
                    preds[name][1],
                )
            )
    return report

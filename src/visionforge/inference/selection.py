"""How ``Predictor(backend="auto")`` picks a backend: candidates, a short timed probe, a cache.

Candidates on CPU: eager PyTorch, ONNX Runtime and OpenVINO on the fp32 ONNX export (each
must match PyTorch within the Predictor's tolerance), plus every INT8 file that
``visionforge export quantize=int8`` recorded in the model dir (``int8.json``) with a
metric drop of at most :data:`MAX_INT8_DROP` points, run by ONNX Runtime and OpenVINO.
Each candidate is timed (median of a few calls at the probe batch) and the fastest wins.
The decision is cached in a small JSON keyed by the model, the INT8 record and the machine
(CPU model and flags, core count, thread count, runtime versions), so a copied model dir
probes again on another machine.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Candidate",
    "MAX_INT8_DROP",
    "machine_fingerprint",
    "int8_candidates",
    "probe",
    "selection_key",
    "choose_fastest",
    "PROBE_BATCH",
]

#: An INT8 model is used only if its recorded accuracy/mIoU drop is at most this many points.
MAX_INT8_DROP = 1.0
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "avx_vnni")


def _version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "none"


def machine_fingerprint() -> dict[str, Any]:
    """What makes a speed decision valid: CPU model and ISA flags, cores, threads, runtimes."""
    import torch

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "isa": sorted(f for f in _FLAGS if f in flags),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "versions": {p: _version(p) for p in ("torch", "onnxruntime", "openvino")},
    }


def selection_key(model_key: str, int8_record: dict[str, Any] | None) -> str:
    """Cache key of a decision: the model, its INT8 record and this machine."""
    blob = json.dumps([model_key, int8_record, machine_fingerprint()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Candidate:
    """One way to run the model: ``runtime`` on ``file`` (None = eager PyTorch)."""

    name: str
    runtime: str  # torch | onnxruntime | openvino
    file: Path | None = None
    precision: str = "fp32"
    int8: dict[str, Any] = field(default_factory=dict)  # the int8.json entry


def int8_candidates(
    model_dir: Path, record: dict[str, Any] | None, weights: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """INT8 entries of ``record`` usable now, and why the others are not."""
    if not record:
        return [], []
    if record.get("weights") != weights:
        return [], ["int8.json was measured on other weights (re-run export quantize=int8)"]
    usable, notes = [], []
    for e in record.get("models", []):
        path = Path(e["file"]) if Path(e["file"]).is_absolute() else model_dir / e["file"]
        if not path.is_file():
            notes.append(f"{e['name']}: {path} is missing")
        elif not np.isfinite(e.get("drop", np.nan)) or e["drop"] > MAX_INT8_DROP:
            notes.append(
                f"{e['name']}: {e['metric']} drop {e.get('drop')} > {MAX_INT8_DROP} point(s)"
            )
        else:
            usable.append({**e, "path": str(path)})
    return usable, notes


def probe(
    runners: dict[str, Callable[[np.ndarray], Any]], x: np.ndarray, repeats: int = 3
) -> dict[str, float]:
    """Median milliseconds per call of each runner on ``x``, the runners interleaved.

    Interleaving (A B C, A B C, ...) makes the comparison fair on a machine whose load
    changes while the probe runs; each runner is warmed up once first.
    """
    import statistics
    import time

    for fn in runners.values():
        fn(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, fn in runners.items():
            t0 = time.perf_counter()
            fn(x)
            times[k].append((time.perf_counter() - t0) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


#: Batch size of the timed probe: one image, the latency a user waits for.
PROBE_BATCH = 1


def _build(pred: Any, cands: dict[str, Candidate], notes: list[str]) -> dict[str, Any]:
    """Runners of the candidates that load and pass their check (others go to ``notes``)."""
    from visionforge.export.contract import real_sample_inputs
    from visionforge.export.runtimes import make_runner

    x = real_sample_inputs(pred.meta, min(pred.batch_size, 2))
    ref = pred._torch_forward(x)
    runners: dict[str, Any] = {}
    for name, c in cands.items():
        if c.runtime == "torch":
            runners[name] = lambda xb: [v for _, v in pred._torch_forward(xb)]
            continue
        try:
            runner = make_runner(c.runtime, c.file)
            if c.precision == "fp32":
                pred._parity(runner, x, ref)
            else:  # INT8 cannot match fp32 to 1e-3; its accuracy was measured at export
                outs = runner(x)
                if any(
                    o.shape != r.shape or not np.all(np.isfinite(o)) for o, (_, r) in zip(outs, ref)
                ):
                    raise RuntimeError("outputs of the wrong shape or not finite")
            runners[name] = runner
        except Exception as exc:
            notes.append(
                f"{name}: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}"
            )
    return runners


def choose_fastest(pred: Any, cands: dict[str, Candidate], notes: list[str]) -> dict[str, Any]:
    """Time every working candidate of ``pred`` (a Predictor), switch it to the fastest and
    return the decision record (timings, the machine, the INT8 drop, a one-line reason)."""
    from visionforge.export.contract import real_sample_inputs

    runners = _build(pred, cands, notes)
    timings = probe(runners, real_sample_inputs(pred.meta, PROBE_BATCH))
    best = min(timings, key=timings.__getitem__)
    cand = cands[best]
    pred._use(cand, runner=runners[best] if cand.runtime != "torch" else None)
    others = ", ".join(f"{k} {v:.1f}" for k, v in sorted(timings.items(), key=lambda kv: kv[1]))
    reason = f"{best} is the fastest here (ms per image: {others})"
    if cand.precision == "int8":
        e = cand.int8
        reason += (
            f"; INT8 file {e['file']}: {e['metric']} drop {e['drop']:.2f} point(s) "
            f"<= {MAX_INT8_DROP:g} (measured at export against {e['basis']}, n={e.get('n_validation')})"
        )
    return {
        "backend": cand.runtime,
        "choice": cand.runtime,
        "candidate": best,
        "precision": cand.precision,
        "file": str(cand.file) if cand.file else None,
        "int8": cand.int8 or None,
        "timings_ms": timings,
        **{f"{k}_ms": v for k, v in timings.items()},
        "probe_batch": PROBE_BATCH,
        "machine": machine_fingerprint(),
        "notes": notes,
        "reason": reason,
    }

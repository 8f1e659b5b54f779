"""ONNX export (dynamic batch, opset >= 17) checked with ONNX Runtime on CPU."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.export.base import (
    OK,
    ExportContext,
    ExportResult,
    OutputTuple,
    median_latency_ms,
    parity_result,
    register_exporter,
)
from visionforge.io import atomic_write

__all__ = ["export_onnx_file", "ort_session", "run_session", "TOLERANCE", "OPSET"]

_log = logging.getLogger(__name__)
TOLERANCE = 1e-4
OPSET = 18
EXPORTERS_ENV = "VISIONFORGE_ONNX_EXPORTER"


def export_onnx_file(
    model: Any,
    example: Any,
    path: str | os.PathLike[str],
    *,
    output_names: list[str],
    opset: int = OPSET,
    exporter: str | None = None,
) -> dict[str, Any]:
    """Export ``model`` to ``path`` with a dynamic batch axis; returns export details.

    ``exporter``: ``"dynamo"`` (torch.export based, the maintained path), ``"torchscript"``
    (the legacy tracer, much faster to run) or ``"auto"`` (dynamo, falling back to the
    tracer if dynamo fails). Default: env ``VISIONFORGE_ONNX_EXPORTER`` or ``auto``.
    """
    import torch

    exporter = (exporter or os.environ.get(EXPORTERS_ENV) or "auto").lower()
    if exporter not in ("auto", "dynamo", "torchscript"):
        from visionforge.errors import ConfigError

        raise ConfigError(f"onnx exporter must be auto, dynamo or torchscript, got {exporter!r}")
    if opset < 17:
        from visionforge.errors import ConfigError

        raise ConfigError(f"opset must be >= 17, got {opset}")
    wrapped = OutputTuple(model, output_names if len(output_names) > 1 else None).eval()
    x = torch.as_tensor(example)
    if x.shape[0] < 2:  # a batch of 1 lets the exporter specialise the batch axis to 1
        x = torch.cat([x, x])
    errors: list[str] = []
    order = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    target = Path(path)
    for kind in order:
        tmp_onnx: Path | None = None
        try:
            with atomic_write(target) as tmp, warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                tmp_onnx = tmp.with_suffix(".onnx")
                if kind == "dynamo":
                    batch = torch.export.Dim("batch", min=1, max=4096)
                    prog = torch.onnx.export(
                        wrapped,
                        (x,),
                        dynamo=True,
                        opset_version=max(opset, 18),
                        input_names=["input"],
                        output_names=list(output_names),
                        dynamic_shapes=({0: batch},),
                        external_data=False,
                        verbose=False,
                    )
                    prog.save(str(tmp_onnx), external_data=False)
                else:
                    torch.onnx.export(
                        wrapped,
                        (x,),
                        str(tmp_onnx),
                        dynamo=False,
                        opset_version=opset,
                        input_names=["input"],
                        output_names=list(output_names),
                        dynamic_axes={
                            "input": {0: "batch"},
                            **{n: {0: "batch"} for n in output_names},
                        },
                    )
                os.replace(tmp_onnx, tmp)
            import onnx

            onnx.checker.check_model(str(target))
            return {"exporter": kind, "opset": _opset_of(target), "errors": errors}
        except Exception as exc:
            msg = f"{kind} exporter failed: {str(exc).strip().splitlines()[0][:300] if str(exc) else type(exc).__name__}"
            _log.info(msg)
            errors.append(msg)
            if tmp_onnx is not None:
                tmp_onnx.unlink(missing_ok=True)
    raise RuntimeError("; ".join(errors))


def _opset_of(path: Path) -> int:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    return max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)


def ort_session(path: str | os.PathLike[str], *, threads: int | None = None):
    """An ONNX Runtime CPU session with full graph optimisation."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_session(session: Any, x: np.ndarray) -> list[np.ndarray]:
    """Run an ORT session on one input batch; returns outputs in the graph's order."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})


@register_exporter("onnx", order=30, description="ONNX (dynamic batch) checked with ONNX Runtime")
def export_onnx(ctx: ExportContext) -> ExportResult:
    """Write ``model.onnx`` and check it with ONNX Runtime CPU (max-abs-diff <= 1e-4)."""
    result = ExportResult("onnx")
    path = ctx.out_dir / "model.onnx"
    info = export_onnx_file(
        ctx.model,
        ctx.inputs,
        path,
        output_names=ctx.output_names,
        opset=int(ctx.options.get("opset", OPSET)),
        exporter=ctx.options.get("onnx_exporter"),
    )
    result.set_file(path)
    result.extra.update(info)
    session = ort_session(path)
    # The smoke batch differs in size from the export batch, which proves the batch axis is dynamic.
    outs = run_session(session, ctx.inputs)
    parity_result(result, ctx.reference, outs, TOLERANCE)
    if len(ctx.inputs) > 1:
        single = run_session(session, ctx.inputs[:1])
        err1 = max(float(np.max(np.abs(s - r[1][:1]))) for s, r in zip(single, ctx.reference))
        result.extra["batch1_parity_error"] = err1
    result.latency_ms = median_latency_ms(lambda: run_session(session, ctx.inputs))
    if result.status == OK:
        ctx.artifacts["onnx"] = path
    return result

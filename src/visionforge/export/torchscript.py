"""TorchScript export: a traced module (always) and a scripted one where scripting works."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from visionforge.export.base import (
    OK,
    ExportContext,
    ExportResult,
    check_artifact,
    max_abs_diff,
    register_exporter,
)
from visionforge.io import atomic_write

TOLERANCE = 1e-4


def _run(module: torch.jit.ScriptModule, x: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        out = module(torch.from_numpy(x))
    outs = out if isinstance(out, tuple | list) else (out,)
    return [o.float().numpy() for o in outs]


@register_exporter(
    "torchscript", order=20, description="TorchScript (traced; scripted if possible)"
)
def export_torchscript(ctx: ExportContext) -> ExportResult:
    """Trace the model to ``model.torchscript.pt``; also try ``torch.jit.script``."""
    result = ExportResult("torchscript")
    wrapped = ctx.wrapped_model()
    example = torch.from_numpy(ctx.inputs)
    path = ctx.out_dir / "model.torchscript.pt"
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream; it still works
        traced = torch.jit.trace(wrapped, example, check_trace=False)
        with atomic_write(path) as tmp:
            torch.jit.save(traced, str(tmp))
    loaded = torch.jit.load(str(path), map_location="cpu").eval()
    result.set_file(path)
    check_artifact(result, ctx, lambda: _run(loaded, ctx.inputs), TOLERANCE)
    result.extra["method"] = "trace"

    # Scripting keeps data-dependent control flow but fails on many timm/HF models; optional.
    script_path = ctx.out_dir / "model.scripted.pt"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(wrapped)
            with atomic_write(script_path) as tmp:
                torch.jit.save(scripted, str(tmp))
        s_loaded = torch.jit.load(str(script_path), map_location="cpu").eval()
        err = max_abs_diff(ctx.reference, _run(s_loaded, ctx.inputs))
        result.extra["scripted"] = {
            "file": str(script_path),
            "status": OK if err <= TOLERANCE else "failed",
            "parity_error": err,
        }
    except Exception as exc:  # scripting is best effort: the traced module is the artifact
        script_path.unlink(missing_ok=True)
        result.extra["scripted"] = {
            "status": "skipped",
            "reason": f"torch.jit.script failed: {str(exc).strip().splitlines()[0][:200]}",
        }
    if result.status == OK and ctx.artifacts is not None:
        ctx.artifacts["torchscript"] = path
    return result

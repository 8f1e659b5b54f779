"""Core ML (``.mlpackage``) export with coremltools; prediction is checked on macOS only."""

from __future__ import annotations

import importlib.util
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from visionforge.export.base import (
    OK,
    SKIPPED,
    ExportContext,
    ExportResult,
    parity_result,
    register_exporter,
)

TOLERANCE = 1e-3
TIMEOUT_S = 600


@register_exporter("coreml", order=50, description="Core ML mlprogram (validated on Linux)")
def export_coreml(ctx: ExportContext) -> ExportResult:
    """Convert to ``model.mlpackage`` (fixed batch = smoke batch) and validate its spec."""
    result = ExportResult("coreml")
    if importlib.util.find_spec("coremltools") is None:
        result.status = SKIPPED
        result.reason = "skipped: coremltools is not installed (pip install coremltools)"
        return result
    out = ctx.out_dir / "model.mlpackage"
    with tempfile.TemporaryDirectory(prefix="vf_coreml_") as tmp:
        ts = Path(tmp) / "traced.pt"
        wrapped = ctx.wrapped_model()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.jit.save(torch.jit.trace(wrapped.eval(), torch.from_numpy(ctx.inputs)), str(ts))
        np.save(Path(tmp) / "x.npy", ctx.inputs)
        res_json = Path(tmp) / "result.json"
        staging = Path(tmp) / "model.mlpackage"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "visionforge.export._coreml_worker",
                str(ts),
                str(staging),
                str(Path(tmp) / "x.npy"),
                str(res_json),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        if proc.returncode != 0 or not res_json.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [
                f"exit {proc.returncode}"
            ]
            raise RuntimeError(f"coremltools conversion failed: {tail[0][:300]}")
        info = json.loads(res_json.read_text())
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(staging), out)  # a package is a folder: move it into place whole
        result.set_file(out)
        result.extra.update(info)
        result.extra["batch"] = int(ctx.inputs.shape[0])
        if info.get("predicted"):
            with np.load(str(res_json) + ".npz") as z:
                outs = [z[k] for k in z.files]
            parity_result(result, ctx.reference, outs, TOLERANCE)
        else:
            result.status = OK
            result.reason = (
                f"spec validated; prediction not checked: the Core ML runtime needs macOS "
                f"(this is {platform.system()})"
            )
    return result

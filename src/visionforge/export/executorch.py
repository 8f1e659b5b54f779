"""ExecuTorch ``.pte`` export (XNNPACK delegate) for on-device use, checked with its runtime."""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

from visionforge.export.base import (
    SKIPPED,
    ExportContext,
    ExportResult,
    check_artifact,
    register_exporter,
)
from visionforge.io import atomic_write_bytes

TOLERANCE = 1e-4


@register_exporter(
    "executorch", order=70, description="ExecuTorch .pte (XNNPACK); default for 1-D signal models"
)
def export_executorch(ctx: ExportContext) -> ExportResult:
    """Lower with ``torch.export`` + XNNPACK to ``model.pte`` and run it with the ExecuTorch runtime.

    The program has a fixed batch (the smoke batch size), as ExecuTorch programs do.
    """
    result = ExportResult("executorch")
    if importlib.util.find_spec("executorch") is None:
        result.status = SKIPPED
        result.reason = (
            "skipped: the 'executorch' package is not installed (pip install executorch)"
        )
        return result
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    wrapped = ctx.wrapped_model()
    x = torch.from_numpy(ctx.inputs)
    with torch.no_grad():
        exported = torch.export.export(wrapped, (x,))
    program = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackPartitioner()]
    ).to_executorch()
    path = ctx.out_dir / "model.pte"
    atomic_write_bytes(path, program.buffer)
    result.set_file(path)
    method = Runtime.get().load_program(str(path)).load_method("forward")

    def run() -> list[np.ndarray]:
        return [o.detach().float().numpy() for o in method.execute([x])]

    check_artifact(result, ctx, run, TOLERANCE)
    result.extra.update({"batch": int(x.shape[0]), "delegate": "xnnpack"})
    return result

"""PyTorch export: the self-describing model dir plus a training checkpoint, both reloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from visionforge.export.base import (
    ExportContext,
    ExportResult,
    max_abs_diff,
    median_latency_ms,
    parity_result,
    register_exporter,
)
from visionforge.export.contract import flatten_outputs
from visionforge.io import atomic_torch_save, load_state_dict_file
from visionforge.models.model_dir import META_FILE, WEIGHTS_FILE, load_model

TOLERANCE = 0.0  # same weights, same code: outputs must be identical


def _run(model: torch.nn.Module, x: np.ndarray) -> list[np.ndarray]:
    with torch.inference_mode():
        return [v.float().numpy() for _, v in flatten_outputs(model(torch.from_numpy(x)))]


def _same_weights(path: Path, model: torch.nn.Module) -> bool:
    try:
        state = load_state_dict_file(path)
    except Exception:
        return False
    own = model.state_dict()
    return set(state) == set(own) and all(torch.equal(state[k].cpu(), own[k].cpu()) for k in own)


def _training_checkpoint(ctx: ExportContext) -> tuple[object, str]:
    # A run dir keeps the full training state (optimizer, schedulers, loops) beside model/.
    # The model dir holds the best weights by default (or the last, or an EMA copy), so the
    # checkpoint copied is the one whose weights are the model dir's.
    others = []
    for name in ("best.ckpt", "last.ckpt"):
        cand = ctx.model_dir.parent / "checkpoints" / name
        if cand.is_file():
            if _same_weights(cand, ctx.model):
                return cand, f"copied from {cand}"
            others.append(name)
    state = {f"model.{k}": v.detach().cpu() for k, v in ctx.model.state_dict().items()}
    ckpt = {
        "state_dict": state,
        "epoch": 0,
        "global_step": 0,
        "optimizer_states": [],
        "lr_schedulers": [],
        "visionforge_meta": ctx.meta,
    }
    if others:
        return ckpt, (f"the run's {', '.join(others)} hold other weights than the model dir "
                      "(e.g. an EMA copy): wrote the model dir's weights in checkpoint form")
    return ckpt, "no training checkpoint beside the model dir: wrote the weights in checkpoint form"


@register_exporter("pytorch", order=10, description="model dir (safetensors + JSON) + checkpoint")
def export_pytorch(ctx: ExportContext) -> ExportResult:
    """Copy the model dir to ``pytorch/`` and write ``pytorch/checkpoint.ckpt``; reload both."""
    result = ExportResult("pytorch")
    dest = ctx.out_dir / "pytorch"
    dest.mkdir(parents=True, exist_ok=True)
    for fname in (WEIGHTS_FILE, META_FILE):
        shutil.copy2(ctx.model_dir / fname, dest / fname)
    src, note = _training_checkpoint(ctx)
    ckpt_path = dest / "checkpoint.ckpt"
    if isinstance(src, dict):
        atomic_torch_save(src, ckpt_path)
    else:
        shutil.copy2(src, ckpt_path)
    result.set_file(dest)
    reloaded = load_model(dest)
    outs = _run(reloaded, ctx.inputs)
    parity_result(result, ctx.reference, outs, TOLERANCE)
    # The checkpoint must load without unpickling arbitrary objects and give the same outputs.
    state = load_state_dict_file(ckpt_path)
    fresh = load_model(dest)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint does not match the model: missing {list(missing)[:3]}, "
            f"unexpected {list(unexpected)[:3]}"
        )
    ckpt_err = max_abs_diff(ctx.reference, _run(fresh.eval(), ctx.inputs))
    result.extra.update(
        {"checkpoint": str(ckpt_path), "checkpoint_note": note, "checkpoint_parity_error": ckpt_err}
    )
    if ckpt_err > 1e-6:
        result.status = "failed"
        result.reason = f"checkpoint parity error {ckpt_err:.3g}"
    result.latency_ms = median_latency_ms(lambda: _run(reloaded, ctx.inputs))
    return result

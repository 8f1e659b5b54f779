"""Prune a model dir and report its accuracy before and after on labelled data.

``prune_model_dir`` loads a model dir, scores it on a labelled folder (accuracy for
classifiers, mean IoU for segmentation, in percent, the measure of the INT8 report),
prunes it (:func:`visionforge.export.prune.prune_global`), scores it again and writes the
pruned model dir with ``prune_report.json`` beside ``model.json``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionforge.errors import ConfigError

__all__ = ["prune_model_dir", "score_model"]


@torch.no_grad()
def score_model(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, task: str,
                batch_size: int = 32) -> float:
    """Accuracy (classification/signal) or mean IoU (segmentation), in percent."""
    from visionforge.export.quantize import score

    model.eval()
    outs = []
    for i in range(0, len(x), batch_size):
        out = model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])))
        if isinstance(out, dict):
            out = out["segmentation" if task == "segmentation" else "classification"]
        outs.append(out.float().numpy())
    logits = np.concatenate(outs)
    return score(task, logits, y, int(logits.shape[1]))


def prune_model_dir(model_dir: str | os.PathLike[str], data: str | os.PathLike[str],
                    amount: float, out: str | os.PathLike[str] | None = None,
                    batch_size: int = 32) -> dict[str, Any]:
    """Prune ``amount`` of the weights of ``model_dir``; score on ``data`` before and after.

    ``data``: ``DATA/<class>/*`` for classifiers, ``DATA/images`` + ``DATA/masks`` for
    segmentation. ``out`` (default ``<model_dir>-pruned<NN>``) receives the pruned model dir
    and ``prune_report.json``. Returns the report.
    """
    from visionforge.export.prune import prune_global, sparsity
    from visionforge.inference.files import labelled_folder
    from visionforge.io import atomic_write_json
    from visionforge.models.model_dir import (
        load_model,
        model_dir_path,
        read_model_meta,
        save_model_dir,
    )

    src = model_dir_path(model_dir)
    meta = read_model_meta(src)
    task = meta.get("task", "classification")
    if task not in ("classification", "segmentation"):
        raise ConfigError(f"{src}: pruning reports cover classification and segmentation "
                          f"models; this one is {task!r}")
    model = load_model(src)
    x, y = labelled_folder(data, meta)
    if len(x) == 0:
        raise ConfigError(f"{data}: no labelled images found for the model's classes")
    metric = "miou" if task == "segmentation" else "accuracy"
    before_sparsity = sparsity(model)["sparsity"]
    before = score_model(model, x, y, task, batch_size)
    pruned = prune_global(model, amount)
    after = score_model(model, x, y, task, batch_size)
    target = Path(out) if out is not None else src.with_name(f"{src.name}-pruned{round(amount * 100):02d}")
    report = {
        "model_dir": str(src), "data": str(data), "n_samples": int(len(x)), "metric": metric,
        "amount": float(amount), "method": "global unstructured L1 (torch.nn.utils.prune)",
        f"{metric}_before": before, f"{metric}_after": after, f"{metric}_drop": before - after,
        "sparsity_before": before_sparsity, "sparsity_after": pruned["sparsity"],
        "prunable_weights": pruned["prunable_weights"], "zero_weights": pruned["zero_weights"],
        "per_layer_sparsity": pruned["per_layer"], "out": str(target),
    }
    save_model_dir(model, target, task=task, class_names=meta.get("class_names"),
                   input_size=meta.get("input_size"), preprocessing=meta.get("preprocessing"),
                   metrics={**(meta.get("metrics") or {}), f"pruned_{metric}": after},
                   extra={"pruning": {k: report[k] for k in ("amount", "method",
                                                               "sparsity_after")}})
    atomic_write_json(target / "prune_report.json", report)
    return report

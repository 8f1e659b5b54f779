"""The closing summary table printed after a run."""

from __future__ import annotations

from typing import Any

__all__ = ["headline_metrics", "print_summary"]

_HEADLINE = ("accuracy", "f1_macro", "mean_iou", "mean_dice", "pixel_accuracy", "roc_auc_macro")


def headline_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The few scalar metrics worth a line each (nested multitask/signal sections included)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key in _HEADLINE and isinstance(value, int | float):
            out[key] = float(value)
        elif isinstance(value, dict) and key in ("classification", "segmentation"):
            for k, v in headline_metrics(value).items():
                out[f"{key}.{k}"] = v
    return out


def print_summary(result: Any, echo: Any = print) -> None:
    """Print best metric, test metrics and where the outputs were written."""
    rows = [("run dir", str(result.run_dir)), ("task", result.task), ("model", result.model_name)]
    best = (result.history or {}).get("best", {})
    rows += [(k if k.startswith(("best_", "val_")) else f"val {k}", f"{v:.4f}")
             for k, v in best.items() if isinstance(v, int | float)]
    split = result.metrics.get("split", "test")
    rows += [(f"{split} {k}", f"{v:.4f}") for k, v in headline_metrics(result.metrics).items()]
    if result.model_dir:
        rows.append(("model dir", str(result.model_dir)))
    if result.report:
        rows.append(("report", str(result.report)))
    rows.append(("time", f"{result.seconds:.1f} s"))
    width = max(len(k) for k, _ in rows)
    echo("-" * (width + 40))
    for key, value in rows:
        echo(f"{key:<{width}}  {value}")
    echo("-" * (width + 40))

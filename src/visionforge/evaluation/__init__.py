"""How good is a model: metrics, the evaluator, plots, reports and quantification."""

from visionforge.evaluation.classification_metrics import ClassificationMetrics
from visionforge.evaluation.evaluator import Evaluator, split_batch
from visionforge.evaluation.experiment import Experiment
from visionforge.evaluation.quantification import object_counts, tissue_composition
from visionforge.evaluation.report import build_run_report, collect_versions, render_report
from visionforge.evaluation.segmentation_metrics import SegmentationMetrics, metrics_from_confusion
from visionforge.evaluation.signal_metrics import (
    DEFAULT_THRESHOLDS,
    binary_rates,
    datapoint_metrics,
    event_metrics,
    group_events,
    signal_metrics,
    threshold_sweep,
)

__all__ = [
    "ClassificationMetrics",
    "SegmentationMetrics",
    "metrics_from_confusion",
    "Evaluator",
    "Experiment",
    "split_batch",
    "binary_rates",
    "datapoint_metrics",
    "event_metrics",
    "group_events",
    "threshold_sweep",
    "signal_metrics",
    "DEFAULT_THRESHOLDS",
    "render_report",
    "build_run_report",
    "collect_versions",
    "tissue_composition",
    "object_counts",
    "plots",
]


def __getattr__(name: str):
    if name == "plots":
        import importlib

        return importlib.import_module("visionforge.evaluation.plots")
    raise AttributeError(f"module 'visionforge.evaluation' has no attribute {name!r}")

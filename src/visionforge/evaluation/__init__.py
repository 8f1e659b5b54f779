"""How good is a model: metrics, the evaluator, plots, reports and quantification."""

from visionforge.evaluation.classification_metrics import ClassificationMetrics
from visionforge.evaluation.evaluator import Evaluator, split_batch
from visionforge.evaluation.experiment import Experiment
from visionforge.evaluation.quantification import object_counts, tissue_composition
from visionforge.evaluation.report import build_run_report, collect_versions, render_report
from visionforge.evaluation.segmentation_metrics import SegmentationMetrics, metrics_from_confusion

# the signal metrics are re-exported (``x as x``); __all__ takes their module's list
from visionforge.evaluation.signal_metrics import DEFAULT_THRESHOLDS as DEFAULT_THRESHOLDS
from visionforge.evaluation.signal_metrics import __all__ as _SIGNAL_METRICS
from visionforge.evaluation.signal_metrics import binary_rates as binary_rates
from visionforge.evaluation.signal_metrics import datapoint_metrics as datapoint_metrics
from visionforge.evaluation.signal_metrics import event_metrics as event_metrics
from visionforge.evaluation.signal_metrics import group_events as group_events
from visionforge.evaluation.signal_metrics import signal_metrics as signal_metrics
from visionforge.evaluation.signal_metrics import threshold_sweep as threshold_sweep

__all__ = [
    "ClassificationMetrics",
    "SegmentationMetrics",
    "metrics_from_confusion",
    "Evaluator",
    "Experiment",
    "split_batch",
    *_SIGNAL_METRICS,
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

"""``Evaluator``: run a model over a data loader and compute every metric for its task.

The task (classification, segmentation, multitask, signal) is taken from the
argument, else from the model dir metadata (``models.spec.model_meta``), else
detected from the first batch (dict output -> multitask, ``[B, S, H, W]``
output -> segmentation, ``[B, C, L]`` input -> signal, else classification).
Batches are dicts (``image``/``label``/``mask``, optional ``event_id``) or
tuples ``(x, y, *rest)``; for signals ``rest[0]`` holds event ids.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from visionforge.errors import DataError
from visionforge.evaluation.classification_metrics import ClassificationMetrics
from visionforge.evaluation.segmentation_metrics import SegmentationMetrics
from visionforge.evaluation.signal_metrics import group_events, signal_metrics
from visionforge.io import atomic_write_json
from visionforge.progress import progress

if TYPE_CHECKING:
    from visionforge.models.contract import InputContract

__all__ = ["Evaluator", "split_batch", "save_metrics", "TASKS"]

TASKS = ("classification", "segmentation", "multitask", "signal")
_EVENT_KEYS = ("event_id", "event_ids", "event")


def save_metrics(evaluator: Any, out_dir: str | os.PathLike[str], *, plots: bool = True
                 ) -> dict[str, Path]:
    """Write an evaluator's ``metrics.json`` and (with ``plots``) its ``write_plots`` figures
    under ``out_dir/plots``; returns name -> path. Shared by every evaluator class (a function,
    not a mixin: :class:`Evaluator` declares dataclass fields a mixin base would disturb)."""
    if evaluator.metrics is None:
        raise ValueError("call evaluate(loader) before save()")
    out = Path(out_dir)
    written = {"metrics": atomic_write_json(out / "metrics.json", evaluator.metrics)}
    if plots:
        written.update(evaluator.write_plots(out / "plots"))
    return written


def split_batch(batch: Any) -> dict[str, Any]:
    """Normalise a batch to ``{"x", "label", "mask", "event_id", "path"}`` (missing keys None)."""
    out: dict[str, Any] = {"x": None, "label": None, "mask": None, "event_id": None, "path": None}
    if isinstance(batch, dict):
        if "image" not in batch and "x" not in batch:
            raise DataError(
                f"batch dict has keys {sorted(batch)}; expected 'image' (and 'label'/'mask')"
            )
        out["x"] = batch.get("image", batch.get("x"))
        out["label"] = batch.get("label")
        out["mask"] = batch.get("mask")
        out["path"] = batch.get("path")
        for key in _EVENT_KEYS:
            if key in batch:
                out["event_id"] = batch[key]
    elif isinstance(batch, list | tuple):
        if len(batch) < 2:
            raise DataError("a tuple batch must be (inputs, targets, *rest)")
        out["x"], y = batch[0], batch[1]
        y = torch.as_tensor(y)
        if y.ndim >= 2:
            out["mask"] = y
        else:
            out["label"] = y
        if len(batch) > 2:
            out["event_id"] = batch[2]
    else:
        raise DataError(f"unsupported batch type {type(batch).__name__}; use a dict or a tuple")
    return out


@dataclass
class _Accumulated:
    """What :meth:`Evaluator.evaluate` gathers batch by batch."""

    cls_m: ClassificationMetrics | None = None
    seg_m: SegmentationMetrics | None = None
    probs: list[torch.Tensor] = field(default_factory=list)  # signal: per-window probabilities
    labels: list[torch.Tensor] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    samples: dict[str, list[Any]] = field(
        default_factory=lambda: {
            k: [] for k in ("images", "targets", "preds", "probs", "masks", "mask_preds")
        }
    )
    n_items: int = 0


def _display_contract(model: nn.Module) -> InputContract | None:
    """The input contract to undo when showing samples: known only for visionforge models
    (built by ``create_model`` or loaded from a model dir); ``None`` for foreign modules."""
    # imported here: the models package is heavy and evaluation must not require it up front
    from visionforge.models.spec import model_contract, model_meta, model_name

    if model_name(model) or model_meta(model):
        return model_contract(model)
    return None


def _ids_to_list(ids: Any) -> list[str]:
    if isinstance(ids, torch.Tensor):
        return [str(v) for v in ids.reshape(-1).tolist()]
    return [str(v) for v in ids]


class Evaluator:
    """Compute the metrics of ``model`` on a loader and write them with plots.

    Args:
        model: any ``nn.Module`` following the output contract (logits ``[B, C]``,
            ``[B, S, H, W]`` or a ``{"classification", "segmentation"}`` dict).
        device: where to run the model.
        task: force the task instead of detecting it.
        num_classes / class_names: default from the model metadata or the output shape.
        ignore_index: mask value excluded from segmentation metrics.
        threshold: positive-class probability threshold for signal metrics.
        num_samples: how many samples to keep for the prediction grid plot.
        contract: the model's input contract, undone to show the sample images in their
            true colours; default: the model's own (``models.spec.model_contract``) for
            visionforge models, none (min/max display scaling) for foreign modules.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "cpu",
        *,
        task: str | None = None,
        num_classes: int | None = None,
        class_names: list[str] | None = None,
        ignore_index: int | None = None,
        threshold: float = 0.5,
        num_samples: int = 8,
        contract: InputContract | None = None,
    ) -> None:
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        from visionforge.models.spec import model_meta

        meta = model_meta(model)
        self.model = model
        self.device = torch.device(device)
        self.task = task or (meta.get("task") if meta.get("task") in TASKS else None)
        self.class_names = class_names or meta.get("class_names")
        self.num_classes = (
            num_classes
            or meta.get("num_classes")
            or (len(self.class_names) if self.class_names else None)
        )
        self.ignore_index = ignore_index
        self.threshold = threshold
        self.num_samples = num_samples
        self.contract = contract if contract is not None else _display_contract(model)
        self.metrics: dict[str, Any] | None = None
        self.artifacts: dict[str, Any] = {}

    # -- detection ---------------------------------------------------------
    def _detect_task(self, x: torch.Tensor, out: Any, parts: dict[str, Any]) -> str:
        if isinstance(out, dict):
            return "multitask"
        if out.ndim == 4:
            return "segmentation"
        if x.ndim == 3 or parts["event_id"] is not None:
            return "signal"
        return "classification"

    def _class_names(self, n: int) -> list[str]:
        if self.class_names and len(self.class_names) == n:
            return list(self.class_names)
        return [str(i) for i in range(n)]

    # -- main loop ---------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, Any]:
        """Run the model over ``loader`` and return the metrics dict for the task.

        The result is JSON-ready; arrays needed for plots are kept in ``self.artifacts``.
        """
        model = self.model
        was_training = model.training
        model.eval().to(self.device)
        acc = _Accumulated()
        t0 = time.perf_counter()
        task = self.task
        try:
            for batch in progress(loader, "evaluate"):
                parts = split_batch(batch)
                x = torch.as_tensor(parts["x"]).to(self.device).float()
                out = model(x)
                if task is None:
                    task = self._detect_task(x, out, parts)
                acc.n_items += x.shape[0]
                cls_out, seg_out = self._heads(task, out)
                if cls_out is not None and parts["label"] is not None:
                    self._update_classification(acc, task, x, cls_out, parts)
                if seg_out is not None and parts["mask"] is not None:
                    self._update_segmentation(acc, task, x, seg_out, parts["mask"])
        finally:
            model.train(was_training)
        if task is None:
            raise DataError("the data loader yielded no batches; nothing to evaluate")
        if acc.cls_m is None and acc.seg_m is None:
            raise DataError(
                f"no targets found for task {task!r}: batches need 'label' (classification/signal) "
                "or 'mask' (segmentation) entries"
            )
        seconds = time.perf_counter() - t0
        self.task = task
        result = self._collect(task, acc)
        result["runtime"] = {
            "seconds": round(seconds, 4),
            "samples": acc.n_items,
            "samples_per_second": round(acc.n_items / seconds, 2) if seconds > 0 else None,
            "device": str(self.device),
        }
        self.metrics = result
        return result

    def _update_classification(
        self, acc: _Accumulated, task: str, x: torch.Tensor, cls_out: torch.Tensor, parts: dict
    ) -> None:
        """Add one batch of logits (and, for signals, event ids) to the running metrics."""
        cls_out = cls_out.float().cpu()
        labels = torch.as_tensor(parts["label"]).long().cpu().reshape(-1)
        if acc.cls_m is None:
            n = self.num_classes if task != "multitask" else cls_out.shape[1]
            acc.cls_m = ClassificationMetrics(
                n or cls_out.shape[1], self._class_names(cls_out.shape[1])
            )
        acc.cls_m.update(cls_out, labels)
        probs = acc.cls_m._to_probs(cls_out)
        if task == "signal":
            acc.probs.append(probs)
            acc.labels.append(labels)
            if parts["event_id"] is not None:
                acc.events.extend(_ids_to_list(parts["event_id"]))
        self._keep_cls_samples(acc.samples, x, labels, probs)

    def _update_segmentation(
        self, acc: _Accumulated, task: str, x: torch.Tensor, seg_out: torch.Tensor, mask: Any
    ) -> None:
        """Add one batch of mask logits to the running confusion matrix."""
        mask = torch.as_tensor(mask).long().cpu()
        if mask.ndim == 4 and mask.shape[1] == 1:
            mask = mask[:, 0]
        if acc.seg_m is None:
            n = seg_out.shape[1]
            acc.seg_m = SegmentationMetrics(
                n, self.ignore_index, self._class_names(n) if task != "multitask" else None
            )
        pred = seg_out.argmax(dim=1).cpu()
        acc.seg_m.update(pred, mask)
        self._keep_seg_samples(acc.samples, x, mask, pred)

    def _collect(self, task: str, acc: _Accumulated) -> dict[str, Any]:
        """The metrics dict of the task; fills ``self.artifacts`` with what the plots need."""
        result: dict[str, Any] = {"task": task}
        self.artifacts = {"samples": acc.samples}
        if acc.cls_m is not None:
            cls = acc.cls_m.compute()
            self.artifacts.update(
                probs=acc.cls_m.probabilities,
                targets=acc.cls_m.targets,
                class_names=acc.cls_m.class_names,
            )
            if task == "signal":
                probs_np = torch.cat(acc.probs).numpy()
                labels_np = torch.cat(acc.labels).numpy()
                ev = acc.events if len(acc.events) == len(labels_np) else None
                cls["signal"] = signal_metrics(probs_np, labels_np, ev, self.threshold)
                if ev is not None:
                    self.artifacts["events"] = group_events(probs_np, labels_np, ev)
            if task == "multitask":
                result["classification"] = cls
            else:
                result.update(cls)
        if acc.seg_m is not None:
            seg = acc.seg_m.compute()
            self.artifacts["seg_class_names"] = seg["class_names"]
            if task == "multitask":
                result["segmentation"] = seg
            else:
                result.update(seg)
        return result

    def _heads(self, task: str, out: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if task == "multitask":
            if not isinstance(out, dict):
                raise DataError("a multitask model must return {'classification', 'segmentation'}")
            return out.get("classification"), out.get("segmentation")
        if isinstance(out, dict):
            raise DataError(f"model returned a dict but task is {task!r}; use task='multitask'")
        if task == "segmentation":
            return None, out
        return out, None

    def _keep_cls_samples(
        self,
        samples: dict[str, list[Any]],
        x: torch.Tensor,
        labels: torch.Tensor,
        probs: torch.Tensor,
    ) -> None:
        if x.ndim != 4:
            return
        conf, pred = probs.max(dim=1)
        for i in range(x.shape[0]):
            if len(samples["images"]) >= self.num_samples:
                return
            samples["images"].append(x[i].cpu())
            samples["targets"].append(int(labels[i]))
            samples["preds"].append(int(pred[i]))
            samples["probs"].append(float(conf[i]))

    def _keep_seg_samples(
        self, samples: dict[str, list[Any]], x: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor
    ) -> None:
        limit = min(self.num_samples, 4)  # a row per sample; keep the grid readable
        for i in range(x.shape[0]):
            if len(samples["masks"]) >= limit:
                return
            if len(samples["masks"]) >= len(samples["images"]):
                samples["images"].append(x[i].cpu())
            samples["masks"].append(mask[i])
            samples["mask_preds"].append(pred[i])

    # -- outputs -----------------------------------------------------------
    def save(self, out_dir: str | os.PathLike[str], *, plots: bool = True) -> dict[str, Path]:
        """Write ``metrics.json`` and (with ``plots``) ``plots/*.png`` under ``out_dir``."""
        return save_metrics(self, out_dir, plots=plots)

    def write_plots(self, plots_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write every figure that applies to the evaluated task; returns name -> path."""
        from visionforge.evaluation import plots as P

        if self.metrics is None:
            raise ValueError("call evaluate(loader) before write_plots()")
        d = Path(plots_dir)
        m = self.metrics
        if self.task == "multitask":
            cls, seg = m.get("classification"), m.get("segmentation")
        elif self.task == "segmentation":
            cls, seg = None, m
        else:
            cls, seg = m, None
        art, s = self.artifacts, self.artifacts.get("samples", {})
        out: dict[str, Path] = {}
        if cls is not None:
            out["confusion_matrix"] = P.plot_confusion_matrix(
                cls["confusion_matrix"], cls["class_names"], d / "confusion_matrix.png"
            )
            if art.get("probs") is not None:
                out["roc_curves"] = P.plot_roc_curves(
                    art["probs"].numpy(),
                    art["targets"].numpy(),
                    cls["class_names"],
                    d / "roc_curves.png",
                )
            if s.get("preds"):
                out["sample_predictions"] = P.plot_classification_samples(
                    s["images"][: len(s["preds"])],
                    s["targets"],
                    s["preds"],
                    s["probs"],
                    cls["class_names"],
                    d / "sample_predictions.png",
                    contract=self.contract,
                )
            if "signal" in cls:
                out["threshold_sweep"] = P.plot_threshold_sweep(
                    cls["signal"]["sweep"], d / "threshold_sweep.png"
                )
            if "events" in art:
                ev = art["events"]
                out["event_probabilities"] = P.plot_event_probabilities(
                    ev["event_ids"],
                    ev["max_prob"],
                    ev["label"],
                    d / "event_probabilities.png",
                    self.threshold,
                )
        if seg is not None:
            suffix = "_segmentation" if self.task == "multitask" else ""
            out["confusion_matrix" + suffix] = P.plot_confusion_matrix(
                seg["confusion_matrix"], seg["class_names"], d / f"confusion_matrix{suffix}.png"
            )
            out["per_class_iou"] = P.plot_per_class_iou(
                seg["per_class_iou"],
                seg["class_names"],
                d / "per_class_iou.png",
                dice=seg["per_class_dice"],
            )
            if s.get("masks"):
                out["sample_segmentations"] = P.plot_segmentation_samples(
                    s["images"][: len(s["masks"])],
                    s["masks"],
                    s["mask_preds"],
                    seg["class_names"],
                    d / "sample_segmentations.png",
                    contract=self.contract,
                )
        return out

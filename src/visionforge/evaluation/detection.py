"""Detection metrics and figures: COCO mAP/AR (torchmetrics), per-class AP, PR curves, counts.

- mAP@[.5:.95], mAP@.5, mAP@.75, AR@100 and per-class AP/AR come from torchmetrics'
  ``MeanAveragePrecision`` (pycocotools backend); :func:`cocoeval_stats` recomputes them
  with pycocotools' ``COCOeval`` directly, for cross-checks.
- Counting: per image, predicted boxes with score >= ``count_threshold`` vs true boxes;
  mean absolute count error (objects) and mean relative count error (over images that
  hold objects). :func:`choose_count_threshold` picks the threshold with the lowest mean
  absolute count error on a validation split; training stores it in ``model.json``.
- Figures: precision-recall curve per class at IoU 0.5, sample images with true (green)
  and predicted (red) boxes, predicted vs true counts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from visionforge.errors import ConfigError, DataError
from visionforge.evaluation.evaluator import save_metrics

__all__ = ["DetectionEvaluator", "as_image_list", "build_map_metric", "map_scalars",
           "count_errors", "true_counts", "model_score_threshold", "DEFAULT_SCORE_THRESHOLD", "predicted_counts", "choose_count_threshold",
           "cocoeval_stats", "to_coco_json", "plot_pr_curves", "plot_detection_samples",
           "plot_counts"]

#: score from which a detection counts when no validated threshold is stored
DEFAULT_SCORE_THRESHOLD = 0.5
#: thresholds :func:`choose_count_threshold` tries by default
COUNT_THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def as_image_list(images: Any) -> list[torch.Tensor]:
    """A batch tensor ``[B, C, H, W]`` or a list of ``[C, H, W]`` as a list."""
    return list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)


def build_map_metric() -> nn.Module:
    """torchmetrics ``MeanAveragePrecision`` for xyxy boxes, with per-class AP."""
    from torchmetrics.detection import MeanAveragePrecision

    # COCOeval's own thresholds as float64: torchmetrics' defaults come from float32
    # torch.linspace, so a recall threshold such as 0.1 lands a hair above a recall of
    # exactly 11/110 and the precision is sampled one step later (3e-3 off COCOeval's mAP@.5
    # on the IHC test tiles)
    iou_thresholds = np.linspace(0.5, 0.95, 10).tolist()
    rec_thresholds = np.linspace(0.0, 1.0, 101).tolist()
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=True,
                                  backend="pycocotools", iou_thresholds=iou_thresholds,
                                  rec_thresholds=rec_thresholds)
    # COCO scores the 100 best detections per image; more (dense objects, low score
    # thresholds) are expected here, so torchmetrics' warning about them is noise
    metric.warn_on_many_detections = False
    return metric


def map_scalars(result: dict[str, Any]) -> dict[str, float]:
    """The scalar entries of a ``MeanAveragePrecision.compute()`` result (``-1`` = undefined)."""
    out = {}
    for key in ("map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1",
                "mar_10", "mar_100"):
        value = result.get(key)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value)
    return out


def count_errors(pred_counts: Sequence[int], true_counts: Sequence[int]) -> dict[str, float]:
    """Mean absolute count error and mean relative error (images with >= 1 true object)."""
    p, t = np.asarray(pred_counts, float), np.asarray(true_counts, float)
    if not len(t):
        return {}
    rel = np.abs(p - t)[t > 0] / t[t > 0]
    return {"mean_absolute_count_error": float(np.abs(p - t).mean()),
            "mean_relative_count_error": float(rel.mean()) if len(rel) else float("nan"),
            "total_true": int(t.sum()), "total_predicted": int(p.sum())}


def true_counts(targets: Sequence[dict[str, Any]]) -> list[int]:
    """Objects per image of ``targets`` (crowd regions are not objects)."""
    return [int(len(t["labels"]) - int(t.get("iscrowd", torch.zeros(0)).sum())) for t in targets]


def predicted_counts(preds: Sequence[dict[str, torch.Tensor]], threshold: float) -> list[int]:
    """Detections per image with score >= ``threshold``."""
    return [int((p["scores"] >= threshold).sum()) for p in preds]


def model_score_threshold(meta: dict[str, Any], where: str = "model.json") -> float:
    """The score threshold a detection model dir records (``model.json``'s
    ``score_threshold``), else :data:`DEFAULT_SCORE_THRESHOLD`.

    Raises:
        ConfigError: the recorded value is not a number in [0, 1] (``where`` names the file).
    """
    value = meta.get("score_threshold")
    if value is None:
        return DEFAULT_SCORE_THRESHOLD
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{where}: score_threshold={value!r} is not a number in [0, 1]; "
                          "fix or remove the key (without it the default is "
                          f"{DEFAULT_SCORE_THRESHOLD})")
    return float(value)


def choose_count_threshold(preds: Sequence[dict[str, torch.Tensor]],
                           targets: Sequence[dict[str, Any]],
                           candidates: Sequence[float] = COUNT_THRESHOLDS) -> float:
    """The score threshold whose counts have the lowest mean absolute count error on
    ``preds``/``targets`` (a validation split, never the test split). Ties go to the
    candidate nearest 0.5, so a flat error curve keeps the usual default."""
    if not preds or not candidates:
        raise ValueError("choose_count_threshold needs predictions and candidate thresholds")
    truth = np.asarray(true_counts(targets), float)

    def error(t: float) -> float:
        return float(np.abs(np.asarray(predicted_counts(preds, t), float) - truth).mean())

    return float(min(candidates, key=lambda t: (round(error(t), 9), abs(t - 0.5))))


def to_coco_json(preds: Sequence[dict[str, torch.Tensor]], targets: Sequence[dict[str, Any]],
                 sizes: Sequence[tuple[int, int]] | None = None) -> tuple[dict, list[dict]]:
    """COCO ground-truth dict and detection list for ``preds``/``targets`` (image ids 1..N)."""
    images, anns, dets = [], [], []
    labels = sorted({int(v) for t in targets for v in t["labels"].tolist()}
                    | {int(v) for p in preds for v in p["labels"].tolist()})
    for i, (p, t) in enumerate(zip(preds, targets, strict=True), 1):
        h, w = sizes[i - 1] if sizes else (10_000, 10_000)
        images.append({"id": i, "width": int(w), "height": int(h)})
        crowd = t.get("iscrowd", torch.zeros(len(t["labels"]), dtype=torch.long))
        for box, lab, cr in zip(t["boxes"].tolist(), t["labels"].tolist(), crowd.tolist(),
                                strict=True):
            bw, bh = box[2] - box[0], box[3] - box[1]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(lab),
                         "bbox": [box[0], box[1], bw, bh], "area": bw * bh, "iscrowd": int(cr)})
        for box, score, lab in zip(p["boxes"].tolist(), p["scores"].tolist(),
                                   p["labels"].tolist(), strict=True):
            dets.append({"image_id": i, "category_id": int(lab), "score": float(score),
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": k, "name": str(k)} for k in labels]}
    return gt, dets


def cocoeval_stats(preds: Sequence[dict[str, torch.Tensor]],
                   targets: Sequence[dict[str, Any]]) -> dict[str, float]:
    """mAP@[.5:.95], mAP@.5 and AR@100 by pycocotools' ``COCOeval`` itself (the reference)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict, dets = to_coco_json(preds, targets)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = gt_dict
        gt.createIndex()
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"map": float(ev.stats[0]), "map_50": float(ev.stats[1]),
            "map_75": float(ev.stats[2]), "mar_100": float(ev.stats[8])}


class DetectionEvaluator:
    """Evaluate a detector on a loader of detection batches and write metrics and plots.

    Args:
        model: a detector (eval mode returns ``[{"boxes", "scores", "labels"}]``).
        class_names: names of labels ``1..K``.
        count_threshold: score from which a detection counts as an object; default: the
            ``score_threshold`` stored in the model dir's ``model.json`` (chosen on the
            validation split after training), else 0.5.
        num_samples: images kept for the sample figure.
        tta: test-time views, ``none`` (default), ``flips`` or ``d8`` (the eight symmetries;
            boxes fused by :func:`~visionforge.models.box_tta.fuse_boxes`).
    """

    task = "detection"

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", *,
                 class_names: Sequence[str] | None = None, count_threshold: float | None = None,
                 num_samples: int = 4, tta: str = "none") -> None:
        from visionforge.models.box_tta import check_views
        from visionforge.models.spec import model_meta

        self.tta = check_views(tta)
        self.model = model
        self.device = torch.device(device)
        meta = model_meta(model)
        self.class_names = list(class_names or meta.get("class_names") or [])
        if count_threshold is None:
            count_threshold = model_score_threshold(meta)
        self.count_threshold = float(count_threshold)
        self.num_samples = num_samples
        self.metrics: dict[str, Any] | None = None
        self.artifacts: dict[str, Any] = {}

    @torch.no_grad()
    def evaluate(self, loader: Iterable[Any]) -> dict[str, Any]:
        """Run the model over ``loader``; return the JSON-ready metrics."""
        from visionforge.models.box_tta import detect_views

        metric = build_map_metric()
        was = self.model.training
        self.model.eval().to(self.device)
        preds_all, targets_all, samples = [], [], []
        t0 = time.perf_counter()
        try:
            for batch in loader:
                if not isinstance(batch, dict) or "targets" not in batch:
                    raise DataError("detection evaluation needs batches with 'image' and "
                                    "'targets' (visionforge.data.detection_collate)")
                images = [im.to(self.device) for im in as_image_list(batch["image"])]
                preds = [{k: v.cpu() for k, v in d.items()}
                         for d in detect_views(self.model, images, self.tta)]
                targets = [{k: t[k] for k in ("boxes", "labels", "iscrowd") if k in t}
                           for t in batch["targets"]]
                metric.update(preds, targets)
                preds_all += preds
                targets_all += targets
                samples += [im.cpu() for im in images[: max(self.num_samples - len(samples), 0)]]
        finally:
            self.model.train(was)
        if not preds_all:
            raise DataError("the data loader yielded no batches; nothing to evaluate")
        seconds = time.perf_counter() - t0
        res = metric.compute()
        self.metrics = self._collect(map_scalars(res), res, preds_all, targets_all, seconds)
        self.artifacts = {"preds": preds_all, "targets": targets_all, "images": samples}
        return self.metrics

    def _collect(self, scalars: dict[str, float], res: dict[str, Any], preds: list[dict],
                 targets: list[dict], seconds: float) -> dict[str, Any]:
        names = self.class_names
        classes = res.get("classes", torch.zeros(0)).reshape(-1).tolist()
        ap = res.get("map_per_class", torch.zeros(0)).reshape(-1).tolist()
        ar = res.get("mar_100_per_class", torch.zeros(0)).reshape(-1).tolist()

        def name(k: int) -> str:
            return names[k - 1] if 0 < k <= len(names) else str(k)

        pred_counts = predicted_counts(preds, self.count_threshold)
        truth = true_counts(targets)
        return {
            "task": "detection", **scalars,
            "per_class_ap": {name(int(k)): float(v) for k, v in zip(classes, ap, strict=False)},
            "per_class_ar": {name(int(k)): float(v) for k, v in zip(classes, ar, strict=False)},
            "tta": self.tta,
            "counting": {"score_threshold": self.count_threshold,
                         **count_errors(pred_counts, truth),
                         "predicted": pred_counts, "true": truth},
            "class_names": names, "num_images": len(preds),
            "runtime": {"seconds": round(seconds, 4),
                        "images_per_second": round(len(preds) / seconds, 2) if seconds else None},
        }

    def save(self, out_dir: str | os.PathLike[str], *, plots: bool = True) -> dict[str, Path]:
        """Write ``metrics.json`` and (with ``plots``) the figures under ``out_dir/plots``."""
        return save_metrics(self, out_dir, plots=plots)

    def write_plots(self, plots_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """PR curves, sample detections and the count scatter; returns name -> path."""
        if self.metrics is None:
            raise ValueError("call evaluate(loader) before write_plots()")
        d, a, c = Path(plots_dir), self.artifacts, self.metrics["counting"]
        return {
            "pr_curves": plot_pr_curves(a["preds"], a["targets"], self.class_names,
                                        d / "pr_curves.png"),
            "sample_detections": plot_detection_samples(
                a["images"], a["preds"], a["targets"], d / "sample_detections.png",
                self.count_threshold),
            "counts": plot_counts(c["predicted"], c["true"], d / "counts.png"),
        }


def plot_pr_curves(preds: list[dict], targets: list[dict], class_names: Sequence[str],
                   path: Path) -> Path:
    """Precision-recall per class at IoU 0.5 (COCO's 101-point interpolated curves)."""
    from torchmetrics.detection import MeanAveragePrecision

    from visionforge.evaluation.plots import _figure, save_figure

    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", extended_summary=True,
                                  backend="pycocotools")
    metric.warn_on_many_detections = False
    metric.update(preds, targets)
    res = metric.compute()
    prec = res["precision"]  # [iou T, recall R, class K, area A, max dets M]
    fig = _figure((5, 4))
    ax = fig.add_subplot(1, 1, 1)
    recall = np.linspace(0, 1, prec.shape[1])
    for k in range(prec.shape[2]):
        curve = prec[0, :, k, 0, -1].numpy()
        label = class_names[k] if k < len(class_names) else str(k + 1)
        ax.plot(recall, np.where(curve < 0, np.nan, curve), label=label)
    ax.set(xlabel="recall", ylabel="precision", title="PR at IoU 0.5", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize=8)
    return save_figure(fig, path)


def plot_detection_samples(images: list[torch.Tensor], preds: list[dict], targets: list[dict],
                           path: Path, score_threshold: float) -> Path:
    """Images with true boxes (green) and predictions >= ``score_threshold`` (red)."""
    from matplotlib.patches import Rectangle

    from visionforge.evaluation.plots import _figure, save_figure

    n = max(len(images), 1)
    fig = _figure((4 * n, 4))
    for i, image in enumerate(images):
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
        for box, color, lw in [*((b, "lime", 1.0) for b in targets[i]["boxes"].tolist()),
                               *((b, "red", 1.0) for b, s in zip(
                                   preds[i]["boxes"].tolist(), preds[i]["scores"].tolist(),
                                   strict=True) if s >= score_threshold)]:
            ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                   fill=False, edgecolor=color, linewidth=lw))
        ax.set_title(f"true {len(targets[i]['boxes'])}, predicted "
                     f"{int((preds[i]['scores'] >= score_threshold).sum())}", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path)


def plot_counts(predicted: Sequence[int], true: Sequence[int], path: Path) -> Path:
    """Predicted vs true object count per image (the diagonal is a perfect count)."""
    from visionforge.evaluation.plots import _figure, save_figure

    fig = _figure((4, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(true, predicted, s=14)
    top = max([*true, *predicted, 1])
    ax.plot([0, top], [0, top], "k--", linewidth=0.8)
    ax.set(xlabel="true count", ylabel="predicted count", title="objects per image")
    return save_figure(fig, path)

"""Test-time augmentation for detectors: the eight symmetries of the image, boxes fused.

A detector runs on flipped and quarter-turned copies of one image; every copy's boxes are
mapped back to the input's pixels (exact for axis-aligned boxes) and the lists are merged
by weighted box fusion (WBF, Solovyev et al. 2021): boxes of one class that overlap by
more than ``iou_thr`` form a cluster whose box is the score-weighted mean of its members and
whose score is their mean score times the share of views that found it. Averaging the
coordinates is the point: on small objects (IHC nuclei of ~10 px) box edges are off by
~2 px per view, and NMS would keep one view's edges where WBF averages eight.

WBF is written here (about 40 lines) rather than taken from the ``ensemble-boxes`` package,
which needs numba and pandas and works on normalised numpy boxes only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.ops import box_iou

from visionforge.errors import ConfigError

__all__ = ["VIEWS", "check_views", "view_image", "boxes_to_input", "fuse_boxes", "detect_tta",
           "detect_views", "max_detections_of"]

#: named view sets: (quarter turns, horizontal flip first) per view
VIEWS: dict[str, tuple[tuple[int, bool], ...]] = {
    "none": ((0, False),),
    "flips": ((0, False), (0, True), (2, False), (2, True)),  # identity, h, h+v, v
    "d8": tuple((k, f) for k in range(4) for f in (False, True)),
}


def check_views(views: str, where: str = "") -> str:
    """``views`` if it names a set of :data:`VIEWS`; else a ConfigError (``where`` says whose)."""
    if views not in VIEWS:
        raise ConfigError(f"tta={views!r}{where}: choose from {sorted(VIEWS)}")
    return views


def view_image(image: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """``image [..., H, W]`` flipped left-right (if ``flip``), then turned ``turns`` times
    by 90 degrees (``torch.rot90`` over the last two dims)."""
    x = image.flip(-1) if flip else image
    return torch.rot90(x, turns, (-2, -1)) if turns % 4 else x


def boxes_to_input(boxes: torch.Tensor, turns: int, flip: bool, size: tuple[int, int]
                   ) -> torch.Tensor:
    """Map xyxy ``boxes`` found on ``view_image(image, turns, flip)`` back to the pixels of
    ``image`` (``size`` = its ``(H, W)``)."""
    h, w = size
    x1, y1, x2, y2 = boxes.unbind(-1)
    turns %= 4
    # the width of the image before each turn, undone last turn first; one turn maps
    # (x, y) -> (y, w_before - x), so its inverse maps (x', y') -> (w_before - y', x')
    widths = [w if k % 2 == 0 else h for k in range(turns)]
    for k in reversed(range(turns)):
        wb = widths[k]
        x1, y1, x2, y2 = wb - y2, x1, wb - y1, x2
    if flip:
        x1, x2 = w - x2, w - x1
    return torch.stack([x1, y1, x2, y2], -1)


def fuse_boxes(views: Sequence[dict[str, torch.Tensor]], *, iou_thr: float = 0.55,
               skip_thr: float = 0.0) -> dict[str, torch.Tensor]:
    """Weighted box fusion of several detection lists of one image (same pixel frame).

    Returns ``{"boxes", "scores", "labels"}`` sorted by score. A cluster's score is the mean
    of its members' scores times ``min(members, views) / views``: a box seen in one view of
    eight keeps an eighth of its score.
    """
    if not views:
        raise ConfigError("fuse_boxes needs at least one list of detections")
    n_views = len(views)
    boxes = torch.cat([v["boxes"].float() for v in views])
    scores = torch.cat([v["scores"].float() for v in views])
    labels = torch.cat([v["labels"] for v in views])
    keep = scores >= skip_thr
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    out_b, out_s, out_l = [], [], []
    for label in labels.unique().tolist():
        sel = labels == label
        b, s = boxes[sel], scores[sel]
        order = s.argsort(descending=True, stable=True)
        b, s = b[order], s[order]
        fused = torch.empty(0, 4)
        sums = torch.empty(0, 4)  # score-weighted coordinate sums per cluster
        weight = torch.empty(0)  # score sums per cluster
        count = torch.empty(0)
        for box, score in zip(b, s, strict=True):
            if len(fused):
                iou = box_iou(box[None], fused)[0]
                best = int(iou.argmax())
                if float(iou[best]) > iou_thr:
                    sums[best] += score * box
                    weight[best] += score
                    count[best] += 1
                    fused[best] = sums[best] / weight[best]
                    continue
            fused = torch.cat([fused, box[None]])
            sums = torch.cat([sums, (score * box)[None]])
            weight = torch.cat([weight, score[None]])
            count = torch.cat([count, torch.ones(1)])
        out_b.append(fused)
        out_s.append(weight / count * count.clamp(max=n_views) / n_views)
        out_l.append(torch.full((len(fused),), int(label), dtype=labels.dtype))
    if not out_b:
        return {"boxes": torch.empty(0, 4), "scores": torch.empty(0),
                "labels": torch.empty(0, dtype=labels.dtype)}
    fb, fs, fl = torch.cat(out_b), torch.cat(out_s), torch.cat(out_l)
    order = fs.argsort(descending=True, stable=True)
    return {"boxes": fb[order], "scores": fs[order], "labels": fl[order]}


def detect_tta(detect: Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]],
               image: torch.Tensor, *, views: str = "d8", iou_thr: float = 0.55,
               max_detections: int | None = None) -> dict[str, torch.Tensor]:
    """Detections of one image ``[3, H, W]`` fused over the views ``views`` (``VIEWS``).

    ``detect`` is the detector in eval mode (a list of images in, a list of
    ``{"boxes", "scores", "labels"}`` out), called once with all views of the image. The
    fused boxes are capped at ``max_detections``, by default the detector's own
    ``detections_per_img`` (:func:`max_detections_of`).
    """
    chosen = VIEWS[check_views(views)]
    size = (int(image.shape[-2]), int(image.shape[-1]))
    outs = detect([view_image(image, k, f) for k, f in chosen])
    mapped = [{**o, "boxes": boxes_to_input(o["boxes"], k, f, size)}
              for o, (k, f) in zip(outs, chosen, strict=True)]
    if len(mapped) == 1:
        return mapped[0]
    cap = max_detections_of(detect) if max_detections is None else max_detections
    return {k: v[:cap] for k, v in fuse_boxes(mapped, iou_thr=iou_thr).items()}


def detect_views(detect: Callable[[list[torch.Tensor]], list[dict[str, torch.Tensor]]],
                 images: list[torch.Tensor], views: str = "none") -> list[dict[str, torch.Tensor]]:
    """Detections of each of ``images``: one batched call without views (``none``), else
    :func:`detect_tta` per image (capped at the detector's own ``detections_per_img``)."""
    if check_views(views) == "none":
        return detect(images)
    return [detect_tta(detect, im, views=views) for im in images]


def max_detections_of(detector: object, default: int = 300) -> int:
    """The per-image detection cap of a torchvision detector (FCOS and RetinaNet keep it on
    the model, Faster R-CNN on its ROI heads); ``default`` for anything else."""
    for owner in (detector, getattr(detector, "roi_heads", None)):
        cap = getattr(owner, "detections_per_img", None)
        if isinstance(cap, int) and cap > 0:
            return cap
    return default

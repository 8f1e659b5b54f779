"""Box prediction with a detection model dir: images in, COCO JSON + CSV + drawn images out.

The model takes whole images (any size, RGB in [0, 1]) and returns boxes in the image's
own pixel coordinates, so no resizing or tiling happens here.

A model dir may record the score threshold it should be used at as ``model.json``'s
``score_threshold`` (e.g. the counting threshold chosen on training data); it is the default
of :class:`BoxPredictor`, ``visionforge predict`` and the server's ``/detect``, else 0.5.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionforge.errors import ConfigError
from visionforge.evaluation.detection import DEFAULT_SCORE_THRESHOLD, model_score_threshold
from visionforge.io import atomic_write_bytes, atomic_write_json, atomic_write_text

__all__ = ["BoxPredictor", "DEFAULT_SCORE_THRESHOLD", "draw_boxes", "model_score_threshold",
           "write_detections"]


class BoxPredictor:
    """Run a detection model dir on images.

    Args:
        model_dir: a model dir whose ``model.json`` says ``task: detection``.
        score_threshold: detections below this score are left out (default: the model
            dir's recorded ``score_threshold``, see :func:`model_score_threshold`).
        device: where to run.
        tta: test-time views (``none``, ``flips``, ``d8``; see
            :mod:`visionforge.models.box_tta`).
    """

    def __init__(self, model_dir: str | os.PathLike[str], *, score_threshold: float | None = None,
                 device: str = "cpu", tta: str = "none") -> None:
        from visionforge.models import load_model, read_model_meta
        from visionforge.models.box_tta import check_views

        self.meta = read_model_meta(model_dir)
        if self.meta.get("task") != "detection":
            raise ConfigError(f"{model_dir}: task is {self.meta.get('task')!r}, not detection")
        self.model = load_model(model_dir, device=device)
        self.device = device
        self.class_names = list(self.meta.get("class_names") or [])
        #: the threshold the model dir records (or the default): what callers start from
        self.default_score_threshold = model_score_threshold(
            self.meta, str(Path(model_dir) / "model.json"))
        self.score_threshold = float(self.default_score_threshold if score_threshold is None
                                     else score_threshold)
        self.tta = check_views(tta, f" ({model_dir})")
        self.task = "detection"
        self.backend = "torch"  # ONNX artifacts are traced at one size: served from PyTorch
        self.input_shape = tuple(self.meta.get("input_size") or (3, 0, 0))
        # one forward at a time on the shared eager model: the server's Grad-CAM route hooks
        # its layers, and must not catch (or be caught by) another request's forward
        self._lock = threading.Lock()

    @torch.no_grad()
    def predict(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Detections (``boxes`` xyxy, ``scores``, ``labels``) for float ``[3, H, W]`` images."""
        from visionforge.models.box_tta import detect_views

        with self._lock:
            out = detect_views(self.model, [im.to(self.device) for im in images], self.tta)
        keep = [d["scores"] >= self.score_threshold for d in out]
        return [{k: v[m].cpu() for k, v in d.items()} for d, m in zip(out, keep, strict=True)]

    def predict_files(self, files: Sequence[Path], batch_size: int = 4
                      ) -> list[tuple[Path, torch.Tensor, dict[str, torch.Tensor]]]:
        """``(file, image, detections)`` for every file."""
        from visionforge.data.images import load_image

        out = []
        for i in range(0, len(files), batch_size):
            chunk = list(files[i:i + batch_size])
            images = [load_image(f, channels=3) for f in chunk]
            out += list(zip(chunk, images, self.predict(images), strict=True))
        return out

    def label_name(self, label: int) -> str:
        """Class name of label ``1..K``."""
        return self.class_names[label - 1] if 0 < label <= len(self.class_names) else str(label)


def draw_boxes(image: torch.Tensor, det: dict[str, torch.Tensor], names: Any = None) -> np.ndarray:
    """``image`` as uint8 RGB with the boxes drawn (torchvision's ``draw_bounding_boxes``)."""
    from torchvision.utils import draw_bounding_boxes

    img = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    if not len(det["boxes"]):
        return img.permute(1, 2, 0).numpy()
    labels = [f"{names(int(lab)) if names else int(lab)} {s:.2f}"
              for lab, s in zip(det["labels"].tolist(), det["scores"].tolist(), strict=True)]
    drawn = draw_bounding_boxes(img, det["boxes"], labels=labels or None, colors="red", width=1)
    return drawn.permute(1, 2, 0).numpy()


def write_detections(pred: BoxPredictor, results: list[tuple[Path, torch.Tensor, dict]],
                     out: Path, *, draw: bool = True) -> dict[str, Path]:
    """Write ``detections.json`` (COCO results with images/categories), ``detections.csv``
    and, with ``draw``, ``<stem>_boxes.png`` per image; returns what was written."""
    from PIL import Image

    images, dets = [], []
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "x1", "y1", "x2", "y2", "score", "label", "class"])
    for i, (f, image, d) in enumerate(results, 1):
        images.append({"id": i, "file_name": str(f), "width": int(image.shape[-1]),
                       "height": int(image.shape[-2]), "count": len(d["scores"])})
        for box, s, lab in zip(d["boxes"].tolist(), d["scores"].tolist(), d["labels"].tolist(),
                               strict=True):
            dets.append({"image_id": i, "category_id": int(lab), "score": round(float(s), 6),
                         "bbox": [round(box[0], 3), round(box[1], 3),
                                  round(box[2] - box[0], 3), round(box[3] - box[1], 3)]})
            w.writerow([str(f), *(f"{v:.3f}" for v in box), f"{s:.6f}", int(lab),
                        pred.label_name(int(lab))])
        if draw:
            png = io.BytesIO()
            Image.fromarray(draw_boxes(image, d, pred.label_name)).save(png, format="PNG")
            atomic_write_bytes(out / f"{f.stem}_boxes.png", png.getvalue())
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(pred.class_names)]
    return {"json": atomic_write_json(out / "detections.json", {
                "images": images, "categories": cats, "annotations": dets,
                "score_threshold": pred.score_threshold, "tta": pred.tta}),
            "csv": atomic_write_text(out / "detections.csv", buf.getvalue())}

"""JSON routes behind the page's model list and "Try it" panel: model cards, segmentation
with the label map and colours in one answer, and Grad-CAM heatmaps (of a class, or of one
detector's box).

Uploads go through the API's own :class:`~visionforge.serve.handlers.Handlers` (same size,
type and pixel limits); the routes carry the API's key check.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from starlette.concurrency import run_in_threadpool

from visionforge.serve.deepzoom import png_bytes
from visionforge.serve.handlers import Handlers, describe_model
from visionforge.serve.registry import ModelStore, ServedModel

__all__ = ["predict_router", "class_colors", "model_entry"]

FileArg = Annotated[UploadFile, File(description="an image file")]
ModelQ = Annotated[str | None, Query(description="model name (default: the only one)")]
VersionQ = Annotated[str | None, Query(description="model version (default: latest)")]
JobQ = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$",
                                     description="id under which /ui/api/progress reports")]
TargetQ = Annotated[str | None, Query(description="class name or index (default: the prediction)")]
BoxQ = Annotated[int | None, Query(description="detectors: index of the detection to explain, "
                                   "best score first (default 0), as `visionforge explain box=I`")]
ScoreQ = Annotated[float | None, Query(ge=0.0, le=1.0, description="detectors: the lowest score "
                                       "counted (default: the model's, as /detect)")]


def class_colors(meta: dict[str, Any], names: list[str]) -> list[list[int]]:
    """``model.json``'s ``class_colors``, else the slide tools' default palette."""
    from visionforge.slides.segment import default_colors

    given = meta.get("class_colors")
    if isinstance(given, list) and len(given) == len(names):
        return [[int(v) for v in c[:3]] for c in given]
    colors = default_colors(names)
    if len(names) > 8:  # the slide palette has 8 colours: take 20 distinct ones from tab20
        from matplotlib import colormaps

        tab = colormaps["tab20"].colors
        colors = [c if c == [255, 255, 255] else [round(255 * v) for v in tab[i % 20]]
                  for i, c in enumerate(colors)]
    return colors


def model_entry(m: ServedModel, store: ModelStore) -> dict[str, Any]:
    """One model of the page's list: ``/models`` info plus card, colours and test metrics
    (a detector's ``score_threshold``, /detect's default, is where the page's slider starts)."""
    from visionforge.workflows.card import CARD_FILE, card_inputs, render_model_card
    from visionforge.workflows.summary import headline_metrics

    info = describe_model(m, store).model_dump()
    names = [str(c) for c in info.get("class_names") or []]
    card_file = m.path / CARD_FILE
    try:
        card = card_file.read_text(encoding="utf-8") if card_file.is_file() \
            else render_model_card(m.path)
        metrics = card_inputs(m.path)["metrics"]
    except Exception as exc:  # noqa: BLE001 - a damaged run dir must not hide the model
        card, metrics = f"(model card not available: {exc})", {}
    return {**info, "colors": class_colors(m.meta, names), "card": card,
            "split": metrics.get("split"), "metrics": headline_metrics(metrics)}


def _b64png(array: np.ndarray) -> str:
    return base64.b64encode(png_bytes(array)).decode("ascii")


#: overlap of the sliding window's tiles (``Predictor.predict_large``'s default)
OVERLAP = 0.25
Progress = Callable[[int, int], None]


def windowed_labels(pred: Any, image: np.ndarray, progress: Progress | None = None) -> np.ndarray:
    """``pred.predict_large(image)`` (same preprocessing, grid, blending and result), reporting
    ``progress(tiles done, tiles in all)`` as tile batches finish: ``predict_large`` has no
    progress hook, so the same public pieces are called here with a counting model function."""
    from visionforge.inference.sliding_window import sliding_window_inference, tile_starts

    x = pred.preprocess_rgb(image)[None]
    th, tw = (int(v) for v in pred.input_shape[1:])
    total = len(tile_starts(x.shape[2], th, OVERLAP)) * len(tile_starts(x.shape[3], tw, OVERLAP))
    done = 0
    if progress is not None:
        progress(0, total)

    def counted(tiles: np.ndarray) -> np.ndarray:
        nonlocal done
        out = pred.dense_logits(tiles)
        done += len(tiles)
        if progress is not None:
            progress(min(done, total), total)
        return out

    logits = sliding_window_inference(x, counted, (th, tw), overlap=OVERLAP, blend="gaussian",
                                      tile_batch=pred.batch_size)[0]
    return logits.argmax(0).astype(np.uint8 if logits.shape[0] <= 256 else np.int32)


def _segment(m: ServedModel, image: np.ndarray, progress: Progress | None = None
             ) -> tuple[np.ndarray, bool]:
    """Label map at the image's size; inputs not at the training size go through the sliding
    window at training resolution (as ``visionforge predict`` does), never resized."""
    pred = m.predictor
    if tuple(image.shape[:2]) != tuple(pred.input_shape[1:]):
        return windowed_labels(pred, image, progress), True
    out = pred.predict([image], layout="NHWC")
    labels = out["segmentation"] if isinstance(out, dict) else out
    return np.asarray(labels[0]), False


def _explain(m: ServedModel, image: np.ndarray, target: str | None) -> dict[str, Any]:
    """Grad-CAM of ``target`` (default: the predicted class) over the image, at its size."""
    import torch

    from visionforge.explain import Explainer, heatmaps
    from visionforge.explain.overlay import overlay_heatmap
    from visionforge.inference.preprocess import prepare_batch, to_samples
    from visionforge.slides.reader import resize_rgb

    pred = m.predictor
    names = [str(c) for c in pred.class_names or []]
    cls: int | None = None
    if target is not None:
        cls = int(target) if target.isdigit() else (names.index(target) if target in names else -1)
        if not 0 <= cls < max(1, len(names)):
            raise HTTPException(400, f"target={target!r} is neither a class index nor one of {names}")
    batch, _ = prepare_batch(to_samples([image], pred.meta, layout="NHWC"), pred.meta, resize=True)
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(pred.device)
    with pred._lock:  # the eager model is shared with the prediction routes
        result = Explainer(pred.model, ["grad_cam"]).explain(x, target_class=cls)
    maps = heatmaps(result)
    if "grad_cam" not in maps:
        reason = result.get("skipped", {}).get("grad_cam", "not applicable to this model")
        raise HTTPException(409, f"Grad-CAM is not available for model {m.name!r}: {reason}")
    heat = maps["grad_cam"][0].detach().cpu().numpy()
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    rgb = rgb[..., :3]
    if rgb.dtype != np.uint8:
        rgb = (255 * (rgb - rgb.min()) / max(1e-9, float(rgb.max() - rgb.min()))).astype(np.uint8)
    h, w = rgb.shape[:2]
    heat_img = resize_rgb(np.repeat((np.clip(heat, 0, 1) * 255).astype(np.uint8)[..., None], 3, 2),
                          (w, h))[..., 0].astype(np.float64) / 255
    k = int(result["target_class"][0])
    return {"method": "grad_cam", "target_class": k,
            "target_name": names[k] if k < len(names) else str(k),
            "overlay_png": _b64png(overlay_heatmap(rgb, heat_img, alpha=0.5))}


def _explain_box(m: ServedModel, image: np.ndarray, box: int, score: float | None
                 ) -> dict[str, Any]:
    """Grad-CAM of detection ``box`` (index among the boxes /detect returns at ``score``, best
    first) over the image, with the box, its score and class."""
    from visionforge.errors import DataError
    from visionforge.explain.base import NotApplicableError
    from visionforge.explain.detection import BoxGradCAM
    from visionforge.explain.overlay import overlay_heatmap
    from visionforge.serve.handlers import detector_input

    pred = m.predictor
    t = pred.default_score_threshold if score is None else score
    x = detector_input(image).to(pred.device)
    try:
        with pred._lock:  # the model is shared with /detect: the hooks must see this forward only
            # the boxes /detect returns at score t are the model's output down to t, in its
            # order: the index is checked among them in this same forward
            r = BoxGradCAM(pred.model).attribute(x, box=box, min_score=t)
    except DataError as exc:
        raise HTTPException(400, str(exc)) from None
    except NotApplicableError as exc:
        raise HTTPException(409, f"Grad-CAM is not available for model {m.name!r}: {exc}") from None
    return {"method": "grad_cam", "target_class": r.label, "target_name": pred.label_name(r.label),
            "overlay_png": _b64png(overlay_heatmap(x, r.heatmap, alpha=0.5)),
            "box_index": box, "box": [float(v) for v in r.box], "score": float(r.score),
            "score_threshold": t, "count": r.num_detections}


def predict_router(store: ModelStore, handlers: Handlers) -> APIRouter:
    """``/ui/api/models``, ``/ui/api/segment``, ``/ui/api/explain`` (auth added by the caller)."""
    router = APIRouter(prefix="/ui/api")

    @router.get("/models")
    def models() -> dict[str, Any]:
        return {"models": [model_entry(m, store) for m in store.all()]}

    jobs: dict[str, tuple[int, int]] = {}  # sliding-window progress of running requests

    @router.get("/progress/{job}")
    def progress(job: str) -> dict[str, int]:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", job) or job not in jobs:
            raise HTTPException(404, f"no running job {job!r}")
        done, total = jobs[job]
        return {"done": done, "total": total}

    @router.post("/segment")
    async def segment(file: FileArg, model: ModelQ = None, version: VersionQ = None,
                      job: JobQ = None) -> dict:
        m = store.get(model, version)
        if m.predictor.task not in ("segmentation", "multitask"):
            raise HTTPException(409, f"model {m.name!r} is a {m.predictor.task} model; use /predict")
        image = await handlers.read_upload(file)
        report = None
        if job is not None and len(jobs) < 1000:  # bounded: ids come from clients
            def report(done: int, total: int) -> None:
                jobs[job] = (done, total)
        try:
            labels, windowed = await run_in_threadpool(_segment, m, image, report)
        finally:
            jobs.pop(job or "", None)
        names = [str(c) for c in m.meta.get("segmentation_class_names") or m.predictor.class_names
                 or range(int(labels.max(initial=0)) + 1)]
        counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(names))
        return {"model": m.name, "version": m.version, "filename": file.filename,
                "height": int(labels.shape[0]), "width": int(labels.shape[1]),
                "class_names": names, "colors": class_colors(m.meta, names),
                "class_fractions": {n: float(c) / max(1, labels.size)
                                    for n, c in zip(names, counts[: len(names)])},
                "sliding_window": windowed, "tile": list(m.predictor.input_shape[1:]),
                "labels_png": _b64png(labels.astype(np.uint8))}

    @router.post("/explain")
    async def explain(file: FileArg, model: ModelQ = None, version: VersionQ = None,
                      target: TargetQ = None, box: BoxQ = None, score: ScoreQ = None) -> dict:
        m = store.get(model, version)
        task = m.predictor.task
        if task == "signal":
            raise HTTPException(409, f"model {m.name!r} takes signals; heatmaps are for images")
        if task == "detection" and target is not None:
            raise HTTPException(400, "target= does not apply to a detector: choose a detection "
                                "with box=I (0 = the highest score); its class is explained")
        if task != "detection" and (box is not None or score is not None):
            raise HTTPException(400, f"box= and score= apply to detectors; model {m.name!r} is "
                                f"a {task} model (use target=CLASS)")
        image = await handlers.read_upload(file)
        if task == "detection":
            return await run_in_threadpool(_explain_box, m, image, box or 0, score)
        return await run_in_threadpool(_explain, m, image, target)

    return router

"""What the prediction routes do: read uploads within the limits, predict, shape the response.

The routes in :mod:`visionforge.serve.app` only resolve the model and call these; the input
contract (value range, channel order, mean/std, interpolation, size) is applied by the
model's :class:`~visionforge.inference.Predictor`, as for every other caller.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import HTTPException, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from visionforge.models.contract import contract_from_meta
from visionforge.serve.images import decode_image
from visionforge.serve.registry import ModelStore, ServedModel
from visionforge.serve.schemas import (
    BatchPrediction,
    Box,
    Detections,
    ModelInfo,
    Prediction,
    Segmentation,
)

__all__ = ["Handlers", "describe_model", "detector_input"]


def describe_model(m: ServedModel, store: ModelStore) -> ModelInfo:
    """``/models`` entry: the full input contract, with defaults for older ``model.json`` files."""
    contract = contract_from_meta(m.meta)
    return ModelInfo(
        name=m.name,
        version=m.version,
        latest=store.latest(m.name) == m.version,
        task=m.predictor.task,
        class_names=m.predictor.class_names,
        input_size=list(m.predictor.input_shape),
        input_layout=contract.layout,
        preprocessing=contract.to_dict(),
        backend=m.predictor.backend,
        score_threshold=(m.predictor.default_score_threshold
                         if m.predictor.task == "detection" else None),
    )


def _class_names(m: ServedModel, n: int, key: str = "class_names") -> list[str]:
    names = m.meta.get(key) or m.predictor.class_names
    if names and len(names) == n:
        return [str(c) for c in names]
    return [str(i) for i in range(n)]


def _label_names(m: ServedModel, labels: np.ndarray, key: str) -> list[str]:
    """Class names of a label map: from model.json, else one per label value."""
    n = (
        int(m.meta.get("num_segmentation_classes") or 0)
        or len(m.meta.get(key) or m.predictor.class_names or [])
        or int(labels.max(initial=0)) + 1
    )
    return _class_names(m, n, key)


def _fractions(labels: np.ndarray, names: list[str]) -> dict[str, float]:
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(names))[: len(names)]
    total = max(1, int(labels.size))
    return {name: float(c) / total for name, c in zip(names, counts)}


def _item(out: Any, i: int) -> Any:
    """Sample ``i`` of a predictor output (an array, or a dict of arrays for multitask)."""
    return {k: v[i] for k, v in out.items()} if isinstance(out, dict) else out[i]


def to_prediction(m: ServedModel, out: Any, filename: str | None) -> Prediction:
    """One sample's outputs as a :class:`Prediction` (probabilities and/or label fractions)."""
    p = Prediction(model=m.name, version=m.version, task=m.predictor.task, filename=filename)
    outs = out if isinstance(out, dict) else {"out": out}
    for key, val in outs.items():
        val = np.asarray(val)
        if val.ndim == 1:  # class probabilities
            names_key = "classification_class_names" if key == "classification" else "class_names"
            names = _class_names(m, len(val), names_key)
            k = int(val.argmax())
            p.top_class, p.top_index = names[k], k
            p.probabilities = {n: float(v) for n, v in zip(names, val)}
        else:  # label map
            names_key = "segmentation_class_names" if key == "segmentation" else "class_names"
            names = _label_names(m, val, names_key)
            p.height, p.width = int(val.shape[0]), int(val.shape[1])
            p.class_fractions = _fractions(val, names)
    return p


def _label_png(m: ServedModel, labels: np.ndarray) -> Response:
    from PIL import Image

    buf = io.BytesIO()
    dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
    Image.fromarray(labels.astype(dtype)).save(buf, format="PNG")
    return Response(
        buf.getvalue(),
        media_type="image/png",
        headers={"X-Model": m.name, "X-Model-Version": m.version},
    )


@dataclass
class Handlers:
    """The prediction handlers of one app, with its upload, pixel and batch limits."""

    max_upload_bytes: int
    max_pixels: int
    max_batch_files: int
    #: dynamic batching (:class:`visionforge.serve.batching.Batchers`); None: one pass per request
    batchers: Any = None

    async def read_upload(self, file: UploadFile) -> np.ndarray:
        """The uploaded image as an array (413/415/400 for oversize, foreign or corrupt files)."""
        data = await file.read()
        if len(data) > self.max_upload_bytes:
            raise HTTPException(
                413, f"{file.filename}: upload of {len(data)} bytes is over {self.max_upload_bytes}"
            )
        return decode_image(data, file.filename, self.max_pixels)

    async def _predict(self, m: ServedModel, imgs: list[np.ndarray]) -> Any:
        if m.predictor.task == "detection":  # 409: valid request, boxes come from /detect
            raise HTTPException(409, f"model {m.name!r} is a detection model; use /detect")
        if self.batchers is not None:
            return await self.batchers.predict(m, imgs)
        return await run_in_threadpool(m.predictor.predict, imgs, layout="NHWC")

    async def predict_one(self, m: ServedModel, file: UploadFile) -> Prediction:
        out = await self._predict(m, [await self.read_upload(file)])
        return to_prediction(m, _item(out, 0), file.filename)

    async def predict_batch(self, m: ServedModel, files: list[UploadFile]) -> BatchPrediction:
        if len(files) > self.max_batch_files:
            raise HTTPException(
                413, f"{len(files)} files is over the batch limit of {self.max_batch_files}"
            )
        out = await self._predict(m, [await self.read_upload(f) for f in files])
        results = [to_prediction(m, _item(out, i), f.filename) for i, f in enumerate(files)]
        return BatchPrediction(model=m.name, version=m.version, results=results)

    async def segment(self, m: ServedModel, file: UploadFile, fmt: str) -> Response:
        if m.predictor.task not in ("segmentation", "multitask"):
            raise HTTPException(  # 409: valid request, but this model cannot segment
                409, f"model {m.name!r} is a {m.predictor.task} model; use /predict"
            )
        out = await self._predict(m, [await self.read_upload(file)])
        labels = np.asarray((out["segmentation"] if isinstance(out, dict) else out)[0])
        if fmt != "json":
            return _label_png(m, labels)
        key = "segmentation_class_names" if isinstance(out, dict) else "class_names"
        names = _label_names(m, labels, key)
        body = Segmentation(
            model=m.name,
            version=m.version,
            filename=file.filename,
            height=int(labels.shape[0]),
            width=int(labels.shape[1]),
            class_names=names,
            class_fractions=_fractions(labels, names),
        )
        return JSONResponse(body.model_dump())

    async def detect(self, m: ServedModel, file: UploadFile, score: float | None) -> Detections:
        """Boxes of one uploaded image with score >= ``score`` (None: the threshold the model
        dir records, else 0.5); 409 for a model that is not a detector."""
        if m.predictor.task != "detection":
            raise HTTPException(409, f"model {m.name!r} is a {m.predictor.task} model; use "
                                "/predict" + (" or /segment" if m.predictor.task != "classification"
                                              else ""))
        if score is None:
            score = m.predictor.default_score_threshold
        img = await self.read_upload(file)
        det = await run_in_threadpool(_detect_boxes, m, img, score)
        boxes = [Box(x1=b[0], y1=b[1], x2=b[2], y2=b[3], score=s, label=lab,
                     class_name=m.predictor.label_name(lab))
                 for b, s, lab in zip(det["boxes"].tolist(), det["scores"].tolist(),
                                      det["labels"].tolist())]
        return Detections(model=m.name, version=m.version, filename=file.filename,
                          height=int(img.shape[0]), width=int(img.shape[1]),
                          score_threshold=score, count=len(boxes), boxes=boxes)


def detector_input(img: np.ndarray) -> Any:
    """An ``HxW(xC)`` upload as the detector's input: a float ``[3, H, W]`` RGB tensor in [0, 1]
    (as the model's contract says)."""
    import torch

    arr = img if img.ndim == 3 else img[..., None]
    arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]
    scale = 255.0 if arr.dtype == np.uint8 else float(np.iinfo(arr.dtype).max) if np.issubdtype(
        arr.dtype, np.integer) else 1.0
    return torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32) / scale).permute(2, 0, 1)


def _detect_boxes(m: ServedModel, img: np.ndarray, score: float) -> dict[str, Any]:
    """The detector's ``boxes``/``scores``/``labels`` for an upload, score >= ``score`` (best
    first, the model's own order)."""
    det = m.predictor.predict([detector_input(img)])[0]
    keep = det["scores"] >= score
    return {k: v[keep] for k, v in det.items()}

"""Response bodies of the HTTP API (they shape the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "Health",
    "ModelInfo",
    "ModelList",
    "ModelVersions",
    "Prediction",
    "BatchPrediction",
    "Segmentation",
    "ErrorBody",
]


class ErrorBody(BaseModel):
    detail: Any = Field(description="why the request was refused")


class Health(BaseModel):
    status: str
    models: list[str]


class ModelInfo(BaseModel):
    name: str
    version: str
    latest: bool
    task: str
    class_names: list[str] | None
    input_size: list[int]
    input_layout: str
    preprocessing: dict[str, Any] | None
    backend: str
    score_threshold: float | None = Field(
        None, description="detection: the default score of /detect (model.json's "
        "score_threshold, else 0.5)")


class ModelList(BaseModel):
    models: list[ModelInfo]


class ModelVersions(BaseModel):
    name: str
    versions: list[str]
    latest: str


class Prediction(BaseModel):
    model: str
    version: str
    task: str
    filename: str | None = None
    top_class: str | None = Field(None, description="classification: most probable class")
    top_index: int | None = None
    probabilities: dict[str, float] | None = Field(None, description="classification: per class")
    height: int | None = None
    width: int | None = None
    class_fractions: dict[str, float] | None = Field(
        None, description="segmentation: fraction of pixels per class"
    )


class BatchPrediction(BaseModel):
    model: str
    version: str
    results: list[Prediction]


class Segmentation(BaseModel):
    model: str
    version: str
    filename: str | None = None
    height: int
    width: int
    class_names: list[str]
    class_fractions: dict[str, float]


class Box(BaseModel):
    """One detection: ``xyxy`` pixel box of the uploaded image, score, label and class name."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    label: int
    class_name: str


class Detections(BaseModel):
    model: str
    version: str
    filename: str | None = None
    height: int
    width: int
    score_threshold: float
    count: int
    boxes: list[Box]

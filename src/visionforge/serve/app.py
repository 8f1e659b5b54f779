"""FastAPI application serving one or more model dirs (several versions each).

Bad input never reaches the model as a 500: uploads over ``max_upload_bytes`` get 413
(checked while the body streams in), files that are not images in an allowed format
get 415, corrupt images 400, images over ``max_pixels`` 413 (checked from the header
before decoding: decompression bombs). With an API key (argument or
``VISIONFORGE_API_KEY``) every route but ``/health`` needs header ``X-API-Key``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.params import Depends as DependsParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from visionforge.errors import VisionforgeError
from visionforge.serve.handlers import Handlers, describe_model
from visionforge.serve.registry import ModelStore, ServedModel, discover
from visionforge.serve.schemas import (
    BatchPrediction,
    Detections,
    ErrorBody,
    Health,
    ModelInfo,
    ModelList,
    ModelVersions,
    Prediction,
    Segmentation,
)
from visionforge.serve.ui import add_ui

__all__ = ["create_app", "API_KEY_ENV", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_MAX_PIXELS"]

API_KEY_ENV = "VISIONFORGE_API_KEY"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
MAX_BATCH_FILES = 64

_ERR = {"model": ErrorBody}
INPUT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "corrupt or unusable image"},
    401: {**_ERR, "description": "missing or wrong API key"},
    404: {**_ERR, "description": "unknown model or version"},
    409: {
        **_ERR,
        "description": "several models are served and none was chosen (?model=), "
        "or the model cannot do this (segmenting with a classifier)",
    },
    413: {**_ERR, "description": "upload or image too large"},
    415: {**_ERR, "description": "not a supported image type"},
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: INPUT_ERRORS[401],
    404: INPUT_ERRORS[404],
}
SEGMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **INPUT_ERRORS,
    200: {
        "content": {
            "image/png": {},
            "application/json": {"schema": Segmentation.model_json_schema()},
        },
        "description": "label map PNG or JSON",
    },
}


class BodyLimitMiddleware:
    """413 (JSON body) for request bodies over ``limit`` bytes, counted as they stream in.

    FastAPI's own ``max_body_size`` answers a declared oversize body in plain text; this
    keeps every error of the API in one JSON shape. A declared ``Content-Length`` over the
    limit is refused before reading; a chunked body is cut off once it passes the limit.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, int(limit)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            msg = f"request body of {int(declared)} bytes is over the limit of {self.limit} bytes"
            await JSONResponse({"detail": msg}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(
                        413, f"request body is over the limit of {self.limit} bytes"
                    )
            return message

        await self.app(scope, limited_receive, send)


# Parameter types (module level: FastAPI resolves the string annotations in module globals).
# Media types an upload may carry, declared per multipart field so that schema-driven
# clients (and fuzzers such as schemathesis) send images rather than arbitrary bytes.
IMAGE_MEDIA_TYPES = "image/png, image/jpeg, image/tiff"


def _image_body(field: str) -> dict[str, Any]:
    """``openapi_extra`` declaring the image media types of the multipart field ``field``."""
    encoding = {field: {"contentType": IMAGE_MEDIA_TYPES}}
    return {"requestBody": {"content": {"multipart/form-data": {"encoding": encoding}}}}


FileArg = Annotated[UploadFile, File(description="an image file (PNG, JPEG, TIFF, BMP, WEBP, GIF)")]
FilesArg = Annotated[list[UploadFile], File(description="image files")]
ModelQ = Annotated[str | None, Query(description="model name (default: the only one)")]
VersionQ = Annotated[str | None, Query(description="model version (default: latest)")]
ScoreQ = Annotated[
    float | None, Query(ge=0.0, le=1.0, description="lowest detection score returned (0-1; "
                        "default: the score_threshold stored in the model's model.json, else 0.5)")
]
FormatQ = Annotated[
    str, Query(pattern="^(png|json)$", description="png label map or json fractions")
]
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="needed when the server has a key"
)
ApiKeyArg = Annotated[str | None, Depends(_KEY_HEADER)]


def _load_store(
    model_dirs: Iterable[str | os.PathLike[str]] | Mapping[str, Any],
    *,
    backend: str,
    device: str,
    batch_size: int,
) -> ModelStore:
    """A :class:`Predictor` for every model dir and version (each reads its model.json contract)."""
    from visionforge.inference import Predictor
    from visionforge.models import read_model_meta

    store = ModelStore()
    for name, version, path in discover(model_dirs):
        if read_model_meta(path).get("task") == "detection":  # boxes: the detector's own API
            from visionforge.inference.detection import BoxPredictor

            pred: Any = BoxPredictor(path, score_threshold=0.0,
                                     device="cpu" if device == "auto" else device)
        else:
            pred = Predictor(path, backend=backend, device=device, batch_size=batch_size)
        store.add(ServedModel(name, version, path, pred.meta, pred))
    return store


def _key_check(key: str | None) -> list[DependsParam]:
    """Route dependencies enforcing ``X-API-Key`` (none when the server has no key).

    Without a key the scheme stays out of the OpenAPI schema.
    """
    if key is None:
        return []

    def check_key(given: ApiKeyArg) -> None:
        if given is None or not secrets.compare_digest(given.encode(), key.encode()):
            raise HTTPException(
                401,
                "missing or wrong API key (header X-API-Key)",
                headers={"WWW-Authenticate": "APIKey"},
            )

    return [Depends(check_key)]


def _add_read_routes(app: FastAPI, store: ModelStore, auth: list[DependsParam]) -> None:
    """``/health``, ``/models``, ``/models/{name}``, ``/models/{name}/versions/{version}``."""

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", models=store.names())

    @app.get(
        "/models", response_model=ModelList, dependencies=auth, responses={401: INPUT_ERRORS[401]}
    )
    def list_models() -> ModelList:
        return ModelList(models=[describe_model(m, store) for m in store.all()])

    @app.get(
        "/models/{name}", response_model=ModelVersions, dependencies=auth, responses=READ_ERRORS
    )
    def model_versions(name: str) -> ModelVersions:
        m = store.get(name, None)
        return ModelVersions(
            name=m.name, versions=store.versions(m.name), latest=store.latest(m.name)
        )

    @app.get(
        "/models/{name}/versions/{version}",
        response_model=ModelInfo,
        dependencies=auth,
        responses=READ_ERRORS,
    )
    def model_info(name: str, version: str) -> ModelInfo:
        return describe_model(store.get(name, version), store)


def _model_resolvers(store: ModelStore) -> list[tuple[str, str | None, Callable[..., ServedModel]]]:
    """``(path prefix, operation-id tag, dependency)`` of the three ways to name a model."""

    def by_query(model: ModelQ = None, version: VersionQ = None) -> ServedModel:
        return store.get(model, version)

    def latest(name: str) -> ServedModel:
        return store.get(name, None)

    def versioned(name: str, version: str) -> ServedModel:
        return store.get(name, version)

    return [
        ("", None, by_query),
        ("/models/{name}", "latest", latest),
        ("/models/{name}/versions/{version}", "versioned", versioned),
    ]


def _add_predict_routes(
    app: FastAPI, store: ModelStore, handlers: Handlers, auth: list[DependsParam]
) -> None:
    """``/predict``, ``/predict/batch`` and ``/segment`` under each way of naming a model."""
    for prefix, tag, resolve in _model_resolvers(store):
        # The model is a dependency: resolved after the API key check, before the body is used.
        model_dep = Depends(resolve)

        async def predict(file: FileArg, m: ServedModel = model_dep) -> Prediction:
            return await handlers.predict_one(m, file)

        async def predict_batch(files: FilesArg, m: ServedModel = model_dep) -> BatchPrediction:
            return await handlers.predict_batch(m, files)

        async def segment(
            file: FileArg, format: FormatQ = "png", m: ServedModel = model_dep
        ) -> Response:
            return await handlers.segment(m, file, format)

        async def detect(
            file: FileArg, score: ScoreQ = None, m: ServedModel = model_dep
        ) -> Detections:
            return await handlers.detect(m, file, score)

        # Fields that do not apply to the task (a classifier's height/width) are left out.
        lean = {"response_model_exclude_none": True, "responses": INPUT_ERRORS}
        routes = (
            ("predict", predict, {"response_model": Prediction, **lean}),
            ("predict/batch", predict_batch, {"response_model": BatchPrediction, **lean}),
            ("segment", segment, {"response_class": Response, "responses": SEGMENT_RESPONSES}),
            ("detect", detect, {"response_model": Detections, "responses": INPUT_ERRORS}),
        )
        bodies = {"predict": "file", "predict/batch": "files", "segment": "file", "detect": "file"}
        for path, endpoint, kwargs in routes:
            op = path.replace("/", "_")
            app.add_api_route(
                f"{prefix}/{path}",
                endpoint,
                methods=["POST"],
                dependencies=auth,
                operation_id=f"{op}_{tag}" if tag else op,
                openapi_extra=_image_body(bodies[path]),
                **kwargs,
            )


def create_app(
    model_dirs: Iterable[str | os.PathLike[str]] | Mapping[str, Any],
    api_key: str | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    backend: str = "auto",
    device: str = "auto",
    batch_size: int = 8,
    max_batch_files: int = MAX_BATCH_FILES,
    ab: Mapping[str, Mapping[str, float]] | None = None,
    slides_dir: str | os.PathLike[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    batching: Any = None,
) -> FastAPI:
    """Build the FastAPI app serving ``model_dirs`` (see :func:`visionforge.serve.registry.discover`).

    Args:
        api_key: required ``X-API-Key`` (default: ``$VISIONFORGE_API_KEY``; none = open).
        max_upload_bytes, max_pixels, max_batch_files: request limits (413 beyond them).
        backend, device, batch_size: passed to each model's :class:`Predictor`.
        ab: A/B splits ``{model name: {version: weight}}`` (:mod:`visionforge.serve.ab`).
        slides_dir, project_dir: what the web page at ``/`` browses (``slides segment``
            output, runs); see :mod:`visionforge.serve.ui`.
        batching: a :class:`~visionforge.serve.batching.BatchSettings` (or its fields as a
            dict) to share forward passes between concurrent requests; None: off.
    """
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    store = _load_store(model_dirs, backend=backend, device=device, batch_size=batch_size)
    app = FastAPI(
        title="visionforge",
        version="1",
        description="Image and signal model inference. Send images as multipart file uploads.",
    )
    app.add_middleware(BodyLimitMiddleware, limit=max_upload_bytes)
    app.state.store = store

    @app.exception_handler(VisionforgeError)
    async def _user_error(request: Request, exc: VisionforgeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    auth = _key_check(key)
    handlers = Handlers(max_upload_bytes, max_pixels, max_batch_files)
    if batching is not None:
        from visionforge.serve.batching import Batchers, BatchSettings

        settings = batching if isinstance(batching, BatchSettings) else BatchSettings(**batching)
        handlers.batchers = Batchers(settings) if settings.enabled else None
    app.state.handlers = handlers
    _add_read_routes(app, store, auth)
    _add_predict_routes(app, store, handlers, auth)
    if ab:
        from visionforge.serve.ab import add_ab_routes

        add_ab_routes(app, store, handlers, auth, ab)
    add_ui(app, store, handlers, auth, slides_dir=slides_dir, project_dir=project_dir)
    return app

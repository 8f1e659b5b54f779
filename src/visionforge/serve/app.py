"""FastAPI application serving one or more model dirs (several versions each).

Bad input never reaches the model as a 500: uploads over ``max_upload_bytes`` get 413
(checked while the body streams in), files that are not images in an allowed format
get 415, corrupt images 400, images over ``max_pixels`` 413 (checked from the header
before decoding: decompression bombs). With an API key (argument or
``VISIONFORGE_API_KEY``) every route but ``/health`` needs header ``X-API-Key``.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from visionforge.errors import VisionforgeError
from visionforge.serve.images import decode_image
from visionforge.serve.registry import ModelStore, ServedModel, discover
from visionforge.serve.schemas import (
    BatchPrediction,
    ErrorBody,
    Health,
    ModelInfo,
    ModelList,
    ModelVersions,
    Prediction,
    Segmentation,
)

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
    413: {**_ERR, "description": "upload or image too large"},
    415: {**_ERR, "description": "not a supported image type"},
}
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: INPUT_ERRORS[401],
    404: INPUT_ERRORS[404],
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
FileArg = Annotated[UploadFile, File(description="an image file (PNG, JPEG, TIFF, BMP, WEBP, GIF)")]
FilesArg = Annotated[list[UploadFile], File(description="image files")]
ModelQ = Annotated[str | None, Query(description="model name (default: the only one)")]
VersionQ = Annotated[str | None, Query(description="model version (default: latest)")]
FormatQ = Annotated[
    str, Query(pattern="^(png|json)$", description="png label map or json fractions")
]
_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="needed when the server has a key"
)
ApiKeyArg = Annotated[str | None, Depends(_KEY_HEADER)]


def _info(m: ServedModel, store: ModelStore) -> ModelInfo:
    meta = m.meta
    return ModelInfo(
        name=m.name,
        version=m.version,
        latest=store.latest(m.name) == m.version,
        task=m.predictor.task,
        class_names=m.predictor.class_names,
        input_size=list(m.predictor.input_shape),
        input_layout=meta.get("input_layout", "NCHW"),
        preprocessing=meta.get("preprocessing"),
        backend=m.predictor.backend,
    )


def _class_names(m: ServedModel, n: int, key: str = "class_names") -> list[str]:
    names = m.meta.get(key) or m.predictor.class_names
    if names and len(names) == n:
        return [str(c) for c in names]
    return [str(i) for i in range(n)]


def _fractions(labels: np.ndarray, names: list[str]) -> dict[str, float]:
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=len(names))[: len(names)]
    total = max(1, int(labels.size))
    return {name: float(c) / total for name, c in zip(names, counts)}


def _to_prediction(m: ServedModel, out: Any, filename: str | None) -> Prediction:
    p = Prediction(model=m.name, version=m.version, task=m.predictor.task, filename=filename)
    outs = out if isinstance(out, dict) else {"out": out}
    for key, val in outs.items():
        val = np.asarray(val)
        if val.ndim == 1:  # class probabilities
            names = _class_names(
                m,
                len(val),
                "classification_class_names" if key == "classification" else "class_names",
            )
            k = int(val.argmax())
            p.top_class, p.top_index = names[k], k
            p.probabilities = {n: float(v) for n, v in zip(names, val)}
        else:  # label map
            n_seg = int(m.meta.get("num_segmentation_classes") or 0)
            names_key = "segmentation_class_names" if key == "segmentation" else "class_names"
            n = (
                n_seg
                or len(m.meta.get(names_key) or m.predictor.class_names or [])
                or int(val.max()) + 1
            )
            names = _class_names(m, n, names_key)
            p.height, p.width = int(val.shape[0]), int(val.shape[1])
            p.class_fractions = _fractions(val, names)
    return p


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
) -> FastAPI:
    """Build the FastAPI app serving ``model_dirs`` (see :func:`visionforge.serve.registry.discover`)."""
    from visionforge.inference import Predictor

    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
    store = ModelStore()
    for name, version, path in discover(model_dirs):
        pred = Predictor(path, backend=backend, device=device, batch_size=batch_size)
        store.add(ServedModel(name, version, path, pred.meta, pred))

    app = FastAPI(
        title="visionforge",
        version="1",
        description="Image and signal model inference. Send images as multipart file uploads.",
    )
    app.add_middleware(BodyLimitMiddleware, limit=max_upload_bytes)
    app.state.store = store

    def check_key(given: ApiKeyArg) -> None:
        if key is None:
            return
        if given is None or not secrets.compare_digest(given.encode(), key.encode()):
            raise HTTPException(
                401,
                "missing or wrong API key (header X-API-Key)",
                headers={"WWW-Authenticate": "APIKey"},
            )

    # The key scheme appears in the OpenAPI schema only when a key is required.
    auth = [Depends(check_key)] if key is not None else []

    @app.exception_handler(VisionforgeError)
    async def _user_error(request: Request, exc: VisionforgeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def read_upload(file: UploadFile) -> np.ndarray:
        data = await file.read()
        if len(data) > max_upload_bytes:
            raise HTTPException(
                413, f"{file.filename}: upload of {len(data)} bytes is over {max_upload_bytes}"
            )
        return decode_image(data, file.filename, max_pixels)

    async def predict_one(m: ServedModel, file: UploadFile) -> Prediction:
        img = await read_upload(file)
        out = await run_in_threadpool(m.predictor.predict, [img], layout="NHWC")
        first = {k: v[0] for k, v in out.items()} if isinstance(out, dict) else out[0]
        return _to_prediction(m, first, file.filename)

    async def predict_batch(m: ServedModel, files: list[UploadFile]) -> BatchPrediction:
        if len(files) > max_batch_files:
            raise HTTPException(
                413, f"{len(files)} files is over the batch limit of {max_batch_files}"
            )
        imgs = [await read_upload(f) for f in files]
        out = await run_in_threadpool(m.predictor.predict, imgs, layout="NHWC")
        results = []
        for i, f in enumerate(files):
            item = {k: v[i] for k, v in out.items()} if isinstance(out, dict) else out[i]
            results.append(_to_prediction(m, item, f.filename))
        return BatchPrediction(model=m.name, version=m.version, results=results)

    async def segment(m: ServedModel, file: UploadFile, fmt: str) -> Response:
        if m.predictor.task not in ("segmentation", "multitask"):
            raise HTTPException(
                400, f"model {m.name!r} is a {m.predictor.task} model; use /predict"
            )
        img = await read_upload(file)
        out = await run_in_threadpool(m.predictor.predict, [img], layout="NHWC")
        labels = np.asarray((out["segmentation"] if isinstance(out, dict) else out)[0])
        if fmt == "json":
            key_names = "segmentation_class_names" if isinstance(out, dict) else "class_names"
            n = len(m.meta.get(key_names) or m.predictor.class_names or []) or int(labels.max()) + 1
            names = _class_names(m, n, key_names)
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
        from PIL import Image

        buf = io.BytesIO()
        pil = Image.fromarray(
            labels.astype(np.uint8) if labels.max(initial=0) < 256 else labels.astype(np.uint16)
        )
        pil.save(buf, format="PNG")
        return Response(
            buf.getvalue(),
            media_type="image/png",
            headers={"X-Model": m.name, "X-Model-Version": m.version},
        )

    seg_responses = {
        **INPUT_ERRORS,
        200: {
            "content": {
                "image/png": {},
                "application/json": {"schema": Segmentation.model_json_schema()},
            },
            "description": "label map PNG or JSON",
        },
    }

    @app.get("/health", response_model=Health)
    def health() -> Health:
        return Health(status="ok", models=store.names())

    @app.get(
        "/models", response_model=ModelList, dependencies=auth, responses={401: INPUT_ERRORS[401]}
    )
    def list_models() -> ModelList:
        return ModelList(models=[_info(m, store) for m in store.all()])

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
        return _info(store.get(name, version), store)

    # -- top-level routes (?model=&version=) -------------------------------------------
    @app.post("/predict", response_model=Prediction, dependencies=auth, responses=INPUT_ERRORS)
    async def predict(file: FileArg, model: ModelQ = None, version: VersionQ = None) -> Prediction:
        return await predict_one(store.get(model, version), file)

    @app.post(
        "/predict/batch", response_model=BatchPrediction, dependencies=auth, responses=INPUT_ERRORS
    )
    async def predict_many(
        files: FilesArg, model: ModelQ = None, version: VersionQ = None
    ) -> BatchPrediction:
        return await predict_batch(store.get(model, version), files)

    @app.post("/segment", dependencies=auth, responses=seg_responses, response_class=Response)
    async def segment_route(
        file: FileArg, model: ModelQ = None, version: VersionQ = None, format: FormatQ = "png"
    ) -> Response:
        return await segment(store.get(model, version), file, format)

    # -- per-model routes (latest or a given version) ----------------------------------
    for prefix in ("/models/{name}", "/models/{name}/versions/{version}"):
        versioned = "{version}" in prefix

        def _resolve(name: str, version: str | None, _v: bool = versioned) -> ServedModel:
            return store.get(name, version if _v else None)

        if versioned:

            async def p1(name: str, version: str, file: FileArg) -> Prediction:
                return await predict_one(_resolve(name, version), file)

            async def pb(name: str, version: str, files: FilesArg) -> BatchPrediction:
                return await predict_batch(_resolve(name, version), files)

            async def sg(
                name: str, version: str, file: FileArg, format: FormatQ = "png"
            ) -> Response:
                return await segment(_resolve(name, version), file, format)
        else:

            async def p1(name: str, file: FileArg) -> Prediction:  # type: ignore[misc]
                return await predict_one(_resolve(name, None), file)

            async def pb(name: str, files: FilesArg) -> BatchPrediction:  # type: ignore[misc]
                return await predict_batch(_resolve(name, None), files)

            async def sg(name: str, file: FileArg, format: FormatQ = "png") -> Response:  # type: ignore[misc]
                return await segment(_resolve(name, None), file, format)

        tag = "versioned" if versioned else "latest"
        app.add_api_route(
            f"{prefix}/predict",
            p1,
            methods=["POST"],
            response_model=Prediction,
            dependencies=auth,
            responses=INPUT_ERRORS,
            operation_id=f"predict_{tag}",
        )
        app.add_api_route(
            f"{prefix}/predict/batch",
            pb,
            methods=["POST"],
            response_model=BatchPrediction,
            dependencies=auth,
            responses=INPUT_ERRORS,
            operation_id=f"predict_batch_{tag}",
        )
        app.add_api_route(
            f"{prefix}/segment",
            sg,
            methods=["POST"],
            response_class=Response,
            dependencies=auth,
            responses=seg_responses,
            operation_id=f"segment_{tag}",
        )
    return app

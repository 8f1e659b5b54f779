"""``/detect``: boxes as JSON, the score filter, and the same input validation as /predict."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from visionforge.serve import create_app


def _png(h=40, w=48, mode="RGB") -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(detector_dir, classifier_dir):
    app = create_app({"cells": detector_dir, "digits": classifier_dir}, backend="torch",
                     max_upload_bytes=200_000, max_pixels=1_000_000)
    return TestClient(app)


def test_detect_returns_boxes_inside_the_image(client):
    r = client.post("/detect?model=cells&score=0", files={"file": ("a.png", _png(), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "cells" and (body["height"], body["width"]) == (40, 48)
    assert body["count"] == len(body["boxes"]) > 0
    for b in body["boxes"]:
        assert 0 <= b["x1"] <= b["x2"] <= 48 and 0 <= b["y1"] <= b["y2"] <= 40
        assert b["class_name"] in ("cell", "debris") and b["score"] >= 0
    top = max(b["score"] for b in body["boxes"])
    r2 = client.post(f"/models/cells/detect?score={top}",
                     files={"file": ("a.png", _png(), "image/png")})
    assert r2.status_code == 200 and all(b["score"] >= top for b in r2.json()["boxes"])
    grey = client.post("/detect?model=cells", files={"file": ("g.png", _png(mode="L"), "image/png")})
    assert grey.status_code == 200


def test_detect_validates_inputs(client):
    files = {"file": ("a.txt", b"not an image", "text/plain")}
    assert client.post("/detect?model=cells", files=files).status_code == 415
    assert client.post("/detect?model=cells&score=2",
                       files={"file": ("a.png", _png(), "image/png")}).status_code == 422
    assert client.post("/detect?model=cells").status_code == 422
    big = {"file": ("b.png", b"\0" * 300_000, "image/png")}
    assert client.post("/detect?model=cells", files=big).status_code == 413


def test_wrong_task_is_409(client):
    png = {"file": ("a.png", _png(), "image/png")}
    assert client.post("/detect?model=digits", files=png).status_code == 409
    assert client.post("/predict?model=cells", files=png).status_code == 409
    assert client.get("/models").status_code == 200


def test_detect_defaults_to_the_stored_score_threshold(detector_dir, tmp_path):
    import shutil

    from visionforge.models.model_dir import update_model_meta

    stored = shutil.copytree(detector_dir, tmp_path / "cells")
    update_model_meta(stored, score_threshold=0.0)
    client = TestClient(create_app({"cells": stored}, backend="torch"))
    png = {"file": ("a.png", _png(), "image/png")}
    body = client.post("/detect", files=png).json()
    assert body["score_threshold"] == 0.0 and body["count"] > 0
    update_model_meta(stored, score_threshold=1.0)
    body = TestClient(create_app({"cells": stored}, backend="torch")).post("/detect",
                                                                          files=png).json()
    assert body["score_threshold"] == 1.0 and all(b["score"] >= 1.0 for b in body["boxes"])

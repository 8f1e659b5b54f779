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


def _with_threshold(src, dst, value):
    """A copy of the model dir ``src`` whose model.json records ``score_threshold=value``."""
    import json
    import shutil

    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    (dst / "model.json").write_text(json.dumps({**meta, "score_threshold": value}))
    return dst


def test_default_score_is_the_models_recorded_threshold(client, detector_dir, tmp_path):
    png = {"file": ("a.png", _png(), "image/png")}
    plain = client.post("/detect?model=cells", files=png).json()
    assert plain["score_threshold"] == 0.5  # nothing recorded: the old default
    scores = sorted(b["score"] for b in client.post("/detect?model=cells&score=0",
                                                    files=png).json()["boxes"])
    recorded = (scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2  # between two boxes
    tuned = _with_threshold(detector_dir, tmp_path / "tuned", recorded)
    c = TestClient(create_app({"tuned": tuned}, backend="torch"))
    body = c.post("/detect", files=png).json()
    assert body["score_threshold"] == pytest.approx(recorded)
    assert body["count"] == sum(s >= recorded for s in scores) == len(scores) - len(scores) // 2
    assert c.post("/detect?score=0", files=png).json()["count"] == len(scores)  # explicit wins
    ui = c.get("/ui/api/models").json()["models"][0]  # the page's slider starts there
    assert ui["task"] == "detection" and ui["score_threshold"] == pytest.approx(recorded)
    assert ui["class_names"] == ["cell", "debris"] and len(ui["colors"]) == 2


@pytest.mark.parametrize("bad", [1.5, "high", True])
def test_bad_recorded_threshold_stops_the_server(detector_dir, tmp_path, bad):
    from visionforge.errors import ConfigError

    broken = _with_threshold(detector_dir, tmp_path / "broken", bad)
    with pytest.raises(ConfigError, match=r"broken/model.json: score_threshold=.* not a number"):
        create_app({"broken": broken}, backend="torch")


def test_box_predictor_default_threshold(detector_dir, tmp_path):
    from visionforge.inference.detection import DEFAULT_SCORE_THRESHOLD, BoxPredictor

    assert BoxPredictor(detector_dir).score_threshold == DEFAULT_SCORE_THRESHOLD
    tuned = _with_threshold(detector_dir, tmp_path / "tuned", 0.25)
    assert BoxPredictor(tuned).score_threshold == 0.25
    assert BoxPredictor(tuned, score_threshold=0.0).default_score_threshold == 0.25


def test_predict_cli_uses_the_recorded_threshold(detector_dir, tmp_path):
    import json

    from visionforge.cli.main import main

    tuned = _with_threshold(detector_dir, tmp_path / "tuned", 0.25)
    (tmp_path / "a.png").write_bytes(_png())
    assert main(["predict", str(tuned), str(tmp_path / "a.png"), f"out={tmp_path / 'p'}"]) == 0
    assert json.loads((tmp_path / "p" / "detections.json").read_text())["score_threshold"] == 0.25
    assert main(["predict", str(tuned), str(tmp_path / "a.png"), f"out={tmp_path / 'q'}",
                 "score=0.1"]) == 0
    assert json.loads((tmp_path / "q" / "detections.json").read_text())["score_threshold"] == 0.1


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


def _overlay(body) -> Image.Image:
    import base64

    return Image.open(io.BytesIO(base64.b64decode(body["overlay_png"])))


def test_ui_explain_box_is_that_detection_of_detect(client, detector_dir, tmp_path):
    png = {"file": ("a.png", _png(), "image/png")}
    boxes = client.post("/detect?model=cells&score=0", files=png).json()["boxes"]
    n = len(boxes)
    for i in (0, n - 1):  # the best and the last box /detect lists at score=0
        r = client.post(f"/ui/api/explain?model=cells&box={i}&score=0", files=png)
        assert r.status_code == 200, r.text
        body = r.json()
        b = boxes[i]
        assert body["box_index"] == i and body["count"] == n and body["score_threshold"] == 0
        assert body["score"] == pytest.approx(b["score"], abs=1e-6)
        assert body["box"] == pytest.approx([b["x1"], b["y1"], b["x2"], b["y2"]], abs=1e-4)
        assert body["target_name"] == b["class_name"] and body["target_class"] == b["label"]
        assert body["method"] == "grad_cam" and _overlay(body).size == (48, 40)
    for bad in (n, -1):
        r = client.post(f"/ui/api/explain?model=cells&box={bad}&score=0", files=png)
        assert r.status_code == 400
        assert f"box={bad}" in r.json()["detail"] and f"box=0..{n - 1}" in r.json()["detail"]
    # no score=: the model's threshold, as /detect (0.5 here: the untrained head scores ~0.08)
    r = client.post("/ui/api/explain?model=cells", files=png)
    assert r.status_code == 400 and "0 detection(s) with score >= 0.5" in r.json()["detail"]
    scores = sorted((b["score"] for b in boxes), reverse=True)
    tuned = _with_threshold(detector_dir, tmp_path / "tuned", (scores[2] + scores[3]) / 2)
    c = TestClient(create_app({"tuned": tuned}, backend="torch"))
    assert c.post("/ui/api/explain?box=2", files=png).json()["score"] == pytest.approx(scores[2])
    r = c.post("/ui/api/explain?box=3", files=png)
    assert r.status_code == 400 and "box=0..2" in r.json()["detail"]
    assert c.get("/models").json()["models"][0]["score_threshold"] == pytest.approx(
        (scores[2] + scores[3]) / 2)  # the public listing says which threshold /detect uses


def test_ui_explain_keys_follow_the_task(client):
    png = {"file": ("a.png", _png(), "image/png")}
    r = client.post("/ui/api/explain?model=cells&target=cell", files=png)
    assert r.status_code == 400 and "box=I" in r.json()["detail"]
    r = client.post("/ui/api/explain?model=digits&box=0", files=png)
    assert r.status_code == 400 and "target=CLASS" in r.json()["detail"]
    r = client.post("/ui/api/explain?model=digits", files=png)  # a classifier: as before
    assert r.status_code == 200 and "box" not in r.json() and r.json()["target_name"]
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed["cells"]["score_threshold"] == 0.5 and listed["digits"]["score_threshold"] is None

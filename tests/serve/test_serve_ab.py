"""A/B serving: weighted and sticky traffic split over two versions, per-version metrics."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from visionforge.errors import ConfigError
from visionforge.serve import create_app
from visionforge.serve.ab import parse_ab


def _png(seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """digits/1 and digits/2: two small_cnn classifiers with different weights."""
    from visionforge.models import create_model
    from visionforge.models.model_dir import save_model_dir

    root = tmp_path_factory.mktemp("ab") / "digits"
    for seed, v in ((0, "1"), (1, "2")):
        torch.manual_seed(seed)
        save_model_dir(create_model("small_cnn", num_classes=3, width=8, depth=2).eval(),
                       root / v, task="classification", class_names=["a", "b", "c"],
                       input_size=[3, 16, 16],
                       preprocessing={"input_range": [0, 1], "mean": None, "std": None})
    return root


def test_split_follows_weights_and_reports_per_version(versions):
    app = create_app([versions], backend="torch", ab={"digits": {"1": 0.75, "2": 0.25}})
    app.state.ab["digits"]._rng.seed(0)
    client = TestClient(app)
    answered = {"1": 0, "2": 0}
    ids = []
    for i in range(80):
        r = client.post("/ab/digits/predict", files={"file": ("x.png", _png(i), "image/png")})
        assert r.status_code == 200
        body = r.json()
        assert r.headers["X-Model-Version"] == body["version"]
        answered[body["version"]] += 1
        ids.append((body["request_id"], body["top_class"]))
    assert 45 <= answered["1"] <= 75 and answered["1"] + answered["2"] == 80
    # feedback: the label equals the prediction for the first 10 requests, never after
    for k, (rid, top) in enumerate(ids[:20]):
        label = top if k < 10 else "not-a-class"
        assert client.post("/ab/digits/feedback", params={"request_id": rid, "label": label}
                           ).json()["correct"] is (k < 10)
    rep = client.get("/ab/digits").json()["versions"]
    assert {v: rep[v]["requests"] for v in rep} == answered
    assert rep["1"]["weight"] == 0.75 and rep["1"]["share"] == answered["1"] / 80
    assert sum(rep["1"]["predicted"].values()) == answered["1"]
    assert rep["1"]["latency_ms_p95"] >= rep["1"]["latency_ms_p50"] > 0
    assert 0 < rep["2"]["mean_top_probability"] <= 1
    assert rep["1"]["feedback"] + rep["2"]["feedback"] == 20
    correct = sum((rep[v]["accuracy"] or 0) * rep[v]["feedback"] for v in rep)
    assert correct == pytest.approx(10)
    # a rated request cannot be rated twice
    assert client.post("/ab/digits/feedback", params={"request_id": ids[0][0], "label": "a"}
                       ).status_code == 404


def test_sticky_client_stays_on_one_version(versions):
    client = TestClient(create_app([versions], backend="torch",
                                   ab={"digits": {"1": 0.5, "2": 0.5}}))
    seen = {}
    for cid in ("alice", "bob", "carol", "dave", "erin", "frank"):
        got = {client.post("/ab/digits/predict", headers={"X-Client-Id": cid},
                           files={"file": ("x.png", _png(k), "image/png")}).json()["version"]
               for k in range(3)}
        assert len(got) == 1
        seen[cid] = got.pop()
    assert set(seen.values()) == {"1", "2"}  # six clients land on both versions


def test_bad_splits_are_named(versions):
    with pytest.raises(ConfigError, match="versions \\['9'\\]"):
        create_app([versions], backend="torch", ab={"digits": {"1": 1, "9": 1}})
    with pytest.raises(ConfigError, match="no such model"):
        create_app([versions], backend="torch", ab={"other": {"1": 1, "2": 1}})
    assert parse_ab("digits=1:90,2:10") == ("digits", {"1": 90.0, "2": 10.0})
    with pytest.raises(ConfigError, match="NAME=VERSION:WEIGHT"):
        parse_ab("digits=1")
    client = TestClient(create_app([versions], backend="torch", ab={"digits": {"1": 1, "2": 1}}))
    assert client.get("/ab/nope").status_code == 404
    assert client.post("/ab/digits/predict", files={"file": ("x.txt", b"hello", "text/plain")}
                       ).status_code in (400, 415)
    assert client.get("/ab/digits").json()["versions"]["1"]["errors"] + \
        client.get("/ab/digits").json()["versions"]["2"]["errors"] == 1

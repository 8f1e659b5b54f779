"""HTTP API: every endpoint, hostile inputs, auth, and schemathesis against the OpenAPI schema."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from visionforge.serve import create_app


def _png(h=24, w=20, seed=0, mode="RGB", flat=False) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    if flat:  # compresses to a few KB however large
        arr[:] = 128
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _bomb_png(width=100_000, height=100_000) -> bytes:
    """A tiny PNG whose header claims a huge image (decompression bomb)."""
    data = bytearray(_png(1, 1))
    ihdr = 8 + 8  # signature, then length+type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12 : ihdr + 13])) & 0xFFFFFFFF
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


@pytest.fixture(scope="module")
def versions_root(tmp_path_factory, classifier_dir):
    import shutil

    root = tmp_path_factory.mktemp("served") / "digits"
    for v in ("1", "2"):
        shutil.copytree(classifier_dir, root / v, ignore=shutil.ignore_patterns(".cache"))
    return root


@pytest.fixture(scope="module")
def client(versions_root, seg_dir):
    app = create_app(
        [versions_root, f"tissue={seg_dir}"],
        backend="torch",
        max_upload_bytes=200_000,
        max_pixels=1_000_000,
    )
    return TestClient(app)


def test_health_and_models(client):
    assert client.get("/health").json() == {"status": "ok", "models": ["digits", "tissue"]}
    models = client.get("/models").json()["models"]
    assert [(m["name"], m["version"], m["latest"]) for m in models] == [
        ("digits", "1", False),
        ("digits", "2", True),
        ("tissue", "1", True),
    ]
    assert models[0]["class_names"] == ["cat", "dog", "bird"] and models[0]["input_size"] == [
        3,
        32,
        32,
    ]
    assert client.get("/models/digits").json() == {
        "name": "digits",
        "versions": ["1", "2"],
        "latest": "2",
    }
    assert client.get("/models/digits/versions/1").json()["version"] == "1"
    assert client.get("/models/nope").status_code == 404
    assert client.get("/models/digits/versions/9").status_code == 404


def test_predict_endpoints(client):
    png = _png()
    r = client.post("/predict?model=digits", files={"file": ("a.png", png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == "2" and body["top_class"] in ("cat", "dog", "bird")
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-4
    r1 = client.post(
        "/models/digits/versions/1/predict", files={"file": ("a.png", png, "image/png")}
    )
    assert r1.status_code == 200 and r1.json()["version"] == "1"
    assert r1.json()["probabilities"] == pytest.approx(
        body["probabilities"], abs=1e-6
    )  # same weights
    jpg = io.BytesIO()
    Image.open(io.BytesIO(png)).save(jpg, format="JPEG")
    assert (
        client.post("/models/digits/predict", files={"file": ("a.jpg", jpg.getvalue())}).status_code
        == 200
    )
    files = [("files", (f"{i}.png", _png(seed=i), "image/png")) for i in range(3)]
    rb = client.post("/predict/batch?model=digits", files=files)
    assert rb.status_code == 200 and [x["filename"] for x in rb.json()["results"]] == [
        "0.png",
        "1.png",
        "2.png",
    ]
    assert (
        client.post("/predict", files={"file": ("a.png", png)}).status_code == 409
    )  # 2 models: which?


def test_segment_png_and_json(client):
    png = _png(30, 26)
    r = client.post("/segment?model=tissue", files={"file": ("s.png", png, "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    labels = np.asarray(Image.open(io.BytesIO(r.content)))
    assert labels.shape == (30, 26) and labels.max() < 3
    j = client.post("/models/tissue/segment?format=json", files={"file": ("s.png", png)}).json()
    assert j["class_names"] == ["background", "tissue", "fat"]
    assert abs(sum(j["class_fractions"].values()) - 1) < 1e-6
    counts = np.bincount(labels.ravel(), minlength=3) / labels.size
    assert list(j["class_fractions"].values()) == pytest.approx(counts.tolist())
    p = client.post("/predict?model=tissue", files={"file": ("s.png", png)}).json()
    assert p["class_fractions"] and p["height"] == 30
    assert client.post("/segment?model=digits", files={"file": ("s.png", png)}).status_code == 409


@pytest.mark.parametrize(
    "payload,status",
    [
        (b"", 400),
        (b"this is not an image at all", 415),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415),  # EPS would run Ghostscript
        (_png()[:60], 400),  # truncated PNG
        (_bomb_png(), 413),
        (_png(1200, 1000, flat=True), 413),  # real image over the 1,000,000-pixel limit
        (b"\x89PNG" + b"\0" * 300_000, 413),  # upload over the byte limit
    ],
    ids=["empty", "text", "eps", "truncated", "bomb-header", "too-many-pixels", "too-many-bytes"],
)
def test_bad_inputs_never_500(client, payload, status):
    for url in ("/predict?model=digits", "/segment?model=tissue"):
        r = client.post(url, files={"file": ("x.png", payload, "image/png")})
        assert r.status_code == status, (url, r.status_code, r.text)
        assert r.json()["detail"]
    rb = client.post(
        "/predict/batch?model=digits",
        files=[("files", ("ok.png", _png())), ("files", ("x.png", payload))],
    )
    assert rb.status_code == status


def test_streamed_body_over_limit(client):
    def chunks():
        for _ in range(30):
            yield b"x" * 10_000

    r = client.post(
        "/predict?model=digits",
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=abc"},
    )
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_missing_file_and_bad_params(client):
    assert client.post("/predict?model=digits").status_code == 422
    r = client.post("/segment?model=tissue&format=gif", files={"file": ("s.png", _png())})
    assert r.status_code == 422


def test_api_key(seg_dir, monkeypatch):
    app = create_app([seg_dir], api_key="s3cret", backend="torch")
    c = TestClient(app)
    png = {"file": ("s.png", _png())}
    assert c.get("/health").status_code == 200  # liveness needs no key
    assert c.get("/models").status_code == 401
    assert c.post("/segment", files=png).status_code == 401
    assert c.post("/segment", files=png, headers={"X-API-Key": "wrong"}).status_code == 401
    assert c.post("/segment", files=png, headers={"X-API-Key": "s3cret"}).status_code == 200
    monkeypatch.setenv("VISIONFORGE_API_KEY", "from-env")
    c2 = TestClient(create_app([seg_dir], backend="torch"))
    assert c2.get("/models").status_code == 401
    assert c2.get("/models", headers={"X-API-Key": "from-env"}).status_code == 200


def test_bad_model_dirs(tmp_path):
    from visionforge.errors import ConfigError

    with pytest.raises(ConfigError, match="not a model dir"):
        create_app([tmp_path])


# -- the input contract of model.json reaches the network through the server ---------------
def _received_by_server(model_dir, png: bytes, tiny_models, route="/predict"):
    app = create_app([model_dir], backend="torch")
    served = app.state.store.all()[0]
    seen = tiny_models.record_inputs(served.predictor.model)
    r = TestClient(app).post(route, files={"file": ("x.png", png, "image/png")})
    assert r.status_code == 200, r.text
    assert len(seen) == 1
    return seen[0].numpy(), TestClient(app).get("/models").json()["models"][0]


def test_server_feeds_raw_255_model_0_255_inputs(tmp_path, tiny_models):
    from visionforge.models.contract import RAW_255

    mdir = tiny_models.make_probe_dir(tmp_path / "raw", RAW_255)
    png = _png(8, 8, seed=11)
    img = np.asarray(Image.open(io.BytesIO(png)))
    got, info = _received_by_server(mdir, png, tiny_models, route="/models/raw/predict")
    np.testing.assert_allclose(got[0], img.transpose(2, 0, 1).astype(np.float32), atol=1e-4)
    assert got.max() > 1.5
    assert info["preprocessing"]["input_range"] == [0.0, 255.0]


def test_server_feeds_bgr_model_reversed_channels(tmp_path, tiny_models):
    from visionforge.models.contract import InputContract

    mean, std = (104.0, 117.0, 124.0), (57.0, 57.5, 58.0)
    contract = InputContract(input_range=(0.0, 255.0), mean=mean, std=std, channel_order="BGR")
    mdir = tiny_models.make_probe_dir(tmp_path / "bgr", contract)
    png = _png(8, 8, seed=12)
    img = np.asarray(Image.open(io.BytesIO(png))).astype(np.float32)
    got, info = _received_by_server(mdir, png, tiny_models)
    expected = (img[..., ::-1] - np.asarray(mean)) / np.asarray(std)
    np.testing.assert_allclose(got[0], expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-4)
    assert info["preprocessing"]["channel_order"] == "BGR"


def test_server_lists_defaults_for_old_model_json(tmp_path, tiny_models):
    import json

    from visionforge.models.contract import IMAGENET

    mdir = tiny_models.make_probe_dir(tmp_path / "old", IMAGENET)
    meta = json.loads((mdir / "model.json").read_text())
    meta.pop("input_layout", None)
    meta["preprocessing"] = {"mean": list(IMAGENET.mean), "std": list(IMAGENET.std)}
    (mdir / "model.json").write_text(json.dumps(meta))
    png = _png(8, 8, seed=13)
    img = np.asarray(Image.open(io.BytesIO(png))).astype(np.float32) / 255.0
    got, info = _received_by_server(mdir, png, tiny_models)
    expected = (img - np.asarray(IMAGENET.mean)) / np.asarray(IMAGENET.std)
    np.testing.assert_allclose(got[0], expected.transpose(2, 0, 1), rtol=1e-5, atol=1e-5)
    assert info["input_layout"] == "NCHW"
    assert info["preprocessing"]["channel_order"] == "RGB"
    assert info["preprocessing"]["interpolation"] == "bilinear"


def test_classification_reply_omits_segmentation_fields(client):
    r = client.post("/predict?model=digits", files={"file": ("a.png", _png(), "image/png")})
    body = r.json()
    assert r.status_code == 200 and "top_class" in body
    assert not {"height", "width", "class_fractions"} & set(body)
    rb = client.post("/predict/batch?model=digits", files=[("files", ("a.png", _png()))])
    assert not {"height", "width", "class_fractions"} & set(rb.json()["results"][0])


def test_model_named_after_its_run(tmp_path, classifier_dir):
    import json
    import shutil

    run_model = tmp_path / "runs" / "classification" / "flowers" / "model"
    shutil.copytree(classifier_dir, run_model, ignore=shutil.ignore_patterns(".cache"))
    named = tmp_path / "other" / "model"
    shutil.copytree(classifier_dir, named, ignore=shutil.ignore_patterns(".cache"))
    meta = json.loads((named / "model.json").read_text())
    (named / "model.json").write_text(json.dumps({**meta, "run_name": "petals"}))
    app = create_app([run_model, named], backend="torch")
    assert TestClient(app).get("/health").json()["models"] == ["flowers", "petals"]


def test_openapi_declares_image_media_types(client):
    spec = client.get("/openapi.json").json()
    for path, field in (("/predict", "file"), ("/predict/batch", "files"), ("/segment", "file")):
        body = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        types = {t.strip() for t in body["encoding"][field]["contentType"].split(",")}
        assert {"image/png", "image/jpeg", "image/tiff"} <= types, path

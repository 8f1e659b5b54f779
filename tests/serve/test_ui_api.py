"""The JSON and Deep Zoom routes behind the web page (no browser: tests/serve/test_ui_browser.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from visionforge.errors import ConfigError
from visionforge.serve import create_app
from visionforge.serve.deepzoom import DeepZoom, TileOutOfRange, label_tile, slide_tile

KEY = "k-123"


@pytest.fixture(scope="module")
def client(ui_world):
    app = create_app(ui_world["models"], api_key=KEY, backend="torch",
                     slides_dir=ui_world["slides_dir"], project_dir=ui_world["project_dir"])
    return TestClient(app, headers={"X-API-Key": KEY})


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _ihc(h: int, w: int) -> np.ndarray:
    from skimage import data

    return data.immunohistochemistry()[100:100 + h, 50:50 + w]


def test_deepzoom_pyramid_arithmetic():
    dz = DeepZoom(1000, 600, tile=254, overlap=1)
    assert dz.max_level == 10
    assert dz.level_size(10) == (1000, 600) and dz.level_size(9) == (500, 300)
    assert dz.level_size(0) == (1, 1)
    assert dz.grid(10) == (4, 3)
    assert dz.tile_box(10, 0, 0) == (0, 0, 255, 255)  # overlap only where a neighbour is
    assert dz.tile_box(10, 1, 1) == (253, 253, 256, 256)
    assert dz.tile_box(10, 3, 2) == (761, 507, 239, 93)  # clipped at the image edge
    for bad in ((11, 0, 0), (-1, 0, 0), (10, 4, 0), (10, 0, 3)):
        with pytest.raises(TileOutOfRange):
            dz.tile_box(*bad)
    assert 'Width="1000" Height="600"' in dz.xml() and 'TileSize="254"' in dz.xml()


def test_slide_and_label_tiles_are_the_files_pixels(ui_world):
    import tifffile

    from visionforge.slides.reader import open_slide

    with open_slide(ui_world["slide"]) as reader:
        w, h = reader.dimensions
        dz = DeepZoom(w, h)
        tile = slide_tile(reader, dz, dz.max_level, 1, 0)
        x, y, tw, th = dz.tile_box(dz.max_level, 1, 0)
        assert np.array_equal(tile, reader.read_region((x, y), 0, (tw, th)))
    labels_path = ui_world["slides_dir"] / "ihc" / "labels.tif"
    labels = tifffile.imread(labels_path, level=0)
    ldz = DeepZoom(labels.shape[1], labels.shape[0])
    colors = [[255, 255, 255], [40, 60, 200], [150, 90, 20]]
    rgba = label_tile(labels_path, ldz, ldz.max_level, 0, 0, colors, hidden=[0])
    assert rgba.shape[:2] == labels.shape  # 64 px: one tile
    palette = np.array([[255, 255, 255, 0], [40, 60, 200, 255], [150, 90, 20, 255]], np.uint8)
    assert np.array_equal(rgba, palette[labels])
    half = label_tile(labels_path, ldz, ldz.max_level - 1, 0, 0, colors)
    assert np.array_equal(half[..., :3], np.asarray(colors, np.uint8)[labels[::2, ::2]])


def test_page_is_public_data_needs_the_key(client, ui_world):
    bare = TestClient(client.app)
    page = bare.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert bare.get("/static/vendor/openseadragon/openseadragon.min.js").status_code == 200
    assert "BSD" in bare.get("/static/vendor/openseadragon/LICENSE.txt").text or \
        "Redistribution" in bare.get("/static/vendor/openseadragon/LICENSE.txt").text
    for path in ("/ui/api/models", "/ui/api/slides", "/ui/api/runs",
                 "/ui/api/slides/ihc/labels.dzi", "/ui/api/runs/classification/exp/report"):
        assert bare.get(path).status_code == 401, path
        assert client.get(path).status_code == 200, path


def test_models_carry_card_colours_and_contract(client):
    models = {m["name"]: m for m in client.get("/ui/api/models").json()["models"]}
    ihc = models["ihc"]
    assert ihc["class_names"] == ["background", "hematoxylin", "DAB"]
    assert ihc["colors"][0] == [255, 255, 255] and len(ihc["colors"]) == 3
    assert ihc["card"].startswith("---\nlibrary_name: visionforge")
    assert ihc["preprocessing"]["input_size"] == [3, 64, 64]


def test_segment_windowed_equals_predict_large(client, ui_world):
    from visionforge.inference import Predictor

    img = _ihc(100, 150)  # not the 64 px training size: sliding window, no resizing
    r = client.post("/ui/api/segment?model=ihc", files={"file": ("a.png", _png(img), "image/png")})
    body = r.json()
    assert r.status_code == 200 and body["sliding_window"] is True
    labels = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["labels_png"]))))
    expected = Predictor(ui_world["seg_dir"], backend="torch").predict_large(img, layout="NHWC")
    assert np.array_equal(labels, expected)
    counts = np.bincount(expected.ravel(), minlength=3) / expected.size
    assert list(body["class_fractions"].values()) == pytest.approx(counts.tolist())
    r = client.post("/ui/api/segment?model=digits", files={"file": ("a.png", _png(img), "image/png")})
    assert r.status_code == 409


def test_explain_heatmap_and_bad_target(client):
    img = _ihc(40, 48)
    r = client.post("/ui/api/explain?model=digits&target=bird",
                    files={"file": ("a.png", _png(img), "image/png")})
    assert r.status_code == 200 and r.json()["target_name"] == "bird"
    overlay = Image.open(io.BytesIO(base64.b64decode(r.json()["overlay_png"])))
    assert overlay.size == (48, 40)  # drawn over the image at its own size
    r = client.post("/ui/api/explain?model=digits&target=zebra",
                    files={"file": ("a.png", _png(img), "image/png")})
    assert r.status_code == 400 and "zebra" in r.json()["detail"]
    r = client.post("/ui/api/explain?model=digits", files={"file": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 415  # the API's upload checks apply


@pytest.mark.parametrize("path", [
    "/ui/api/slides/ihc/slide_files/99/0_0.jpeg",     # no such level
    "/ui/api/slides/ihc/slide_files/9/7_0.jpeg",      # no such column
    "/ui/api/slides/ihc/slide_files/9/0_x.jpeg",      # not a tile name
    "/ui/api/slides/ihc/other_files/9/0_0.jpeg",      # not a pyramid
    "/ui/api/slides/nope/slide.dzi",                  # no such slide
    "/ui/api/slides/..%2F..%2Fetc/slide.dzi",         # not a name
    "/ui/api/runs/classification/nope/report",
    "/ui/api/runs/..%2F..%2F/exp/history",
])
def test_bad_tiles_and_names_are_404(client, path):
    assert client.get(path).status_code == 404


def test_slide_listing_and_runs(client):
    slides = client.get("/ui/api/slides").json()["slides"]
    assert [s["name"] for s in slides] == ["ihc"] and slides[0]["slide_readable"]
    assert slides[0]["composition"]["total PC"] == 64 * 64
    assert client.get("/ui/api/slides/ihc/slide_files/9/0_0.jpeg").headers["content-type"] == "image/jpeg"
    runs = client.get("/ui/api/runs").json()["runs"]
    assert {(r["name"], r["metrics"]["accuracy"]) for r in runs} == {("exp", 0.81), ("exp2", 0.74)}
    assert client.get("/ui/api/runs/classification/exp2/history").json()["val_loss"][-1] == 0.6
    assert "<html" in client.get("/ui/api/runs/classification/exp/report").text.lower()


def test_missing_folders_are_refused(ui_world, tmp_path):
    with pytest.raises(ConfigError, match="slides_dir"):
        create_app(ui_world["models"][:1], backend="torch", slides_dir=tmp_path / "none")


def test_sliding_window_reports_progress_and_equals_predict_large(ui_world):
    from visionforge.inference import Predictor
    from visionforge.serve.ui_predict import windowed_labels

    pred = Predictor(ui_world["seg_dir"], backend="torch", batch_size=2)
    img = _ihc(100, 150)
    calls: list[tuple[int, int]] = []
    labels = windowed_labels(pred, img, lambda done, total: calls.append((done, total)))
    assert np.array_equal(labels, pred.predict_large(img, layout="NHWC"))
    # 64 px tiles, step 48: rows at 0, 36 and columns at 0, 48, 86 -> 6 tiles, run in
    # row-major order in batches of 2 (a batch may take tiles of two tile rows)
    assert calls == [(0, 6), (2, 6), (4, 6), (6, 6)]


def test_progress_of_unknown_job_is_404(client):
    assert client.get("/ui/api/progress/nope").status_code == 404
    r = client.post("/ui/api/segment?model=ihc&job=bad/id",
                    files={"file": ("a.png", _png(_ihc(64, 64)), "image/png")})
    assert r.status_code in (404, 422)

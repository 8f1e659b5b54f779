"""The web page of `visionforge serve` in a real browser (Playwright driving Debian's chromium).

One server (uvicorn, in a thread, with an API key) serves a classifier, a segmentation model,
a detector, a slide segmented by `slides segment` and two runs. Screenshots of each page are written to
``$VF_UI_SCREENSHOTS`` (default: the test's tmp dir), the artefacts docs/img/ui_*.png came from.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (dev extra)")
CHROMIUM = os.environ.get("VF_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: .ci/run installs it with apt-get (Debian package 'chromium'); "
                "elsewhere install it or set VF_CHROMIUM", allow_module_level=True)

KEY = "s3cret-key"
pytestmark = pytest.mark.slow  # a real browser and a uvicorn server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def spread_detector(tmp_path_factory) -> Path:
    """A tiny untrained FCOS whose class and centre-ness logits are scaled up, so that its 30
    boxes' scores spread over ~0.8-0.96 (an untrained head gives ~0.08 everywhere), recording
    ``score_threshold=0.85`` in model.json as a tuned model dir would."""
    import torch

    from visionforge.models import create_model, save_model_dir

    torch.manual_seed(0)
    model = create_model("fcos", backbone="resnet18", num_classes=2, fpn_channels=32,
                         head_convs=1, levels=[0, 1, 2], score_thresh=0.0, nms_thresh=0.3,
                         detections_per_img=30)
    with torch.no_grad():
        model.head.classification_head.cls_logits.weight.mul_(8)
        model.head.classification_head.cls_logits.bias.copy_(torch.tensor([0.0, 0.0, -1.0]))
        model.head.regression_head.bbox_ctrness.weight.mul_(8)
        model.head.regression_head.bbox_reg.bias.fill_(1.5)  # boxes of a few pixels, not ~0
    return save_model_dir(model, tmp_path_factory.mktemp("det") / "cells", task="detection",
                          class_names=["cell", "debris"], input_size=[3, 64, 64],
                          extra={"score_threshold": 0.85})


@pytest.fixture(scope="module")
def server(ui_world, spread_detector):
    import uvicorn

    from visionforge.serve import create_app

    models = [*ui_world["models"], f"cells={spread_detector}"]
    app = create_app(models, api_key=KEY, backend="torch",
                     slides_dir=ui_world["slides_dir"], project_dir=ui_world["project_dir"],
                     max_upload_bytes=2_000_000, max_pixels=1_000_000)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("VF_UI_SCREENSHOTS") or tmp_path_factory.mktemp("ui_screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _page(browser, key: str | None = KEY, width: int = 1280, height: int = 800):
    ctx = browser.new_context(viewport={"width": width, "height": height})
    if key:
        ctx.add_init_script(f"sessionStorage.setItem('vf-key', {key!r})")
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    return page


def _ihc_png(h: int, w: int, y: int = 200, x: int = 300) -> bytes:
    from skimage import data

    buf = io.BytesIO()
    Image.fromarray(data.immunohistochemistry()[y:y + h, x:x + w]).save(buf, format="PNG")
    return buf.getvalue()


def _upload(page, name: str, data: bytes) -> None:
    page.set_input_files("#files", files=[{"name": name, "mimeType": "image/png", "buffer": data}])


def test_api_key_is_required_when_set(server, browser, shots):
    import httpx

    assert httpx.get(f"{server}/ui/api/models").status_code == 401
    assert httpx.get(f"{server}/ui/api/slides/ihc/slide.dzi").status_code == 401
    page = _page(browser, key=None)
    page.goto(server + "/")
    page.wait_for_selector("#keyform:not([hidden])")
    assert page.locator("#model-list article").count() == 0
    page.fill("#apikey", "wrong")
    page.press("#apikey", "Enter")
    page.wait_for_function("document.querySelector('#keymsg').textContent.includes('refused')")
    page.fill("#apikey", KEY)
    page.press("#apikey", "Enter")
    page.wait_for_selector("#model-list article[data-model='ihc']")
    assert page.locator("#model-list article").count() == 3
    assert "Input contract" in page.inner_text("#model-list")
    cells = page.inner_text("#model-list article[data-model='cells']")
    assert "detection" in cells and "debris" in cells and "Default score threshold 0.85" in cells
    page.screenshot(path=shots / "ui_models.png", full_page=True)
    page.context.close()


def test_segmentation_overlay_fractions_equal_api_and_heatmap(server, browser, shots):
    import httpx

    png = _ihc_png(64, 64)  # the model's input size: the API's /segment takes the same path
    api = httpx.post(f"{server}/segment?model=ihc&format=json", headers={"X-API-Key": KEY},
                     files={"file": ("crop.png", png, "image/png")}).json()
    page = _page(browser)
    page.goto(server + "/#try")
    page.select_option("#try-model", "ihc|1")
    _upload(page, "crop.png", png)
    canvas = page.wait_for_selector("canvas.overlay[data-overlay='drawn']")
    shown = {r.get_attribute("data-class"): float(r.get_attribute("data-fraction"))
             for r in page.query_selector_all("table.fractions tbody tr")}
    assert shown == pytest.approx(api["class_fractions"], abs=1e-9)
    n = 64 * 64
    # background is hidden by default: every other pixel is tinted
    assert int(canvas.get_attribute("data-painted")) == round((1 - shown["background"]) * n)
    page.uncheck("input[aria-label='show hematoxylin']")
    assert int(canvas.get_attribute("data-painted")) == round(shown["DAB"] * n)
    page.check("input[aria-label='show hematoxylin']")
    page.check("input.why")
    page.wait_for_selector("canvas.overlay[data-heatmap='on']")
    assert "Grad-CAM for class" in page.inner_text(".result-card")
    page.screenshot(path=shots / "ui_try_heatmap.png", full_page=True)
    page.uncheck("input.why")
    page.wait_for_selector("canvas.overlay[data-heatmap='off']")
    # a larger image goes through the sliding window at training resolution
    _upload(page, "region.png", _ihc_png(160, 224))
    page.wait_for_function("document.querySelectorAll('canvas.overlay[data-overlay=drawn]').length == 2")
    assert "(sliding window)" in page.inner_text(".result-card >> nth=0")
    page.screenshot(path=shots / "ui_try_segmentation.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=shots / "ui_phone.png", full_page=False)
    page.context.close()


def test_classification_bars_equal_api(server, browser, shots):
    import httpx

    rng = np.random.default_rng(3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
    api = httpx.post(f"{server}/predict?model=digits", headers={"X-API-Key": KEY},
                     files={"file": ("x.png", buf.getvalue(), "image/png")}).json()
    page = _page(browser)
    page.goto(server + "/#try")
    page.focus("#tab-try")  # keyboard only: arrows move between tabs, Enter opens the picker
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("#models:not([hidden])")
    page.keyboard.press("ArrowRight")
    page.wait_for_selector("#try:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "tab-try"
    page.select_option("#try-model", "digits|1")
    # Enter on the drop box opens the file picker (seen as a click on the file input; the
    # native chooser event itself proved flaky in headless chromium under load)
    page.evaluate("document.querySelector('#files').addEventListener('click', (e) => "
                  "{ window.vfPicked = true; e.preventDefault(); })")
    page.focus("#drop")
    page.keyboard.press("Enter")
    page.wait_for_function("window.vfPicked === true")
    _upload(page, "x.png", buf.getvalue())
    page.wait_for_selector(".bar")
    bars = {b.get_attribute("data-class"): float(b.get_attribute("data-probability"))
            for b in page.query_selector_all(".bar")}
    assert bars == pytest.approx(api["probabilities"], abs=1e-6)
    top = max(bars.values())  # the bar is drawn as long as its probability
    fill = page.locator(".bar >> nth=0 >> .fill").bounding_box()["width"]
    track = page.locator(".bar >> nth=0 >> .track").bounding_box()["width"]
    assert fill == pytest.approx(top * track, abs=2)
    assert f"Top class: {api['top_class']}" in page.inner_text(".result-card")
    page.screenshot(path=shots / "ui_try_classification.png", full_page=True)
    page.context.close()


def test_open_slide_and_zoom_in(server, browser, shots):
    page = _page(browser)
    levels: list[int] = []
    page.on("request", lambda r: levels.append(int(r.url.split("slide_files/")[1].split("/")[0]))
            if "slide_files/" in r.url else None)
    page.goto(server + "/#slides")
    page.wait_for_selector("#slide-list button[data-slide='ihc'][aria-pressed='true']")
    page.wait_for_function("window.vfViewer && window.vfViewer.world.getItemCount() == 2 && "
                           "window.vfViewer.world.getItemAt(0).getFullyLoaded()")
    assert "hematoxylin" in page.inner_text("#slide-side") and "tissue PC" in page.inner_text("#slide-side")
    before = page.evaluate("vfViewer.viewport.getZoom()")
    page.screenshot(path=shots / "ui_slides.png", full_page=True)
    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.25 * box["height"])
    zoom = before
    for _ in range(20):  # scroll to zoom in, as a user would (one step per animation frame)
        page.mouse.wheel(0, -200)
        page.wait_for_timeout(150)
        zoom = page.evaluate("vfViewer.viewport.getZoom()")
        if zoom > 3 * before:
            break
    assert zoom > 3 * before
    page.wait_for_function("vfViewer.world.getItemAt(0).getFullyLoaded()")
    # coarse levels first, then the full-resolution one (512 px: Deep Zoom level 9)
    assert max(levels) == 9 and min(levels) < 9
    page.screenshot(path=shots / "ui_slides_zoomed.png", full_page=True)
    page.context.close()


def test_runs_report_and_curves(server, browser, shots):
    page = _page(browser)
    page.goto(server + "/#runs")
    page.wait_for_selector("tr[data-run='classification/exp']")
    page.check("input[aria-label='compare classification/exp']")
    page.check("input[aria-label='compare classification/exp2']")
    page.wait_for_selector("#curves svg polyline[data-line='exp2 val_loss']")
    assert page.locator("#curves svg").count() == 2
    assert page.locator("#curves polyline").count() == 6  # 2 runs x (train, val loss + accuracy)
    page.screenshot(path=shots / "ui_runs.png", full_page=True)
    page.click("tr[data-run='classification/exp'] >> text=Open report")
    frame = page.frame_locator("#report")
    frame.locator("img").first.wait_for()
    assert "exp" in frame.locator("body").inner_text()
    page.screenshot(path=shots / "ui_run_report.png", full_page=False)
    page.context.close()


def test_detection_boxes_and_score_slider_match_api(server, browser, shots):
    import csv
    from collections import Counter

    import httpx

    png = _ihc_png(64, 64)

    def api(score: float | None) -> dict:
        q = "" if score is None else f"&score={score}"
        r = httpx.post(f"{server}/detect?model=cells{q}", headers={"X-API-Key": KEY},
                       files={"file": ("crop.png", png, "image/png")})
        assert r.status_code == 200, r.text
        return r.json()

    every = api(0.0)
    scores = [b["score"] for b in every["boxes"]]
    page = _page(browser)
    page.goto(server + "/#try")
    page.select_option("#try-model", "cells|1")
    _upload(page, "crop.png", png)
    canvas = page.wait_for_selector("canvas.boxes[data-overlay='drawn']")

    def shown() -> tuple[float, int, dict[str, int], int]:
        rows = page.query_selector_all("table.counts tbody tr")
        per_class = {r.get_attribute("data-class"): int(r.get_attribute("data-count")) for r in rows}
        listed = page.locator(".box-list tbody tr:not([hidden])").count()
        return (float(canvas.get_attribute("data-threshold")),
                int(canvas.get_attribute("data-boxes")), per_class, listed)

    # the slider starts at the model's recorded threshold, as /detect's default does
    default = api(None)
    t, n, per_class, listed = shown()
    assert t == default["score_threshold"] == 0.85
    assert n == listed == default["count"] == sum(s >= 0.85 for s in scores)
    assert {k: v for k, v in per_class.items() if v} == Counter(b["class_name"] for b in default["boxes"])
    assert 0 < int(canvas.get_attribute("data-labels")) <= n  # none drawn over another
    page.screenshot(path=shots / "ui_try_detection.png", full_page=True)
    page.uncheck("input[aria-label='show labels']")
    assert canvas.get_attribute("data-labels") == "0" and shown()[1] == n
    page.check("input[aria-label='show labels']")
    # keyboard: Home/End/arrows on the focused slider
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/detect" in r.url else None)
    page.focus("input.score")
    page.keyboard.press("Home")
    assert shown()[:2] == (0.0, every["count"]) and every["count"] == 30
    page.keyboard.press("ArrowRight")
    assert shown()[0] == 0.01
    counts = []
    for t in (0.7, 0.8, 0.9, 1.0):
        page.evaluate("(t) => { const s = document.querySelector('input.score'); s.value = t; "
                      "s.dispatchEvent(new Event('input', { bubbles: true })); }", str(t))
        ref = api(t)
        seen, n, per_class, listed = shown()
        assert seen == t and n == listed == ref["count"] == sum(s >= t for s in scores)
        assert {k: v for k, v in per_class.items() if v} == Counter(b["class_name"] for b in ref["boxes"])
        counts.append(n)
    assert counts[0] > counts[1] > counts[2] > 0 == counts[3]  # the scores spread over the range
    page.keyboard.press("End")
    assert shown()[:2] == (1.0, 0)
    assert requests == []  # the slider filters in the page: one /detect request in all
    assert page.evaluate("performance.getEntriesByType('resource')"
                         ".filter(e => e.name.includes('/detect')).length") == 1
    # per-class toggle and the CSV of the boxes shown
    page.evaluate("(t) => { const s = document.querySelector('input.score'); s.value = t; "
                  "s.dispatchEvent(new Event('input', { bubbles: true })); }", "0.8")
    ref = api(0.8)
    page.uncheck("input[aria-label='show debris']")
    cells_only = [b for b in ref["boxes"] if b["class_name"] != "debris"]
    assert shown()[1] == len(cells_only)
    with page.expect_download() as dl:
        page.click(".result-card >> text=Download CSV")
    with open(dl.value.path(), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(cells_only)
    assert sorted(float(r["score"]) for r in rows) == pytest.approx(
        sorted(b["score"] for b in cells_only), abs=1e-6)
    assert rows[0].keys() == {"file", "x1", "y1", "x2", "y2", "score", "label", "class"}
    page.context.close()


def test_detection_why_shows_the_clicked_boxs_gradcam(server, browser, shots):
    import base64

    import httpx

    png = _ihc_png(64, 64)
    headers = {"X-API-Key": KEY}
    boxes = httpx.post(f"{server}/detect?model=cells&score=0", headers=headers,
                       files={"file": ("crop.png", png, "image/png")}).json()["boxes"]
    page = _page(browser)
    page.goto(server + "/#try")
    page.select_option("#try-model", "cells|1")
    _upload(page, "crop.png", png)
    canvas = page.wait_for_selector("canvas.boxes[data-overlay='drawn']")
    assert canvas.get_attribute("data-heatmap") == "off"
    # click the middle of the smallest box shown at the default threshold (0.85)
    shown = [(i, b) for i, b in enumerate(boxes) if b["score"] >= 0.85]
    i, b = min(shown, key=lambda ib: (ib[1]["x2"] - ib[1]["x1"]) * (ib[1]["y2"] - ib[1]["y1"]))
    size = canvas.bounding_box()["width"] - 2  # 1 px border each side
    k = size / 64
    canvas.click(position={"x": 1 + k * (b["x1"] + b["x2"]) / 2, "y": 1 + k * (b["y1"] + b["y2"]) / 2})
    page.wait_for_selector(f"canvas.boxes[data-heatmap='on'][data-why='{i}']")
    note = page.inner_text(".result-card .controls [role=status]")
    assert f"Grad-CAM of box {i} ({b['class_name']}, score {b['score']:.2f})" in note
    assert page.is_checked("input.why")
    assert page.get_attribute(f".box-list button[data-box='{i}']", "aria-pressed") == "true"
    # the canvas shows the server's overlay (scaled 10x, nearest) with the box outlined in white
    ref = httpx.post(f"{server}/ui/api/explain?model=cells&box={i}&score=0", headers=headers,
                     files={"file": ("crop.png", png, "image/png")}).json()
    assert ref["score"] == pytest.approx(b["score"], abs=1e-6)
    overlay = np.asarray(Image.open(io.BytesIO(base64.b64decode(ref["overlay_png"]))).convert("RGB"))
    drawn = np.asarray(Image.open(io.BytesIO(base64.b64decode(page.evaluate(
        "document.querySelector('canvas.boxes').toDataURL().split(',')[1]")))).convert("RGB"))
    s = drawn.shape[0] // 64
    assert drawn.shape[:2] == (64 * s, 64 * s) and s == 10
    far = [(y, x) for y in range(64) for x in range(64)  # pixels well away from the box
           if not (b["x1"] - 3 <= x <= b["x2"] + 3 and b["y1"] - 3 <= y <= b["y2"] + 3)][::37]
    assert all((drawn[y * s + s // 2, x * s + s // 2] == overlay[y, x]).all() for y, x in far)
    edge = drawn[round(b["y1"] * s), round(b["x1"] * s) + 2 * s: round(b["x2"] * s) - 2 * s]
    assert (edge.min(axis=1) >= 240).mean() > 0.9  # the top edge of the box: white
    page.screenshot(path=shots / "ui_detect_why.png", full_page=True)
    # keyboard: Tab to another box's number in the list, Enter explains it
    j = next(j for j, _ in shown if j != i)
    page.focus(f".box-list button[data-box='{j}']")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"canvas.boxes[data-heatmap='on'][data-why='{j}']")
    assert page.get_attribute(f".box-list button[data-box='{i}']", "aria-pressed") == "false"
    page.focus("input.why")
    page.keyboard.press("Space")  # off: the boxes again
    page.wait_for_selector("canvas.boxes[data-heatmap='off']")
    assert int(canvas.get_attribute("data-boxes")) == len(shown)
    page.context.close()

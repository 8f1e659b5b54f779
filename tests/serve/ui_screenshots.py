"""Screenshots of the web page on the demo's models, for docs/img/ui_*.png (not a test).

    visionforge demo                                    # runs/demo/{classification,segmentation}
    python -c "from visionforge.slides.synthetic import make_ihc_slide; \
make_ihc_slide('runs/demo/slides/ihc_slide.svs', size=1024, mpp=0.5, levels=(1, 4), annotations=False)"
    visionforge slides segment runs/demo/segmentation/ihc/model runs/demo/slides/ihc_slide.svs \
        out=runs/demo/slides_out mpp=0.5 tissue=false
    visionforge serve runs/demo/*/*/model --project-dir runs/demo --slides-dir runs/demo/slides_out &
    python tests/serve/ui_screenshots.py http://127.0.0.1:8000 runs/demo docs/img

docs/img/ui_detect.png: a detector served as ``nuclei`` (e.g. ``fcos_resnet18_lite`` trained on
the IHC nuclei set as in docs/detection.md) and one held-out tile of that set:

    visionforge serve nuclei=runs/detection/nuclei/model &
    python tests/serve/ui_screenshots.py http://127.0.0.1:8000 - docs/img \
        data/nuclei/images/test/ihc_r128_c384.png [BOX]     # BOX: why? for box=BOX (default 0)
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright


def main(url: str, demo: Path, out: Path) -> None:
    from skimage import data

    out.mkdir(parents=True, exist_ok=True)
    digit = next((demo / "data" / "digits" / "3").glob("*.png"))
    buf = io.BytesIO()
    Image.fromarray(data.immunohistochemistry()[120:376, 384:512]).save(buf, format="PNG")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(120_000)
        page.goto(url + "/")
        page.wait_for_selector("#model-list article")
        page.click("#model-list article[data-model='ihc'] summary")
        page.screenshot(path=out / "ui_models.png")
        page.goto(url + "/#try")
        page.select_option("#try-model", "digits|1")
        page.set_input_files("#files", str(digit))
        page.wait_for_selector(".bar")
        page.check("input.why")
        page.wait_for_function("document.querySelector('.result-card').innerText.includes('Grad-CAM for')")
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=out / "ui_try_classification.png")
        page.reload()
        page.select_option("#try-model", "ihc|1")
        page.set_input_files("#files", files=[{"name": "ihc_heldout.png", "mimeType": "image/png",
                                               "buffer": buf.getvalue()}])
        page.wait_for_selector("canvas.overlay[data-overlay='drawn']")
        page.screenshot(path=out / "ui_try_segmentation.png")
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=out / "ui_phone.png")
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(url + "/#slides")
        page.wait_for_function("window.vfViewer && vfViewer.world.getItemCount() == 2 && "
                               "vfViewer.world.getItemAt(1).getFullyLoaded()")
        page.evaluate("vfViewer.viewport.zoomTo(vfViewer.viewport.getHomeZoom() * 2.5, "
                      "new OpenSeadragon.Point(0.3, 0.3), true)")
        page.wait_for_timeout(500)
        page.wait_for_function("vfViewer.world.getItemAt(0).getFullyLoaded()")
        page.screenshot(path=out / "ui_slides.png")
        page.goto(url + "/#runs")
        page.wait_for_selector("#run-table tbody tr")
        for box in page.query_selector_all("#run-table tbody input[type=checkbox]")[:2]:
            box.check()
        page.wait_for_selector("#curves svg")
        page.screenshot(path=out / "ui_runs.png")
        page.click("#run-table tbody tr >> nth=0 >> text=Open report")
        page.frame_locator("#report").locator("img").first.wait_for()
        page.screenshot(path=out / "ui_run_report.png")
        browser.close()


def detection(url: str, image: Path, out: Path, box: int = 0) -> None:
    """``ui_detect.png``: ``image`` through the served model ``nuclei`` in "Try it";
    ``ui_detect_why.png``: the same with why? on for box ``box``."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(120_000)
        page.goto(url + "/#try")
        page.select_option("#try-model", "nuclei|1")
        page.set_input_files("#files", str(image))
        page.wait_for_selector("canvas.boxes[data-overlay='drawn']")
        page.screenshot(path=out / "ui_detect.png")
        page.click(f".box-list button[data-box='{box}']")  # why? for that box
        page.wait_for_selector(f"canvas.boxes[data-heatmap='on'][data-why='{box}']")
        page.screenshot(path=out / "ui_detect_why.png", full_page=True)  # with the note below
        browser.close()


if __name__ == "__main__":
    if len(sys.argv) > 4:
        detection(sys.argv[1], Path(sys.argv[4]), Path(sys.argv[3]),
                  *(int(v) for v in sys.argv[5:6]))
    else:
        main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))

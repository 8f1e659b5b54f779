"""Every Python example of docs/slides.md (```python and ```py blocks) runs as written, in
order, as one script in a temporary folder."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "slides.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```py(?:thon)?\n(.*?)```", text, flags=re.S)


def test_slides_doc_examples_run(tmp_path, monkeypatch):
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location(
        "slide_segment_child", Path(__file__).with_name("slide_segment_child.py"))
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    text = DOC.read_text()
    blocks = _python_blocks(text)
    assert len(blocks) == 5, "the page lost (or gained untested) examples"
    monkeypatch.chdir(tmp_path)
    # the segment example names the model dir `visionforge train` would have written from the
    # tiles of the example before it: a tiny untrained U-Net at the tiles' 1 µm/px stands in
    child.make_model_dir(tmp_path / "runs" / "ihc" / "model", slide_mpp=1.0)
    namespace: dict = {"__name__": "slides_doc"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)
    assert (tmp_path / "ihc_tissue.png").is_file() and (tmp_path / "from_mask.geojson").is_file()
    assert namespace["choice"].level == 1
    assert namespace["result"].num_tiles == {"train": 8, "val": 1}
    assert len(namespace["cal"]["class_bias"]) == 3
    assert (tmp_path / "runs" / "ihc" / "model" / "calibration.json").is_file()
    status = {r.slide.name: r.status for r in namespace["results"]}
    assert status == {"ihc_small.svs": "ok", "missing.ndpi": "failed"}
    assert (tmp_path / "segmented" / "ihc_small" / "labels.tif").is_file()
    assert Path(namespace["pdf"]).is_file() and Path(namespace["pdf"]).stat().st_size > 0
    # the YAML shown on the page is the class map the generator writes
    shown = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0])
    assert shown == yaml.safe_load((tmp_path / "ihc_classes.yaml").read_text())

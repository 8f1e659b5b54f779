"""The Python example of docs/slides.md runs as written (in a temporary folder)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "slides.md"


def test_slides_doc_example_runs(tmp_path, monkeypatch):
    import yaml

    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "the page lost its example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "slides_doc"}
    exec(compile(blocks[0], f"{DOC.name}[example]", "exec"), namespace)
    assert (tmp_path / "ihc_tissue.png").is_file() and (tmp_path / "from_mask.geojson").is_file()
    assert namespace["choice"].level == 1
    # the YAML shown on the page is the class map the generator writes
    shown = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", text, flags=re.S)[0])
    assert shown == yaml.safe_load((tmp_path / "ihc_classes.yaml").read_text())

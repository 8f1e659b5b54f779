"""The Python examples in docs/architecture.md run, in order, as one script."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_architecture_examples_run(tmp_path, monkeypatch):
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) >= 5, "the page lost its examples"
    monkeypatch.chdir(tmp_path)
    import visionforge.explain  # noqa: F401  (registers the built-in explainers)
    import visionforge.export  # noqa: F401  (registers the built-in exporters)
    from visionforge.engine.losses import LOSSES
    from visionforge.models import list_models
    from visionforge.registry import EXPLAINERS, EXPORTERS, MODELS

    list_models()  # load the built-ins first, or they would count as the page's own and be removed
    before = {r: set(r.list()) for r in (MODELS, LOSSES, EXPORTERS, EXPLAINERS)}
    namespace: dict = {"__name__": "architecture_doc"}
    try:
        for i, block in enumerate(blocks):
            exec(compile(block, f"{DOC.name}[block {i}]", "exec"), namespace)
    finally:  # leave the registries as they were for other tests in this worker
        for registry, names in before.items():
            for name in set(registry.list()) - names:
                registry.remove(name)

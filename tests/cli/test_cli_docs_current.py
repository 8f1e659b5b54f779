"""The generated docs (configuration reference, model table) match the code."""

from __future__ import annotations

from pathlib import Path

from visionforge.docgen import configuration_reference, model_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_configuration_reference_is_current():
    assert (DOCS / "configuration.md").read_text() == configuration_reference(), (
        "docs/configuration.md is stale: run `python -m visionforge.docgen docs`"
    )


def test_model_table_is_current():
    text = model_table()
    assert (DOCS / "model_table.md").read_text() == text, (
        "docs/model_table.md is stale: run `python -m visionforge.docgen docs`"
    )
    assert "| `deeplabv3plus_codavision` |" in text and "40,360,357" in text

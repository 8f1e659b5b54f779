"""Slides + annotations -> tiles -> `visionforge train` -> `slides segment` -> `slides report`,
all through the CLI on the real IHC slide; the held-out quarter is scored against its labels.

The CI-sized run trains for a few epochs only; `benchmarks/slide_end_to_end.py` runs the same
commands with the issue's settings and prints the figures quoted in the docs.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from visionforge.cli.main import main

pytestmark = pytest.mark.slow


def _run(argv: list[str]) -> None:
    code = main(argv)
    assert code in (0, None), f"visionforge {' '.join(argv[:2])} exited {code}"


def test_slide_end_to_end_through_the_cli(tmp_path, ihc_slide):
    tiles, seg, runs = tmp_path / "tiles", tmp_path / "seg", tmp_path / "runs"
    _run(["slides", "tiles", str(ihc_slide.slide), f"out={tiles}",
          f"class_map={ihc_slide.class_map_path}", "mpp=2", "mode=simple", "tile_size=64",
          "holdout=right:0.25", "seed=0"])
    assert json.loads((tiles / "tiles.json").read_text())["mpp"] == pytest.approx(2.0)

    _run(["train", f"data.root={tiles}", "model=unet", "data.batch_size=8",
          "trainer.max_epochs=4", "optimizer.lr=0.003", "trainer=cpu", "name=slide",
          f"project_dir={runs}", "callbacks.progress=false"])
    model_dir = next(runs.rglob("model.json")).parent
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["slide_mpp"] == pytest.approx(2.0)  # the tiles' resolution reached the model
    assert meta["class_names"] == ["background", "hematoxylin", "DAB"][: len(meta["class_names"])]

    _run(["slides", "segment", str(model_dir), str(ihc_slide.slide), f"out={seg}"])
    stem = ihc_slide.slide.stem
    status = json.loads((seg / stem / "slide.json").read_text())
    assert status["status"] == "ok", status
    with open(seg / "composition.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Image name"] for r in rows] == [stem] or rows[0]["Image name"].startswith(stem)

    _run(["slides", "report", str(seg), f"regions={tiles}"])
    assert (seg / "report.pdf").stat().st_size > 10_000
    metrics = json.loads((seg / "report_metrics.json").read_text())
    miou = metrics["evaluation"]["mean_iou"]
    # A few CPU epochs on 48 coarse tiles: clearly better than chance (3 classes, ~0.2); the
    # full figure (held-out mIoU >= 0.85) comes from benchmarks/slide_end_to_end.py.
    assert np.isfinite(miou) and miou > 0.35, metrics["evaluation"]

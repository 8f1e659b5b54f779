"""`visionforge predict` on a segmentation input larger than the training size: sliding window."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from visionforge.cli.main import main

CHILD = Path(__file__).parents[1] / "slides" / "slide_segment_child.py"


def _model_dir(path):
    spec = importlib.util.spec_from_file_location("slide_segment_child", CHILD)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_model_dir(path)  # a U-Net trained (sized) at 64 px


def test_predict_large_image_uses_sliding_window(tmp_path, capsys):
    from skimage import data

    from visionforge.inference import Predictor

    model = _model_dir(tmp_path / "model")
    ihc = data.immunohistochemistry()
    # a 256-px mosaic of 64-px training-size tiles
    tiles = [ihc[y : y + 64, x : x + 64] for y in range(0, 512, 128) for x in range(0, 512, 128)]
    mosaic = np.concatenate([np.concatenate(tiles[r * 4 : r * 4 + 4], axis=1) for r in range(4)])
    Image.fromarray(mosaic).save(tmp_path / "mosaic.png")
    Image.fromarray(tiles[0]).save(tmp_path / "small.png")
    out = tmp_path / "pred"
    assert main(["predict", str(model), str(tmp_path / "mosaic.png"), str(tmp_path / "small.png"),
                 f"out={out}", "backend=torch"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "sliding-window" in ln]
    assert len(lines) == 1 and "256x256 px is not the model's 64x64" in lines[0]
    labels = np.asarray(Image.open(out / "mosaic_labels.png"))
    assert labels.shape == (256, 256)
    expect = Predictor(model, backend="torch").predict_large(mosaic, layout="NHWC")
    assert np.array_equal(labels, expect)
    assert np.asarray(Image.open(out / "small_labels.png")).shape == (64, 64)

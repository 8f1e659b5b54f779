"""Class calibration: fitting logit offsets, ``slides calibrate`` and ``class_bias=`` in segment."""

from __future__ import annotations

import json

import numpy as np
import pytest

from visionforge.cli.main import main
from visionforge.errors import ConfigError
from visionforge.slides.calibrate import ClassBias, fit_class_bias, resolve_class_bias

pytest.importorskip("tifffile")

MPP = 4.0  # the 0.5 µm/px slide at downsample 8: 256² working pixels
NAMES = ["background", "hematoxylin", "DAB"]


def _freq(labels: np.ndarray, n: int) -> np.ndarray:
    c = np.bincount(labels, minlength=n).astype(float)
    return c / c.sum()


def test_fit_class_bias_moves_frequencies_to_the_annotations():
    """A model whose class-1 logit is systematically low under-predicts class 1; the fitted
    offsets bring every class frequency to the truth, and offsets of 0 change nothing."""
    rng = np.random.default_rng(0)
    truth = rng.choice(3, size=60_000, p=[0.5, 0.3, 0.2])
    logits = np.eye(3, dtype=np.float32)[truth] * 2.0 + rng.normal(0, 1.0, (truth.size, 3))
    logits[:, 1] -= 0.8
    want = _freq(truth, 3)
    before = _freq(logits.argmax(1), 3)
    assert before[1] < want[1] - 0.05  # the bias to correct
    bias, used = fit_class_bias(logits, np.bincount(truth), background=0)
    after = _freq((logits + bias).argmax(1), 3)
    assert np.abs(after - want).max() < 0.005 < np.abs(before - want).max()
    assert bias[0] == 0 and bias[1] > 0.3 and 0 < used <= 20
    again, _ = fit_class_bias(logits, np.bincount(truth), background=0)
    np.testing.assert_array_equal(bias, again)  # deterministic
    unbiased = np.eye(3, dtype=np.float32)[truth]  # already right: no offsets
    np.testing.assert_array_equal(fit_class_bias(unbiased, np.bincount(truth))[0], 0)


def test_class_bias_values_and_errors(tmp_path):
    assert resolve_class_bias("none", tmp_path, NAMES) == ClassBias(None, "none")
    assert resolve_class_bias("auto", tmp_path, NAMES) == ClassBias(None, "none")  # no file
    assert resolve_class_bias("0, 0.5,-1", tmp_path, NAMES).values == (0.0, 0.5, -1.0)
    assert resolve_class_bias([0, 1, 2], tmp_path, NAMES).source == "given"
    for bad in ("0,1", "a,b,c", "0,nan,1", "1,2,3,4"):
        with pytest.raises(ConfigError, match=r"class_bias=.*3 comma-separated numbers"):
            resolve_class_bias(bad, tmp_path, NAMES)
    (tmp_path / "calibration.json").write_text('{"class_bias": "x"}')
    with pytest.raises(ConfigError, match="calibration.json: not a calibration file"):
        resolve_class_bias("auto", tmp_path, NAMES)
    (tmp_path / "calibration.json").write_text(json.dumps(
        {"class_bias": [0, 1], "class_names": ["background", "tumour"]}))
    with pytest.raises(ConfigError, match="rerun `visionforge slides calibrate`"):
        resolve_class_bias("auto", tmp_path, NAMES)


@pytest.fixture(scope="module")
def calibrated(ihc_slide, tmp_path_factory):
    """Tiles at the model's resolution, a segmentation before calibration, then calibration."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "slide_segment_child", Path(__file__).with_name("slide_segment_child.py"))
    child = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(child)
    root = tmp_path_factory.mktemp("calib")
    model_dir = child.make_model_dir(root / "model", MPP)
    tiles = root / "tiles"
    assert main(["slides", "tiles", str(ihc_slide.slide), f"out={tiles}",
                 f"class_map={ihc_slide.class_map_path}", f"mpp={MPP}", "mode=simple",
                 "tile_size=64", "holdout=right:0.25", "seed=0"]) == 0
    before = root / "seg_before"
    assert main(["slides", "segment", str(model_dir), str(ihc_slide.slide), f"out={before}"]) == 0
    return model_dir, tiles, before, root


def test_cli_calibrate_writes_offsets_that_match_the_tile_counts(calibrated, capsys):
    model_dir, tiles, _, _ = calibrated
    capsys.readouterr()
    assert main(["slides", "calibrate", str(model_dir), str(tiles), "iterations=10"]) == 0
    out = capsys.readouterr().out
    assert "class %  annotated:" in out and "calibration.json" in out
    rec = json.loads((model_dir / "calibration.json").read_text())
    assert rec["class_names"] == NAMES and len(rec["class_bias"]) == 3
    assert rec["class_bias"][0] == 0 and rec["splits"] == ["train", "val"]
    assert rec["tiles_dir"] == str(tiles.resolve()) and rec["tiles"] > 0
    want = np.array([rec["counts"]["annotated"][c] for c in NAMES], float)
    err = {k: np.abs(np.array([rec["counts"][k][c] for c in NAMES]) / want.sum()
                     - want / want.sum()).max() for k in ("before", "after")}
    # an untrained model is far off; the offsets bring its class frequencies to the annotations
    assert err["after"] < err["before"] and err["after"] < 0.02, (rec["counts"], err)
    assert sum(rec["counts"]["after"].values()) == rec["pixels"] == want.sum()
    assert not list(model_dir.glob("*.tmp"))  # atomic write left nothing behind


def test_segment_class_bias_none_auto_and_given(calibrated, ihc_slide, capsys):
    import tifffile

    model_dir, tiles, before, root = calibrated
    if not (model_dir / "calibration.json").is_file():
        assert main(["slides", "calibrate", str(model_dir), str(tiles)]) == 0
    bias = json.loads((model_dir / "calibration.json").read_text())["class_bias"]
    ref = tifffile.imread(before / "ihc" / "labels.tif")
    assert json.loads((before / "ihc" / "slide.json").read_text())["class_bias"] == {
        "values": None, "source": "none"}
    runs = {}
    for value in ("none", "auto", "0,0,0"):
        out = root / f"seg_{value.replace(',', '_')}"
        capsys.readouterr()
        assert main(["slides", "segment", str(model_dir), str(ihc_slide.slide), f"out={out}",
                     f"class_bias={value}"]) == 0
        runs[value] = (tifffile.imread(out / "ihc" / "labels.tif"),
                       json.loads((out / "ihc" / "slide.json").read_text())["class_bias"],
                       capsys.readouterr().out)
    np.testing.assert_array_equal(runs["none"][0], ref)  # none = the behaviour before calibration
    np.testing.assert_array_equal(runs["0,0,0"][0], ref)
    labels, record, printed = runs["auto"]
    assert record == {"values": pytest.approx(bias), "source": str(model_dir / "calibration.json")}
    assert "class_bias=auto: logit offsets" in printed and "calibration.json" in printed
    assert (labels != ref).any()  # the offsets changed the map


def test_segment_bad_class_bias_is_a_clear_cli_error(calibrated, ihc_slide, capsys, tmp_path):
    model_dir = calibrated[0]
    code = main(["slides", "segment", str(model_dir), str(ihc_slide.slide),
                 f"out={tmp_path / 'o'}", "class_bias=0,1"])
    err = capsys.readouterr().err
    assert code == 2 and "class_bias='0,1'" in err and "Traceback" not in err
    assert main(["slides", "calibrate", str(model_dir), str(tmp_path)]) == 2
    assert "manifest.csv not found" in capsys.readouterr().err

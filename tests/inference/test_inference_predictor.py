"""Predictor: backends agree, every input form gives the same answer, outputs are well formed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from visionforge.errors import ConfigError, DataError
from visionforge.inference import Predictor


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)


def test_backends_agree_and_auto_is_verified(classifier_dir, images):
    eager = Predictor(classifier_dir, backend="torch")
    ort = Predictor(classifier_dir, backend="onnxruntime")
    auto = Predictor(classifier_dir)  # backend decision cached next to the ONNX file
    p_eager, p_ort, p_auto = (p.predict(images) for p in (eager, ort, auto))
    assert p_eager.shape == (3, 3) and np.allclose(p_eager.sum(1), 1, atol=1e-5)
    assert np.abs(p_eager - p_ort).max() < 1e-5
    assert np.abs(p_eager - p_auto).max() < 1e-5
    assert auto.backend in ("torch", "onnxruntime", "openvino")  # openvino when installed
    sel = auto.selection
    assert sel["parity_error"] <= 1e-3 and sel["choice"] == auto.backend
    assert sel["torch_ms"] > 0 and sel["onnxruntime_ms"] > 0
    assert (classifier_dir / ".cache").is_dir()
    assert "backend" in auto.info() and repr(auto).startswith("Predictor(")


def test_input_forms_agree(classifier_dir, images, tmp_path):
    p = Predictor(classifier_dir, backend="torch")
    ref = p.predict(images)
    img = images[0]
    Image.fromarray(img).save(tmp_path / "a.png")
    nchw = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    forms = {
        "NHWC uint8": p.predict(images)[0],
        "NCHW uint8": p.predict(nchw)[0],
        "HWC list": p.predict(list(images))[0],
        "PIL": p.predict(Image.fromarray(img))[0],
        "path": p.predict(tmp_path / "a.png")[0],
        "str path": p.predict(str(tmp_path / "a.png"))[0],
        "tensor CHW float": p.predict(torch.from_numpy(nchw[0]).float() / 255)[0],
        "float HWC explicit": p.predict(img.astype(np.float32) / 255, layout="NHWC")[0],
    }
    for name, out in forms.items():
        assert np.abs(out - ref[0]).max() < 1e-5, name


def test_grayscale_and_rgba_are_adapted(classifier_dir):
    p = Predictor(classifier_dir, backend="torch")
    gray = np.full((32, 32), 128, np.uint8)
    rgb = np.full((32, 32, 3), 128, np.uint8)
    rgba = np.concatenate([rgb, np.full((32, 32, 1), 255, np.uint8)], axis=2)
    a, b, c = p.predict(gray), p.predict(rgb), p.predict(rgba)
    assert np.abs(a - b).max() < 1e-6 and np.abs(b - c).max() < 1e-6
    with pytest.raises(DataError, match="channels"):
        p.predict(np.zeros((32, 32, 2), np.float32))
    with pytest.raises(DataError, match="cannot predict"):
        p.predict({"not": "an image"})


def test_segmentation_label_maps_at_input_size(seg_dir):
    p = Predictor(seg_dir, backend="onnxruntime")
    t = Predictor(seg_dir, backend="torch")
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype(np.float32)
    a, b = p.predict(x), t.predict(x)
    assert a.shape == (2, 32, 32) and a.dtype == np.uint8
    assert (a == b).mean() > 0.999
    mixed = t.predict([x[0], np.random.default_rng(2).random((50, 40, 3)).astype(np.float32)])
    assert isinstance(mixed, list) and mixed[0].shape == (32, 32) and mixed[1].shape == (50, 40)
    logits = t.predict(x, return_logits=True)
    assert logits.shape == (2, 3, 32, 32)


def test_signal_and_multitask(signal_dir, multitask_dir):
    p = Predictor(signal_dir, backend="torch")
    x = np.random.default_rng(0).standard_normal((5, 6, 100)).astype(np.float32)
    probs = p.predict(x)
    assert probs.shape == (5, 4)
    assert np.abs(p.predict(np.ascontiguousarray(x[0].T))[0] - probs[0]).max() < 1e-6  # [L, C]
    m = Predictor(multitask_dir, backend="onnxruntime")
    out = m.predict(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32))
    assert set(out) == {"classification", "segmentation"}
    assert out["classification"].shape == (2, 3) and out["segmentation"].shape == (2, 32, 32)


def test_tta_predictions(classifier_dir, seg_dir, images):
    p = Predictor(classifier_dir, backend="torch")
    probs = p.predict(images, tta=True)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    s = Predictor(seg_dir, backend="torch")
    labels = s.predict(images, tta=True)
    assert labels.shape == (3, 40, 48)


def test_cache_falls_back_when_model_dir_unwritable(seg_dir, tmp_path, monkeypatch):
    import shutil

    ro = tmp_path / "ro_model"
    shutil.copytree(seg_dir, ro, ignore=shutil.ignore_patterns(".cache"))
    (ro / ".cache").write_text("a file where the cache folder would go")  # mkdir fails
    monkeypatch.setenv("VISIONFORGE_CACHE", str(tmp_path / "cache"))
    p = Predictor(ro, backend="onnxruntime")
    assert p.backend == "onnxruntime"
    assert list((tmp_path / "cache").rglob("predictor-*.onnx"))


def test_bad_arguments(classifier_dir):
    with pytest.raises(ConfigError, match="backend"):
        Predictor(classifier_dir, backend="tensorflow")
    with pytest.raises(ConfigError, match="batch_size"):
        Predictor(classifier_dir, batch_size=0)


def test_cli_predict_classification_and_segmentation(classifier_dir, seg_dir, tmp_path, capsys):
    import csv

    from visionforge.cli.main import main

    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (36, 30, 3), dtype=np.uint8)).save(
            folder / f"im{i}.png"
        )
    assert (
        main(
            [
                "predict",
                str(classifier_dir),
                str(folder),
                f"out={tmp_path / 'cls'}",
                "backend=torch",
            ]
        )
        == 0
    )
    rows = list(csv.reader((tmp_path / "cls" / "predictions.csv").open()))
    assert rows[0] == ["file", "predicted", "cat", "dog", "bird"] and len(rows) == 4
    assert abs(sum(float(v) for v in rows[1][2:]) - 1) < 1e-4
    assert main(["predict", str(seg_dir), str(folder / "*.png"), f"out={tmp_path / 'seg'}"]) == 0
    lab = np.asarray(Image.open(tmp_path / "seg" / "im0_labels.png"))
    assert lab.shape == (36, 30) and lab.max() < 3
    assert (tmp_path / "seg" / "im0_overlay.png").is_file()
    assert "% of pixels" in capsys.readouterr().out
    assert main(["predict", str(classifier_dir), str(tmp_path / "nothing_here")]) == 2
    capsys.readouterr()
    assert main(["predict", str(classifier_dir), str(folder), "tta=maybe"]) != 0  # not "false"
    err = capsys.readouterr().err
    assert "tta='maybe'" in err and "choose true or false" in err and "Traceback" not in err

"""Backend choice: OpenVINO parity, ``auto`` probes and caches per model dir and machine,
and uses a recorded INT8 model only when its accuracy drop is at most one point."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from visionforge.errors import ConfigError
from visionforge.export.runtimes import available
from visionforge.inference import Predictor
from visionforge.inference import selection as sel_mod

needs_openvino = pytest.mark.skipif(
    not available("openvino"), reason="openvino not installed (pip install visionforge[openvino])"
)


@pytest.fixture
def model_copy(tmp_path, classifier_dir):
    d = tmp_path / "model"
    shutil.copytree(
        classifier_dir, d, ignore=shutil.ignore_patterns(".cache", "export", "int8.json")
    )
    return d


def _images(n=3, size=32):
    return list(np.random.default_rng(1).integers(0, 256, (n, size, size, 3), dtype=np.uint8))


@needs_openvino
def test_openvino_matches_torch(model_copy, seg_dir):
    imgs = _images()
    ov = Predictor(model_copy, backend="openvino")
    assert ov.backend == "openvino" and ov.info()["backend"] == "openvino"
    ref = Predictor(model_copy, backend="torch").predict(imgs, layout="NHWC")
    np.testing.assert_allclose(ov.predict(imgs, layout="NHWC"), ref, atol=1e-4)
    seg_ov = Predictor(seg_dir, backend="openvino").predict(imgs[:1], return_logits=True)
    seg_ref = Predictor(seg_dir, backend="torch").predict(imgs[:1], return_logits=True)
    np.testing.assert_allclose(seg_ov, seg_ref, atol=1e-3)


def test_auto_times_every_backend_and_caches_per_machine(model_copy, monkeypatch):
    first = Predictor(model_copy)
    sel = first.selection
    expected = {"torch", "onnxruntime"} | ({"openvino"} if available("openvino") else set())
    assert set(sel["timings_ms"]) == expected
    assert sel["candidate"] == min(sel["timings_ms"], key=sel["timings_ms"].get)
    assert first.backend == sel["backend"] and sel["candidate"] in sel["reason"]
    record = json.loads(open(sel["decision_file"]).read())
    assert record["machine"]["cpus"] and record["candidate"] == sel["candidate"]

    again = Predictor(model_copy)
    assert again.selection["cached"] and again.selection["candidate"] == sel["candidate"]

    other = {**sel_mod.machine_fingerprint(), "cpu": "another CPU"}
    monkeypatch.setattr(sel_mod, "machine_fingerprint", lambda: other)
    moved = Predictor(model_copy)  # the model dir copied to another machine probes again
    assert (
        not moved.selection.get("cached")
        and moved.selection["decision_file"] != sel["decision_file"]
    )


@pytest.mark.slow
def test_auto_uses_recorded_int8_only_within_one_point(model_copy, monkeypatch):
    from visionforge.export import export_model
    from visionforge.models.model_dir import read_model_meta

    shape = read_model_meta(model_copy)["input_size"]
    calib = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32)
    export_model(
        model_copy,
        formats="onnx",
        quantize="int8",
        calibration_data=calib,
        options={"int8_modes": "static"},
    )
    record = json.loads((model_copy / "int8.json").read_text())
    (entry,) = record["models"]
    assert entry["metric"] == "accuracy" and entry["basis"] == "agreement with fp32"
    assert entry["file"] == "export/model.int8-static.onnx" and entry["drop"] >= 0

    # Speed cannot be asserted in a test: make the INT8 candidate the fastest, check the rest.
    def fake_probe(runners, x, repeats=3):
        return {k: (1.0 if "int8" in k else 5.0 + i) for i, k in enumerate(runners)}

    monkeypatch.setattr(sel_mod, "probe", fake_probe)
    entry["drop"] = 0.5
    (model_copy / "int8.json").write_text(json.dumps(record))
    p = Predictor(model_copy)
    assert p.precision == "int8" and p.selection["candidate"].endswith("int8-static")
    assert "drop 0.50" in p.selection["reason"]
    probs = p.predict(_images(), layout="NHWC")
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-4)

    entry["drop"] = 1.5  # too lossy: never considered
    (model_copy / "int8.json").write_text(json.dumps(record))
    p = Predictor(model_copy)
    assert p.precision == "fp32" and any("1.5 > 1" in n for n in p.selection["notes"])

    record["weights"] = "0" * 16  # measured on other weights: ignored
    (model_copy / "int8.json").write_text(json.dumps(record))
    assert any("other weights" in n for n in Predictor(model_copy).selection["notes"])


def test_use_names_the_variants(model_copy):
    p = Predictor(model_copy, backend="torch")
    assert {"torch", "onnxruntime"} <= set(p.variants())
    p.use("onnxruntime")
    assert p.backend == "onnxruntime"
    with pytest.raises(ConfigError, match="no variant 'nope'"):
        p.use("nope")

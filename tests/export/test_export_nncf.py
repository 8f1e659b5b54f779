"""``export quantize=int8-nncf``: OpenVINO INT8 IR made by NNCF, recorded in int8.json with its
measured drop, runnable through ``Predictor(backend="openvino-int8-nncf")``."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from visionforge.errors import ConfigError
from visionforge.export.runtimes import available

needs_nncf = pytest.mark.skipif(
    not (available("nncf") and available("openvino")),
    reason="nncf/openvino not installed (pip install 'visionforge[openvino]')",
)


@pytest.fixture
def seg_copy(tmp_path, seg_dir):
    d = tmp_path / "model"
    shutil.copytree(seg_dir, d, ignore=shutil.ignore_patterns(".cache", "export", "int8.json"))
    return d


def _calib(model_dir, n=8):
    from visionforge.models.model_dir import read_model_meta

    shape = read_model_meta(model_dir)["input_size"]
    return np.random.default_rng(0).uniform(0, 1, (n, *shape)).astype(np.float32)


@needs_nncf
@pytest.mark.parametrize("scope", ["all", "conv"])
def test_nncf_ir_written_recorded_and_predicts_like_fp32(seg_copy, scope):
    from visionforge.export import export_model
    from visionforge.inference import Predictor

    calib = _calib(seg_copy)
    labels = np.random.default_rng(1).integers(0, 2, (4, *calib.shape[2:]))
    report = export_model(
        seg_copy,
        formats="onnx",
        quantize="int8-nncf",
        calibration_data=calib,
        validation_data=(calib[:4], labels),
        options={"nncf_scope": scope},
    )
    (row,) = [r for r in report.results if r.format == "openvino-int8-nncf"]
    assert row.status == "ok", row.reason
    xml = seg_copy / "export" / "model.int8-nncf.xml"
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    assert not list((seg_copy / "export").glob(".vf_nncf_*"))  # no staging left behind
    # the IR really is quantised: it holds FakeQuantize nodes (fewer with the conv scope)
    assert "FakeQuantize" in xml.read_text()

    (entry,) = json.loads((seg_copy / "int8.json").read_text())["models"]
    assert entry["name"] == "openvino-int8-nncf" and entry["runtime"] == "openvino"
    assert entry["file"] == "export/model.int8-nncf.xml" and entry["scope"] == scope
    assert entry["metric"] == "miou" and entry["basis"] == "labelled validation data"
    assert np.isclose(entry["drop"], entry["fp32"] - entry["int8"])

    entry["drop"] = 0.0  # the tiny random model's measured drop may exceed one point
    (seg_copy / "int8.json").write_text(json.dumps({**json.loads(
        (seg_copy / "int8.json").read_text()), "models": [entry]}))
    imgs = list(np.random.default_rng(2).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8))
    q = Predictor(seg_copy, backend="openvino-int8-nncf")
    assert q.backend == "openvino" and q.precision == "int8"
    ref = Predictor(seg_copy, backend="torch").predict(imgs, layout="NHWC", return_logits=True)
    out = q.predict(imgs, layout="NHWC", return_logits=True)
    assert out.shape == ref.shape and np.all(np.isfinite(out))
    assert np.max(np.abs(out - ref)) <= 0.1 * np.max(np.abs(ref)) + 1e-3  # INT8 near fp32


@needs_nncf
def test_nncf_entry_kept_beside_onnxruntime_int8(seg_copy):
    from visionforge.export import export_model

    calib = _calib(seg_copy)
    kw = {"formats": "onnx", "calibration_data": calib}
    export_model(seg_copy, quantize="int8-nncf", **kw)
    export_model(seg_copy, quantize="int8", options={"int8_modes": "static"}, **kw)
    names = [e["name"] for e in json.loads((seg_copy / "int8.json").read_text())["models"]]
    assert sorted(names) == ["onnx-int8-static", "openvino-int8-nncf"]


def test_bad_quantize_and_scope_are_clear_errors(seg_copy):
    from visionforge.export import export_model
    from visionforge.inference import Predictor

    with pytest.raises(ConfigError, match="int8-nncf"):
        export_model(seg_copy, formats="onnx", quantize="int4")
    with pytest.raises(ConfigError, match="nncf_scope must be one of"):
        export_model(seg_copy, formats="onnx", quantize="int8-nncf",
                     options={"nncf_scope": "everything"})
    with pytest.raises(ConfigError, match="no variant 'openvino-int8-nncf'"):
        Predictor(seg_copy, backend="openvino-int8-nncf")  # nothing recorded yet
    with pytest.raises(ConfigError, match="backend must be one of"):
        Predictor(seg_copy, backend="tensorflow")


def test_cli_bad_quantize_or_scope_exits_2_without_traceback(seg_copy, capsys):
    from visionforge.cli.main import main

    assert main(["export", str(seg_copy), "formats=onnx", "quantize=int4"]) == 2
    err = capsys.readouterr().err
    assert "quantize must be int8 or int8-nncf" in err and "Traceback" not in err
    assert main(["export", str(seg_copy), "quantize=int8-nncf", "nncf_scope=most"]) == 2
    err = capsys.readouterr().err
    assert "nncf_scope must be one of ['all', 'conv']" in err and "Traceback" not in err

"""Export to each format with parity checks recorded; failures isolated; CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from visionforge.errors import UnknownNameError, WeightsError
from visionforge.export import export_model, list_exporters
from visionforge.registry import EXPORTERS


def test_exporters_registered():
    names = list_exporters()
    for fmt in ("pytorch", "torchscript", "onnx", "tensorrt", "coreml", "tflite", "executorch"):
        assert fmt in names


def test_classifier_export_with_int8(classifier_dir, tmp_path):
    import shutil

    # a copy: int8.json lands in the model dir, and Predictor(auto) elsewhere must not see it
    classifier_dir = shutil.copytree(classifier_dir, tmp_path / "model",
                                     ignore=shutil.ignore_patterns(".cache", "export"))
    tmp_path = tmp_path / "out"
    rng = np.random.default_rng(0)
    calib = rng.uniform(0, 1, (6, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 3, 6)
    report = export_model(
        classifier_dir,
        formats="pytorch,torchscript,onnx,tensorrt,tflite",
        out_dir=tmp_path,
        quantize="int8",
        calibration_data=calib,
        validation_data=(calib, labels),
    )
    saved = json.loads((tmp_path / "export_report.json").read_text())
    assert [r["format"] for r in saved["results"]] == [r.format for r in report.results]
    for fmt in ("pytorch", "torchscript", "onnx"):
        r = report[fmt]
        assert r.status == "ok", (fmt, r.reason)
        assert r.parity_error is not None and r.parity_error <= 1e-4
        assert r.size_bytes and r.size_bytes > 0 and r.latency_ms > 0
    assert report["pytorch"].extra["checkpoint_parity_error"] == 0.0
    assert report["onnx"].extra["opset"] >= 17
    assert report["onnx"].extra["batch1_parity_error"] <= 1e-4
    trt = report["tensorrt"]
    assert trt.status in ("ok", "skipped")
    if trt.status == "skipped":
        assert trt.reason.startswith("skipped: needs an NVIDIA GPU and TensorRT")
    tfl = report["tflite"]
    assert tfl.status in ("ok", "skipped"), tfl.reason
    if tfl.status == "skipped":
        assert "litert-torch" in tfl.reason
    else:
        assert tfl.parity_error <= 1e-3
    for mode in ("dynamic", "static"):
        q = report[f"onnx-int8-{mode}"]
        assert q.status == "ok", q.reason
        assert q.size_bytes < report["onnx"].size_bytes / 2  # int8 weights
        assert "accuracy_drop" in q.extra and "fp32_accuracy" in q.extra
    table = report.table()
    assert "onnx-int8-static" in table and "parity err" in table
    assert report.ok


def test_segmentation_export_coreml_and_validation(seg_dir, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (4, 3, 32, 32)).astype(np.float32)
    masks = rng.integers(0, 3, (4, 32, 32))
    report = export_model(
        seg_dir,
        formats=["onnx", "torchscript", "coreml"],
        out_dir=tmp_path,
        quantize="int8",
        calibration_data=[{"image": a, "mask": m} for a, m in zip(x, masks)],
        validation_data=(x, masks),
    )
    assert report["onnx"].status == "ok" and report["onnx"].parity_error <= 1e-4
    assert report["torchscript"].status == "ok"
    assert report["torchscript"].extra["scripted"]["status"] in ("ok", "skipped")
    assert "miou_drop" in report["onnx-int8-static"].extra
    cm = report["coreml"]
    assert cm.status in ("ok", "skipped"), cm.reason
    if cm.status == "ok":
        assert (tmp_path / "model.mlpackage").is_dir()
        assert cm.extra["inputs"][0]["shape"] == [2, 3, 32, 32]
        if not cm.extra["predicted"]:
            assert "not checked" in cm.reason


def test_signal_export_executorch_and_dynamo(signal_dir, tmp_path):
    pytest.importorskip("executorch", reason="executorch not installed beside this torch")
    report = export_model(
        signal_dir, formats="onnx,executorch", out_dir=tmp_path, options={"onnx_exporter": "dynamo"}
    )
    assert report["onnx"].status == "ok", report["onnx"].reason
    assert report["onnx"].extra["exporter"] == "dynamo" and report["onnx"].extra["opset"] >= 18
    assert report["onnx"].parity_error <= 1e-4
    et = report["executorch"]
    assert et.status == "ok", et.reason
    assert et.parity_error <= 1e-4 and (tmp_path / "model.pte").stat().st_size > 0


def test_multitask_dict_outputs(multitask_dir, tmp_path):
    report = export_model(multitask_dir, formats="onnx,torchscript", out_dir=tmp_path)
    assert report["onnx"].status == "ok" and report["torchscript"].status == "ok"
    import onnx

    names = [o.name for o in onnx.load(str(tmp_path / "model.onnx")).graph.output]
    assert names == ["classification", "segmentation"]


@pytest.mark.slow
def test_codavision_deeplab_onnx_parity(tmp_path, tiny_models):
    mdir = tiny_models.make_codavision_dir(tmp_path / "coda", size=64)
    report = export_model(mdir, formats="onnx", out_dir=tmp_path / "out")
    r = report["onnx"]
    assert r.status == "ok", r.reason
    assert r.parity_error <= 1e-4


def test_one_failure_does_not_stop_others(signal_dir, tmp_path):
    def boom(ctx):
        raise RuntimeError("exporter exploded")

    EXPORTERS.add("_test_boom", boom, order=25, description="test", default=False)
    try:
        report = export_model(signal_dir, formats="torchscript,_test_boom,onnx", out_dir=tmp_path)
    finally:
        EXPORTERS.remove("_test_boom")
    assert report["_test_boom"].status == "failed"
    assert "exporter exploded" in report["_test_boom"].reason
    assert report["torchscript"].status == "ok" and report["onnx"].status == "ok"
    assert not report.ok


def test_bad_inputs(classifier_dir, tmp_path):
    with pytest.raises(UnknownNameError, match="onnx"):
        export_model(classifier_dir, formats="onx", out_dir=tmp_path)
    with pytest.raises(WeightsError, match="not a visionforge model dir"):
        export_model(tmp_path, formats="onnx")


def test_cli_export(signal_dir, tmp_path, capsys):
    from visionforge.cli.main import main

    code = main(["export", str(signal_dir), "formats=onnx,torchscript", f"out={tmp_path}"])
    assert code == 0
    out = capsys.readouterr().out
    assert "onnx" in out and "ok" in out
    assert (tmp_path / "export_report.json").is_file()
    assert main(["export", str(signal_dir), "fromats=onnx"]) == 2
    assert "did you mean 'formats'" in capsys.readouterr().err

"""``visionforge benchmark``: a table and JSON per backend and batch; bad input exits cleanly."""

from __future__ import annotations

import json

from visionforge.cli.main import main


def test_benchmark_table_and_json(classifier_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")
    out = tmp_path / "bench.json"
    code = main(
        [
            "benchmark",
            str(classifier_dir),
            "backends=eager,onnxruntime,nope",
            "batch=1,2",
            "calls=3",
            "image_size=40x48",
            f"out={out}",
        ]
    )
    text = capsys.readouterr().out
    assert code == 0
    assert "p50 ms" in text and "p99 ms" in text and "x eager" in text and "skipped nope" in text
    report = json.loads(out.read_text())
    rows = [(r["backend"], r["batch"]) for r in report["rows"]]
    assert rows == [("eager", 1), ("onnxruntime", 1), ("eager", 2), ("onnxruntime", 2)]
    assert report["image_size"] == [40, 48] and report["calls"] == 3
    for r in report["rows"]:
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["img_per_s"] > 0
        assert r["ratio"] == 1.0 if r["backend"] == "eager" else r["ratio"] > 0


def test_benchmark_bad_options_exit_without_traceback(classifier_dir, capsys):
    assert main(["benchmark", str(classifier_dir), "calls=2"]) == 2
    err = capsys.readouterr().err
    assert "calls must be >= 3" in err and "Traceback" not in err
    assert main(["benchmark", str(classifier_dir), "batchs=1"]) == 2
    assert "did you mean 'batch'" in capsys.readouterr().err

"""``visionforge pipeline`` on the digits data: 3 families x 2 stages, a failing backbone,
an interrupted run that resumes, the comparison table, presets and CLI errors.

The end-to-end runs share one module fixture (training is the expensive part):

1. ``models=[resnet_mish, mobileone, deit, no_such_model]`` with mobileone's verification
   forced to fail and deit's training interrupted (Ctrl-C): resnet_mish finishes,
   mobileone is recorded as failed at ``verify`` and the next backbone still starts;
   the run stops at deit.
2. The same command again: resnet_mish is skipped (its outputs untouched), mobileone is
   retried and passes, deit runs from the start, ``no_such_model`` fails at ``prepare``;
   the table has one row per backbone and the command exits 1 (one failure).
"""

from __future__ import annotations

import csv
import json

import pytest

from visionforge.cli.main import main
from visionforge.workflows import pipeline_steps
from visionforge.workflows.pipeline_settings import PIPELINE_FAMILIES, parse_pipeline_args

FAMILIES = ["custom_resnet_mish", "custom_mobileone", "custom_deit"]


def _args(root, out):
    return [
        "pipeline", f"data.root={root}", f"models=[{','.join(FAMILIES)},no_such_model]",
        "size=tiny", "head_epochs=1", "finetune_epochs=1", "max_per_class=3",
        "formats=[torchscript,onnx]", "throughput_batch=2", f"out={out}",
        "data.image_size=32", "data.batch_size=32", "trainer.device=cpu",
        "logger.tensorboard=false", "callbacks.progress=false",
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from visionforge.workflows.demo import write_digits_folder

    base = tmp_path_factory.mktemp("pipeline")
    root = write_digits_folder(base / "digits", size=32)
    out = base / "out"
    real_verify, real_train = pipeline_steps.BackboneRun.verify, pipeline_steps.BackboneRun.train

    def verify(self):
        if self.name == "custom_mobileone":
            raise pipeline_steps.StepFailed("forced verification failure")
        return real_verify(self)

    def train(self):
        if self.name == "custom_deit":
            raise KeyboardInterrupt
        return real_train(self)

    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline_steps.BackboneRun, "verify", verify)
    mp.setattr(pipeline_steps.BackboneRun, "train", train)
    try:
        first_code = main(_args(root, out))
        first = json.loads((out / "status.json").read_text())
    finally:
        mp.undo()
    first_mtime = (out / "custom_resnet_mish" / "metrics.json").stat().st_mtime_ns
    second_code = main(_args(root, out))
    second = json.loads((out / "status.json").read_text())
    yield {"out": out, "first_code": first_code, "first": first, "second_code": second_code,
           "second": second, "first_mtime": first_mtime}


@pytest.mark.slow
def test_failure_is_reported_and_the_next_backbone_starts(runs):
    b = runs["first"]["backbones"]
    assert runs["first_code"] == 130  # interrupted at deit
    assert b["custom_resnet_mish"]["status"] == "done"
    assert b["custom_mobileone"]["status"] == "failed"
    assert b["custom_mobileone"]["step"] == "verify"
    assert "forced verification failure" in b["custom_mobileone"]["error"]
    assert b["custom_deit"]["status"] == "interrupted" and b["custom_deit"]["step"] == "train"
    assert "no_such_model" not in b  # never reached


@pytest.mark.slow
def test_resume_skips_finished_and_reruns_the_rest(runs):
    out, b = runs["out"], runs["second"]["backbones"]
    assert (out / "custom_resnet_mish" / "metrics.json").stat().st_mtime_ns == runs["first_mtime"]
    assert b["custom_resnet_mish"]["attempts"] == 1
    assert b["custom_mobileone"]["status"] == "done" and b["custom_mobileone"]["attempts"] == 2
    assert b["custom_deit"]["status"] == "done" and b["custom_deit"]["attempts"] == 2
    assert b["no_such_model"]["status"] == "failed" and b["no_such_model"]["step"] == "prepare"
    assert "no_such_model" in b["no_such_model"]["error"]
    assert runs["second_code"] == 1  # one backbone failed
    logs = sorted(out.glob("training_run_*.log"))
    assert logs and any("skipped" in p.read_text() for p in logs)


@pytest.mark.slow
def test_each_backbone_ran_every_step(runs):
    out = runs["out"]
    for name in FAMILIES:
        d = out / name
        row = runs["second"]["backbones"][name]["row"]
        assert json.loads((d / "verify.json").read_text())["passed"] is True
        assert row["verify"] == "7/7"
        hist = json.loads((d / "train" / "history.json").read_text())
        assert len(hist["head"]["train_loss"]) == 1 and len(hist["finetune"]["train_loss"]) == 1
        assert (d / "train" / "model" / "model.json").is_file()
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["split"] == "test" and 0.0 <= metrics["accuracy"] <= 1.0
        assert any((d / "plots").iterdir())
        assert {f: r["status"] for f, r in row["exports"].items()} == {
            "torchscript": "ok", "onnx": "ok"}
        assert (d / "export" / "export_report.json").is_file()
        assert row["img_per_s"] > 0 and row["params"] > 0
    # the family's scheduler for stage 2: CNNs one-cycle, transformers warmup + cosine
    rows = {n: runs["second"]["backbones"][n]["row"] for n in FAMILIES}
    assert rows["custom_resnet_mish"]["finetune_scheduler"] == "onecycle"
    assert rows["custom_deit"]["finetune_scheduler"] == "warmup_cosine"
    assert rows["custom_deit"]["lr_multiplier"] == pytest.approx(0.8)


@pytest.mark.slow
def test_comparison_table_csv_markdown_html(runs):
    out = runs["out"]
    with open(out / "comparison.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["backbone"] for r in rows] == [*FAMILIES, "no_such_model"]
    for r in rows[:3]:
        assert r["status"] == "done"
        assert 0.0 <= float(r["accuracy"]) <= 1.0 and 0.0 <= float(r["macro-F1"]) <= 1.0
        assert 0.0 <= float(r["AUC"]) <= 1.0 and float(r["img/s"]) > 0
        assert r["export onnx"] == "ok" and r["export torchscript"] == "ok"
    assert rows[3]["status"] == "failed (prepare)" and rows[3]["accuracy"] == ""
    md = (out / "comparison.md").read_text()
    assert "| custom_deit | done |" in md and "no_such_model: failed at step prepare" in md
    page = (out / "comparison.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<tr>") == 5


def test_presets_and_option_parsing():
    settings, overrides = parse_pipeline_args(["data.root=x"])
    assert settings.models == list(PIPELINE_FAMILIES) and len(PIPELINE_FAMILIES) == 15
    assert (settings.head_epochs, settings.finetune_epochs, settings.patience) == (40, 25, 5)
    assert "data.root=x" in overrides
    fast, over = parse_pipeline_args(["preset=fast_dev_run", "models=custom_convnext"])
    assert fast.models == ["custom_convnext"] and "trainer.fast_dev_run=true" in over
    overfit, over = parse_pipeline_args(["preset=overfit_batch", "patience=3"])
    assert "trainer.overfit_batches=1" in over and overfit.patience == 3  # command line wins
    tiny, _ = parse_pipeline_args(["preset=tiny_data"])
    assert tiny.max_per_class == 8 and tiny.size == "tiny"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pipeline", "data.root=/no/such/dir"], "not a folder"),
        (["pipeline", "model=custom_convnext"], "no data"),
        (["pipeline", "head_epoch=3"], "did you mean 'head_epochs'"),
        (["pipeline", "preset=nope"], "unknown preset 'nope'"),
        (["pipeline", "kfold=1"], "kfold=1"),
        (["pipeline", "head_epochs=abc"], "head_epochs='abc' is not a valid int"),
    ],
)
def test_cli_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing written before the options are checked


def test_resume_refuses_other_settings(tmp_path, capsys):
    (tmp_path / "data" / "a").mkdir(parents=True)
    from visionforge.io import atomic_write_json

    atomic_write_json(tmp_path / "out" / "status.json",
                      {"settings": {"head_epochs": 2}, "overrides": [], "backbones": {}})
    code = main(["pipeline", f"data.root={tmp_path / 'data'}", f"out={tmp_path / 'out'}"])
    assert code == 2 and "resume it with the same options" in capsys.readouterr().err


def test_help_lists_pipeline_keys(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "preset=NAME" in text and "fast_dev_run" in text and "comparison table" in text

"""`visionforge train` end to end on tiny real-format data (classification, segmentation, signals)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from visionforge.cli.main import main


def _class_folder(root, n_per_class=12, size=16):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            base = 40 if c == 0 else 210
            img = np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def _seg_pairs(root, n=10, size=32):
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        y, x = rng.integers(0, size // 2, 2)
        mask[y:y + size // 2, x:x + size // 2] = 1
        img = np.where(mask[..., None] == 1, 220, 30).astype(np.uint8).repeat(3, axis=2)
        Image.fromarray(img).save(root / "images" / f"s{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"s{i}.png")
    return root


def _run_dir(project, task):
    dirs = sorted((project / task).iterdir())
    assert len(dirs) == 1
    return dirs[0]


@pytest.mark.slow
def test_train_classification_folder_writes_complete_run_dir_and_config_reproduces(tmp_path, capsys):
    data = _class_folder(tmp_path / "data")
    project = tmp_path / "runs"
    args = ["train", f"data.root={data}", "model=small_cnn", "model.kwargs.width=8",
            "data.image_size=16", "data.batch_size=8", "trainer.max_epochs=2", "trainer=cpu",
            f"project_dir={project}", "data.augment=false"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "run dir" in out and "test accuracy" in out
    run = _run_dir(project, "classification")
    for name in ("config.yaml", "splits.csv", "history.json", "metrics.json", "report.html",
                 "model/model.json", "model/model.safetensors", "checkpoints/last.ckpt",
                 "plots/confusion_matrix.png", "logs/metrics.csv"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["split"] == "test" and 0.0 <= metrics["accuracy"] <= 1.0
    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["class_names"] == ["dark", "light"] and meta["name"] == "small_cnn"
    assert meta["preprocessing"]["mean"] is not None
    # re-running the saved config trains again into a new run dir with the same settings
    assert main(["train", "--config", str(run / "config.yaml")]) == 0
    runs = sorted(p.name for p in (project / "classification").iterdir())
    assert runs == ["exp", "exp2"]
    first = (run / "config.yaml").read_text()
    second = (project / "classification" / "exp2" / "config.yaml").read_text()
    assert first == second
    h1 = json.loads((run / "history.json").read_text())
    h2 = json.loads((project / "classification" / "exp2" / "history.json").read_text())
    assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-4)  # same seed, same run


@pytest.mark.slow
def test_train_segmentation_pairs_detects_task(tmp_path, capsys):
    data = _seg_pairs(tmp_path / "pairs")
    project = tmp_path / "runs"
    assert main(["train", f"data.root={data}", "model.kwargs.decoder_channels=[16,16,8,8]",
                 "data.image_size=32", "data.batch_size=4", "trainer.max_epochs=1", "trainer=cpu",
                 f"project_dir={project}"]) == 0
    out = capsys.readouterr().out
    assert "detected segmentation data" in out and "model=unet" in out
    run = _run_dir(project, "segmentation")
    metrics = json.loads((run / "metrics.json").read_text())
    assert "mean_iou" in metrics and len(metrics["per_class_iou"]) == 2
    assert (run / "model" / "model.json").is_file() and (run / "report.html").is_file()


@pytest.mark.slow
def test_train_osdb_signals(tmp_path, osdb_events):
    folder = tmp_path / "osdb"
    folder.mkdir()
    (folder / "events.json").write_text(json.dumps(osdb_events()))
    project = tmp_path / "runs"
    assert main(["train", f"data.root={folder}", "trainer.max_epochs=3", "trainer=cpu",
                 "data.batch_size=8", f"project_dir={project}", "data.splits=[0.6,0.2,0.2]"]) == 0
    run = _run_dir(project, "signal")
    meta = json.loads((run / "model" / "model.json").read_text())
    assert meta["name"] == "deepepicnn" and meta["input_size"] == [1, 750]
    splits = (run / "splits.csv").read_text().splitlines()[1:]
    by_event = {}
    for row in splits:
        event, _, split = row.split(",")
        by_event.setdefault(event, set()).add(split)
    assert all(len(s) == 1 for s in by_event.values())  # no event on both sides of a split


@pytest.mark.slow
def test_train_nntraining2_json_config(tmp_path, capsys, osdb_events):
    (tmp_path / "events.json").write_text(json.dumps(osdb_events(5, 5)))
    config = {
        "osdbConfig": {"osdbFiles": ["events.json"]},
        "dataProcessing": {"window": 250, "step": 125, "testProp": 0.3, "validationProp": 0.2},
        "modelConfig": {"framework": "pytorch", "modelClass": "nnTraining2.deepEpiCnnModel.DeepEpiCnnModel",
                        "epochs": 2, "batchSize": 16, "lrStart": 1e-3},
        "randomSeed": 0,
    }
    (tmp_path / "nnConfig.json").write_text(json.dumps(config))
    assert main(["train", "--config", str(tmp_path / "nnConfig.json"),
                 f"project_dir={tmp_path / 'runs'}"]) == 0
    results = json.loads((_run_dir(tmp_path / "runs", "signal") / "testResults.json").read_text())
    assert {"tpr", "fpr", "tp", "fn"} <= set(results["event"])
    assert "tpr=" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "data.root=/no/such/folder"], "does not exist"),
        (["train", "model=resnt18", "data.root=."], "Did you mean"),
        (["train", "trainer.max_epochs=ten"], "trainer.max_epochs"),
        (["train", "--config", "/no/such.yaml"], "not found"),
        (["train", "model=small_cnn", "model.kwargs.widht=8", "data.root=."],
         "model 'small_cnn' rejected its arguments (width=32, depth=3, widht=8"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    if "data.root=." in args:
        _class_folder(tmp_path / "d", n_per_class=3)
        args = [a.replace("data.root=.", f"data.root={tmp_path / 'd'}") for a in args]
    args = args + [f"project_dir={tmp_path / 'runs'}"]
    proc = subprocess.run([sys.executable, "-m", "visionforge", *args], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    error_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("visionforge: error")]
    assert len(error_lines) == 1 and expected in error_lines[0]


def test_run_dirs_never_overwrite(tmp_path):
    from visionforge.errors import ConfigError
    from visionforge.workflows.run_dir import new_run_dir

    assert new_run_dir(tmp_path, "classification").name == "exp"
    assert new_run_dir(tmp_path, "classification").name == "exp2"
    assert new_run_dir(tmp_path, "classification", "mine").name == "mine"
    assert new_run_dir(tmp_path, "classification", "mine").name == "mine2"
    with pytest.raises(ConfigError):
        new_run_dir(tmp_path, "classification", "../escape")


def test_detect_layout(tmp_path):
    from visionforge.errors import DataError
    from visionforge.workflows.detect import detect_layout

    assert detect_layout(_class_folder(tmp_path / "c", n_per_class=1)) == "folder"
    assert detect_layout(_seg_pairs(tmp_path / "s", n=1)) == "segmentation"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "e.json").write_text("[]")
    assert detect_layout(tmp_path / "o") == "osdb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell"):
        detect_layout(tmp_path / "empty")

"""MLflow with a real local SQLite store: one store per project, named runs, params,
test metrics and artifacts read back."""

from __future__ import annotations

import json

import pytest
from engine_testkit import DictDataset
from torch.utils.data import DataLoader

from visionforge.config.settings import TrainSettings
from visionforge.engine import Trainer
from visionforge.engine.tracking import default_mlflow_uri, log_run_results, project_dir_of


def test_project_dir_of_run_layout(tmp_path):
    assert project_dir_of(tmp_path / "runs" / "segmentation" / "exp2") == (tmp_path / "runs")
    assert project_dir_of(tmp_path / "elsewhere" / "run") == (tmp_path / "elsewhere").resolve()
    uri = default_mlflow_uri(tmp_path / "runs" / "signal" / "x")
    assert uri == f"sqlite:///{(tmp_path / 'runs').resolve() / 'mlflow.db'}"


def _train(run_dir, fast):
    from visionforge.models import create_model

    ds = DictDataset(n=16, size=32)
    model = create_model("small_cnn", num_classes=2, width=8, depth=2)
    trainer = Trainer(model, max_epochs=2, loggers=("csv", "mlflow"), output_dir=run_dir, **fast)
    hist = trainer.train(DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=8))
    return trainer, hist


def test_engine_mlflow_one_store_per_project(tmp_path, fast):
    mlflow = pytest.importorskip("mlflow")
    project = tmp_path / "runs"
    run_a = project / "classification" / "alpha"
    trainer, hist = _train(run_a, fast)
    # what the train workflow writes after training, then hands to log_run_results
    (run_a / "config.yaml").write_text("task: classification\ndata:\n  root: /d\n  batch_size: 8\n")
    metrics = {"split": "test", "task": "classification", "accuracy": 0.75, "f1_macro": 0.5}
    (run_a / "metrics.json").write_text(json.dumps(metrics))
    (run_a / "report.html").write_text("<html></html>")
    (run_a / "plots").mkdir()
    (run_a / "plots" / "confusion_matrix.png").write_bytes(b"\x89PNG")
    assert log_run_results(trainer, run_a) == 1
    _train(project / "classification" / "beta", fast)

    assert not (run_a / "mlflow.db").exists() and (project / "mlflow.db").is_file()
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    exp = client.get_experiment_by_name("visionforge")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"alpha", "beta"}  # both runs in one store, named after their dirs
    run = runs["alpha"]
    val = [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert val == pytest.approx(hist["val_loss"])
    assert run.data.params["optimizer"] == TrainSettings().optimizer  # the one default
    assert run.data.params["data.root"] == "/d" and run.data.params["data.batch_size"] == "8"
    assert run.data.metrics["test_accuracy"] == 0.75 and run.data.metrics["test_f1_macro"] == 0.5
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "config.yaml", "metrics.json", "plots", "model"} <= names
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/confusion_matrix.png"}
    assert (project / "mlartifacts").is_dir()


def test_log_run_results_without_mlflow_logger_is_a_no_op(tmp_path):
    assert log_run_results([], tmp_path) == 0

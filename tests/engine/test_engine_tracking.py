"""MLflow with a real local SQLite store: metrics, params and the model dir read back."""

from __future__ import annotations

import pytest
from engine_testkit import DictDataset
from torch.utils.data import DataLoader

from visionforge.config.settings import TrainSettings
from visionforge.engine import Trainer


def test_engine_mlflow_local_store(tmp_path, fast):
    mlflow = pytest.importorskip("mlflow")
    from visionforge.models import create_model

    ds = DictDataset(n=16, size=32)
    model = create_model("resnet18", num_classes=2)
    trainer = Trainer(model, max_epochs=2, loggers=("csv", "mlflow"), output_dir=tmp_path, **fast)
    hist = trainer.train(DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=8))
    uri = f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("visionforge")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    val = [m.value for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert val == pytest.approx(hist["val_loss"])
    assert run.data.params["optimizer"] == TrainSettings().optimizer  # the one default
    names = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/model.json", "model/model.safetensors"} <= names

"""Evaluator on each task, metrics.json + plots written, Experiment with the engine's Trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from visionforge.errors import DataError
from visionforge.evaluation import Evaluator


def _png_ok(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_classification_evaluator_dict_batches(tmp_path, cls_batches, tiny):
    model = tiny.Classifier()
    ev = Evaluator(model, class_names=["a", "b", "c"], num_samples=5)
    r = ev.evaluate(cls_batches)
    assert r["task"] == "classification" and r["num_samples"] == 12
    with torch.no_grad():
        logits = torch.cat([model(b["image"]) for b in cls_batches])
    y = torch.cat([b["label"] for b in cls_batches]).numpy()
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, logits.argmax(1).numpy()))
    written = ev.save(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == r["accuracy"]
    assert {"confusion_matrix", "roc_curves", "sample_predictions"} <= set(written)
    assert all(_png_ok(p) for k, p in written.items() if k != "metrics")


def test_segmentation_evaluator_tuple_batches(tmp_path, seg_batches, tiny):
    ev = Evaluator(tiny.Segmenter(), ignore_index=None)
    r = ev.evaluate(seg_batches)
    assert r["task"] == "segmentation" and 0 <= r["mean_iou"] <= 1
    assert r["num_pixels"] == 6 * 16 * 16
    written = ev.write_plots(tmp_path / "plots")
    assert {"confusion_matrix", "per_class_iou", "sample_segmentations"} <= set(written)
    assert all(_png_ok(p) for p in written.values())


def test_signal_evaluator_event_metrics(tmp_path, tiny):
    g = torch.Generator().manual_seed(3)
    batches = []
    for i in range(4):
        x = torch.rand(6, 3, 40, generator=g)
        y = torch.tensor([i % 2] * 6)
        batches.append((x, y, [f"ev{i}_{j // 3}" for j in range(6)]))
    ev = Evaluator(tiny.Signal(), threshold=0.5)
    r = ev.evaluate(batches)
    assert r["task"] == "signal"
    sig = r["signal"]
    assert sig["event"]["num_events"] == 8
    assert len(sig["sweep"]) == 9 and "event" in sig["sweep"][0]
    written = ev.save(tmp_path)
    assert {"event_probabilities", "threshold_sweep"} <= set(written)
    assert all(_png_ok(p) for k, p in written.items() if k != "metrics")


def test_multitask_evaluator(tmp_path, tiny):
    g = torch.Generator().manual_seed(4)
    batches = [
        {
            "image": torch.rand(2, 3, 16, 16, generator=g),
            "label": torch.tensor([0, 2]),
            "mask": torch.randint(0, 2, (2, 16, 16), generator=g),
        }
    ]
    ev = Evaluator(tiny.Multitask())
    r = ev.evaluate(batches)
    assert r["task"] == "multitask"
    assert "accuracy" in r["classification"] and "mean_iou" in r["segmentation"]
    written = ev.save(tmp_path)
    assert {"confusion_matrix", "confusion_matrix_segmentation", "per_class_iou"} <= set(written)


def test_evaluator_errors(tiny):
    ev = Evaluator(tiny.Classifier())
    with pytest.raises(DataError, match="no batches"):
        ev.evaluate([])
    with pytest.raises(DataError, match="no targets"):
        ev.evaluate([{"image": torch.rand(2, 3, 8, 8)}])
    with pytest.raises(DataError, match="image"):
        ev.evaluate([{"pixels": torch.rand(2, 3, 8, 8)}])


@pytest.mark.slow
def test_experiment_with_engine_trainer(tmp_path, cls_batches, tiny):
    pytest.importorskip("visionforge.engine")
    from torch.utils.data import DataLoader, TensorDataset

    from visionforge.engine import Trainer
    from visionforge.evaluation import Experiment

    x = torch.cat([b["image"] for b in cls_batches])
    y = torch.cat([b["label"] for b in cls_batches])
    train = DataLoader(TensorDataset(x, y), batch_size=4)
    val = DataLoader(TensorDataset(x, y), batch_size=6)
    model = tiny.Classifier()
    trainer = Trainer(
        model,
        max_epochs=5,
        output_dir=tmp_path / "ignored",
        progress=False,
        save_model=False,
        early_stopping_patience=None,
    )
    hist = Experiment(model, trainer, Evaluator(model), 2, tmp_path / "run").run(train, val)
    run = tmp_path / "run"
    assert len(hist["train_loss"]) == 2 and len(hist["val_loss"]) == 2
    assert {"last", "best"} <= set(hist["checkpoints"])
    assert all((run / "checkpoints" / f"{k}.ckpt").is_file() for k in ("last", "best"))
    assert hist["final_metrics"]["num_samples"] == 12
    assert json.loads((run / "metrics.json").read_text())["accuracy"] == pytest.approx(
        hist["final_metrics"]["accuracy"]
    )
    assert (run / "report.html").is_file() and (run / "plots" / "training_curves.png").is_file()
    assert np.isfinite(hist["train_loss"]).all()

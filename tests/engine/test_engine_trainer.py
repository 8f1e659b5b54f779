"""Trainer facade: tasks, validation schedule, early stopping, accumulation, EMA, model dir."""

from __future__ import annotations

import json

import pytest
import torch
from engine_testkit import DictDataset, TinyCNN, TinyMulti, TinySeg, TinySignal, cls_tensors
from torch.utils.data import DataLoader, TensorDataset

from visionforge.engine import Trainer
from visionforge.engine.checkpoint import load_checkpoint, model_state_from_checkpoint


def test_engine_classification_train_evaluate_predict(tmp_path, cls_loaders, fast):
    train, val = cls_loaders
    model = TinyCNN()
    trainer = Trainer(model, max_epochs=3, lr=0.02, output_dir=tmp_path, **fast)
    hist = trainer.train(train, val)
    assert trainer.module.task == "classification"
    assert len(hist["train_loss"]) == 3 and len(hist["val_loss"]) == 3 and len(hist["lr"]) == 3
    assert set(hist["val_metrics"]) == {"accuracy", "f1_macro"}
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    res = trainer.evaluate(val)
    assert set(res) >= {"loss", "accuracy", "f1_macro"} and 0 <= res["accuracy"] <= 1
    logits = trainer.predict(val)
    assert logits.shape == (48, 2)
    # restore_best: the model holds best.ckpt's weights; evaluate agrees with the best val loss
    assert res["loss"] == pytest.approx(min(hist["val_loss"]), abs=1e-5)
    for name in (
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "history.json",
        "logs/metrics.csv",
    ):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "logs").glob("events.out.tfevents*"))
    assert json.loads((tmp_path / "history.json").read_text())["train_loss"] == hist["train_loss"]
    ckpt = load_checkpoint(tmp_path / "checkpoints/last.ckpt")  # weights_only=True works
    assert ckpt["epoch"] == 2


def test_engine_segmentation_dict_batches(tmp_path, fast):
    ds = DictDataset(n=16, seg=True, cls=False)
    trainer = Trainer(TinySeg(3), max_epochs=2, output_dir=tmp_path, **fast)
    hist = trainer.train(DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=8))
    assert trainer.module.task == "segmentation"
    assert {"mean_iou", "dice", "pixel_accuracy"} <= set(hist["val_metrics"])
    assert trainer.predict(DataLoader(ds, batch_size=8)).shape == (16, 3, 16, 16)


def test_engine_signal_tuples_with_event_ids(tmp_path, fast):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 3, 50, generator=g)
    y = (x[:, 0].mean(1) > 0).long()
    ds = TensorDataset(x, y, torch.arange(24))  # (window, label, event_id)
    trainer = Trainer(TinySignal(), max_epochs=2, output_dir=tmp_path, **fast)
    trainer.train(DataLoader(ds, batch_size=8, shuffle=True), DataLoader(ds, batch_size=8))
    assert trainer.module.task == "signal"
    assert trainer.input_size == [3, 50]
    assert "accuracy" in trainer.evaluate(DataLoader(ds, batch_size=8))


def test_engine_multitask(tmp_path, fast):
    ds = DictDataset(n=16, seg=True, cls=True)
    trainer = Trainer(TinyMulti(), max_epochs=2, output_dir=tmp_path, **fast)
    hist = trainer.train(DataLoader(ds, batch_size=8), DataLoader(ds, batch_size=8))
    assert trainer.module.task == "multitask"
    assert {"cls_accuracy", "seg_mean_iou", "seg_dice"} <= set(hist["val_metrics"])
    out = trainer.predict(DataLoader(ds, batch_size=8))
    assert out["classification"].shape == (16, 2) and out["segmentation"].shape == (16, 3, 16, 16)


def test_engine_val_check_interval_and_final_validation(tmp_path, cls_loaders, fast):
    train, val = cls_loaders  # 6 batches per epoch
    hist = Trainer(
        TinyCNN(), max_epochs=2, val_check_interval=4, output_dir=tmp_path / "a", **fast
    ).train(train, val)
    assert hist["val_step"] == [4, 8, 12]  # every 4 training steps across epochs
    # validation_freq larger than the run: validation still runs once at the end
    hist = Trainer(
        TinyCNN(), max_epochs=2, validation_freq=5, output_dir=tmp_path / "b", **fast
    ).train(train, val)
    assert len(hist["val_loss"]) == 1 and len(hist["train_loss"]) == 2


@pytest.mark.parametrize("mode", ["min", "max"])
def test_engine_early_stopping(tmp_path, cls_loaders, fast, mode):
    train, val = cls_loaders
    # lr tiny: the monitored value stays flat, so patience 1 stops after 2 validations
    monitor = "val_loss" if mode == "min" else "val_accuracy"
    hist = Trainer(
        TinyCNN(),
        max_epochs=20,
        lr=1e-9,
        monitor=monitor,
        mode=mode,
        early_stopping_patience=1,
        output_dir=tmp_path,
        **fast,
    ).train(train, val)
    assert len(hist["train_loss"]) < 20


def test_engine_accumulate_and_clip(tmp_path, cls_loaders, fast):
    train, val = cls_loaders  # 6 batches -> 3 optimizer steps per epoch with accumulation 2
    trainer = Trainer(
        TinyCNN(),
        max_epochs=1,
        accumulate_grad_batches=2,
        optimizer="sgd",
        gradient_clip_value=1e-3,
        lr=1.0,
        output_dir=tmp_path,
        **fast,
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train(train, val)
    assert trainer.pl_trainer.global_step == 3
    # clipping by norm: 3 SGD(momentum .9) steps of grad-norm <= 1e-3 move weights very little
    delta = torch.sqrt(
        sum(((trainer.model.state_dict()[k] - v) ** 2).sum() for k, v in before.items())
    )
    assert 0 < float(delta) < 3 * 1e-3 * 3


def test_engine_ema_changes_saved_weights(tmp_path, cls_loaders, fast):
    train, val = cls_loaders
    common = dict(max_epochs=2, lr=0.05, restore_best=False, **fast)
    m1, m2 = TinyCNN(), TinyCNN()
    m2.load_state_dict(m1.state_dict())
    Trainer(m1, output_dir=tmp_path / "plain", **common).train(train, val)
    Trainer(m2, output_dir=tmp_path / "ema", ema=True, ema_decay=0.9, **common).train(train, val)
    w1 = model_state_from_checkpoint(tmp_path / "plain/checkpoints/last.ckpt")
    w2 = model_state_from_checkpoint(tmp_path / "ema/checkpoints/last.ckpt")
    assert not torch.equal(w1["head.weight"], w2["head.weight"])
    # the model left in memory is the averaged one, which is what the checkpoint holds
    assert torch.equal(m2.state_dict()["head.weight"], w2["head.weight"])


def test_engine_determinism_same_seed_same_history(tmp_path, cls_loaders, fast):
    train, val = cls_loaders
    hists = []
    for i in range(2):
        model = TinyCNN()
        torch.manual_seed(123)  # same init
        model = TinyCNN()
        hists.append(
            Trainer(
                model, max_epochs=2, deterministic=True, output_dir=tmp_path / str(i), **fast
            ).train(train, val)
        )
    assert hists[0]["train_loss"] == hists[1]["train_loss"]
    assert hists[0]["val_loss"] == hists[1]["val_loss"]


def test_engine_model_dir_and_datamodule(tmp_path, fast):
    import lightning.pytorch as pl

    from visionforge.models import create_model, load_model

    class DM(pl.LightningDataModule):
        def setup(self, stage=None):
            self.ds = DictDataset(n=16, size=32)

        def train_dataloader(self):
            return DataLoader(self.ds, batch_size=8, shuffle=True)

        def val_dataloader(self):
            return DataLoader(self.ds, batch_size=8)

    model = create_model("resnet18", num_classes=2, in_chans=3)
    trainer = Trainer(model, max_epochs=1, output_dir=tmp_path, **fast)
    trainer.train(DM())
    meta = json.loads((tmp_path / "model/model.json").read_text())
    assert meta["task"] == "classification" and meta["input_size"] == [3, 32, 32]
    assert meta["class_names"] == ["neg", "pos"] and "best_val_loss" in meta["metrics"]
    loaded = load_model(tmp_path / "model")
    x = torch.rand(2, 3, 32, 32)
    model.eval()
    assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_engine_fast_dev_run_and_overfit(tmp_path, cls_loaders, fast):
    train, val = cls_loaders
    hist = Trainer(TinyCNN(), fast_dev_run=True, output_dir=tmp_path / "f", **fast).train(
        train, val
    )
    assert len(hist["train_loss"]) == 1
    x, y = cls_tensors(8)
    one = DataLoader(TensorDataset(x, y), batch_size=8)
    hist = Trainer(
        TinyCNN(),
        max_epochs=60,
        lr=0.05,
        overfit_batches=1,
        early_stopping_patience=None,
        output_dir=tmp_path / "o",
        **fast,
    ).train(one, one)
    assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]

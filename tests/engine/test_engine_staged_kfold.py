"""Two-stage training and k-fold cross-validation."""

from __future__ import annotations

import json

import torch
from engine_testkit import TinyCNN, cls_tensors
from torch.utils.data import TensorDataset

from visionforge.engine import run_kfold, train_staged
from visionforge.engine.checkpoint import model_state_from_checkpoint


def test_engine_staged_freezes_backbone_then_unfreezes(tmp_path, cls_loaders, fast):
    train, val = cls_loaders
    model = TinyCNN()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_staged(
        model,
        train,
        val,
        head_epochs=2,
        finetune_epochs=2,
        head_lr=0.05,
        finetune_lr=0.01,
        output_dir=tmp_path,
        restore_best=False,
        **fast,
    )
    head = model_state_from_checkpoint(tmp_path / "stage1_head/checkpoints/last.ckpt")
    fine = model_state_from_checkpoint(tmp_path / "stage2_finetune/checkpoints/last.ckpt")
    for k in start:
        if k.startswith("backbone."):
            assert torch.equal(head[k], start[k]), f"{k} changed while frozen"
            assert not torch.equal(fine[k], head[k]), f"{k} not trained in stage 2"
        else:
            assert not torch.equal(head[k], start[k]), f"head {k} not trained in stage 1"
    assert all(p.requires_grad for p in model.parameters())
    assert result["best_stage"] in ("head", "finetune")
    assert len(result["head"]["train_loss"]) == 2 and len(result["finetune"]["train_loss"]) == 2
    assert (tmp_path / "history.json").is_file()


def test_engine_kfold_summary(tmp_path, fast, capsys):
    x, y = cls_tensors(30)
    ds = TensorDataset(x, y)
    summary = run_kfold(TinyCNN, ds, k=3, batch_size=8, output_dir=tmp_path, max_epochs=1, **fast)
    saved = json.loads((tmp_path / "kfold_summary.json").read_text())
    assert saved["k"] == 3 and len(saved["folds"]) == 3
    assert sum(f["n_test"] for f in saved["folds"]) == 30
    accs = [f["metrics"]["accuracy"] for f in saved["folds"]]
    assert abs(saved["mean"]["accuracy"] - sum(accs) / 3) < 1e-9
    assert "mean ± std" in capsys.readouterr().out
    assert summary["std"]["accuracy"] >= 0


def test_engine_kfold_nested(tmp_path, fast):
    x, y = cls_tensors(24)
    summary = run_kfold(
        TinyCNN,
        TensorDataset(x, y),
        k=2,
        nested=True,
        inner_k=2,
        batch_size=8,
        output_dir=tmp_path,
        max_epochs=1,
        verbose=False,
        **fast,
    )
    assert all("inner_fold_chosen" in f for f in summary["folds"])
    assert (tmp_path / "fold_0/inner_1/checkpoints/last.ckpt").is_file()


def test_engine_staged_saves_the_best_stage_as_model_dir(tmp_path, cls_loaders, fast):
    from visionforge.models import create_model, load_model

    train, val = cls_loaders
    model = create_model("small_cnn", num_classes=2, width=8, depth=2)
    result = train_staged(
        model, train, val, head_epochs=1, finetune_epochs=1, output_dir=tmp_path, **fast
    )
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["metrics"]["best_stage"] == result["best_stage"]
    assert meta["metrics"]["best_val_loss"] == result["best_score"]
    stage_dir = {"head": "stage1_head", "finetune": "stage2_finetune"}[result["best_stage"]]
    best = model_state_from_checkpoint(next((tmp_path / stage_dir).rglob("best*.ckpt")))
    loaded = load_model(tmp_path / "model")
    for k, v in best.items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_engine_kfold_staged(tmp_path, fast):
    x, y = cls_tensors(24)
    summary = run_kfold(
        TinyCNN,
        TensorDataset(x, y),
        k=2,
        staged=True,
        staged_kwargs={"head_epochs": 1, "finetune_epochs": 1},
        batch_size=8,
        output_dir=tmp_path,
        verbose=False,
        **fast,
    )
    assert summary["staged"] and len(summary["folds"]) == 2
    for i in range(2):
        assert (tmp_path / f"fold_{i}" / "stage1_head").is_dir()
        assert (tmp_path / f"fold_{i}" / "stage2_finetune").is_dir()
    assert 0.0 <= summary["mean"]["accuracy"] <= 1.0

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

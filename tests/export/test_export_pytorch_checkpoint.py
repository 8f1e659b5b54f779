"""The pytorch exporter copies the training checkpoint whose weights are the model dir's."""

from __future__ import annotations

import shutil

import torch

from visionforge.export import export_model
from visionforge.models import load_model


def test_pytorch_export_picks_the_checkpoint_matching_the_model_dir(tmp_path, classifier_dir):
    run = tmp_path / "run"
    shutil.copytree(classifier_dir, run / "model")
    model = load_model(run / "model")
    state = {f"model.{k}": v.clone() for k, v in model.state_dict().items()}
    other = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in state.items()}
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": state, "epoch": 3}, run / "checkpoints" / "best.ckpt")
    torch.save({"state_dict": other, "epoch": 5}, run / "checkpoints" / "last.ckpt")
    result = export_model(run / "model", formats="pytorch", out_dir=tmp_path / "out")["pytorch"]
    assert result.status == "ok", result.reason
    assert result.extra["checkpoint_note"].endswith("best.ckpt")
    # with neither checkpoint matching (e.g. an EMA model dir) the weights are written instead
    torch.save({"state_dict": other, "epoch": 3}, run / "checkpoints" / "best.ckpt")
    result = export_model(run / "model", formats="pytorch", out_dir=tmp_path / "out2")["pytorch"]
    assert result.status == "ok" and "hold other weights" in result.extra["checkpoint_note"]

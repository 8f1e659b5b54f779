"""Integration: real BasicMotions recordings through the generic loader, a registry 1-D CNN,
and the engine's Trainer reach >= 95 % test accuracy."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from visionforge.data.signals import SignalDataset, load_basic_motions


@pytest.mark.slow
def test_data_basicmotions_resnet1d_reaches_95_percent(tmp_path):
    engine = pytest.importorskip("visionforge.engine", reason="engine not available")
    from visionforge.models import create_model

    x, y, names = load_basic_motions("train")
    xt, yt, _ = load_basic_motions("test")
    # per-channel standardisation with training statistics only
    mean = x.mean(axis=(0, 2), keepdims=True)
    std = x.std(axis=(0, 2), keepdims=True) + 1e-6
    train = SignalDataset((x - mean) / std, y, class_names=names)
    test = SignalDataset((xt - mean) / std, yt, class_names=names)
    assert (train.channels, train.length, train.num_classes) == (6, 100, 4)

    torch.manual_seed(0)
    model = create_model("resnet1d", in_chans=6, num_classes=4, filters=[16, 32, 32])
    g = torch.Generator().manual_seed(0)
    trainer = engine.Trainer(
        model,
        max_epochs=50,
        lr=1e-3,
        output_dir=tmp_path / "run",
        seed=0,
        early_stopping_patience=None,
        restore_best=False,
        class_names=names,
        progress=False,
        save_model=False,
        loggers=(),
    )
    trainer.train(DataLoader(train, batch_size=10, shuffle=True, generator=g))
    metrics = trainer.evaluate(DataLoader(test, batch_size=40))
    assert metrics["accuracy"] >= 0.95, metrics

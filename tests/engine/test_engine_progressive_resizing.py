"""Progressive resizing: the model trains at the scheduled size per epoch, from Python and config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from engine_testkit import TinyCNN
from PIL import Image

from visionforge.engine import Trainer
from visionforge.engine.callbacks.resizing import ProgressiveResizing, parse_schedule
from visionforge.errors import ConfigError


class SizeRecorder(TinyCNN):
    def __init__(self) -> None:
        super().__init__(num_classes=2)
        self.train_sizes: list[tuple[int, int]] = []

    def forward(self, x):
        if self.training:
            self.train_sizes.append(tuple(x.shape[-2:]))
        return super().forward(x)


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(6):
            p = tmp_path / "data" / cls / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(p)
    return tmp_path / "data"


def test_schedule_forms_and_errors():
    assert parse_schedule({0: 8, 2: 16}) == {0: [8, 8], 2: [16, 16]}
    assert parse_schedule("0:8, 2:12x16") == {0: [8, 8], 2: [12, 16]}
    assert parse_schedule([[0, 8], [1, 16]]) == {0: [8, 8], 1: [16, 16]}
    assert parse_schedule({"0:8": None, "2:16": None}) == {0: [8, 8], 2: [16, 16]}
    with pytest.raises(ConfigError, match="epoch 0"):
        parse_schedule({1: 8})
    with pytest.raises(ConfigError, match="image size"):
        parse_schedule({0: -3})
    assert ProgressiveResizing({0: 8, 2: 16}).size_for(3) == [16, 16]


def test_datamodule_trains_at_scheduled_sizes(folder, tmp_path, fast):
    from visionforge.data.datamodules import ImageFolderDataModule

    dm = ImageFolderDataModule(folder, batch_size=4, image_size=16, num_workers=0)
    model = SizeRecorder()
    trainer = Trainer(model, max_epochs=3, output_dir=tmp_path / "run", loggers=[],
                      save_model=False, progressive_resizing="0:8,2:16", **fast)
    trainer.train(dm)
    per_epoch = len(model.train_sizes) // 3
    assert set(model.train_sizes[: 2 * per_epoch]) == {(8, 8)}
    assert set(model.train_sizes[2 * per_epoch:]) == {(16, 16)}


def test_plain_loader_batches_are_resized(tmp_path, fast):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.rand(16, 3, 12, 12), torch.arange(16) % 2
    model = SizeRecorder()
    cb = ProgressiveResizing({0: 6, 1: 12})
    Trainer(model, max_epochs=2, output_dir=tmp_path / "run", loggers=[], save_model=False,
            callbacks=[cb], **fast).train(DataLoader(TensorDataset(x, y), batch_size=8))
    assert model.train_sizes == [(6, 6)] * 2 + [(12, 12)] * 2
    assert [s for _, s in cb.sizes] == [[6, 6], [12, 12]]


def test_config_key_builds_the_callback():
    from visionforge.config.loader import compose_config
    from visionforge.config.settings import settings_from_config
    from visionforge.engine.callbacks import standard_callbacks

    cfg = compose_config(["callbacks.progressive_resizing={0: 32, 3: 64}"], env={}).cfg
    settings = settings_from_config(cfg)
    cbs = standard_callbacks(settings, Path("."), has_val=False)
    resizing = [c for c in cbs if isinstance(c, ProgressiveResizing)]
    assert resizing and resizing[0].schedule == {0: [32, 32], 3: [64, 64]}


def test_resumed_run_gets_the_size_of_its_epoch(folder):
    """A run resumed mid-epoch skips that epoch's start hook; the fit start sets the size."""
    from types import SimpleNamespace

    from visionforge.data.datamodules import ImageFolderDataModule

    dm = ImageFolderDataModule(folder, batch_size=4, image_size=16, num_workers=0)
    cb = ProgressiveResizing({0: 8, 2: 12, 4: 16})
    cb.on_train_start(SimpleNamespace(current_epoch=3, train_dataloader=dm.train_dataloader()),
                      None)
    assert cb.size == [12, 12]
    assert next(iter(dm.train_dataloader()))["image"].shape[-2:] == (12, 12)

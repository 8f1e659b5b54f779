"""2-process DDP on CPU and the real-data (sklearn digits) integration test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

CHILD = Path(__file__).with_name("engine_child.py")


@pytest.mark.slow
def test_engine_ddp_two_cpu_processes(tmp_path):
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available here")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run(
        [sys.executable, str(CHILD), "ddp", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert r0 == r1  # identical weights (hash) and history length on both ranks
    assert (tmp_path / "writes_rank0.txt").is_file()
    assert not (tmp_path / "writes_rank1.txt").exists()
    assert (tmp_path / "checkpoints/last.ckpt").is_file()


class DigitsCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(64, 10)

    def forward(self, x):
        return self.head(self.features(x))


@pytest.mark.slow
def test_engine_digits_reaches_98_percent(tmp_path):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from visionforge import Trainer

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    y = torch.tensor(digits.target)
    tr, te = train_test_split(range(len(y)), test_size=0.2, stratify=digits.target, random_state=0)
    train = DataLoader(TensorDataset(x[tr], y[tr]), batch_size=32, shuffle=True)
    test = DataLoader(TensorDataset(x[te], y[te]), batch_size=256)
    trainer = Trainer(
        DigitsCNN(),
        max_epochs=6,
        lr=3e-3,
        optimizer="adamw",
        scheduler="onecycle",
        seed=0,
        device="cpu",
        progress=False,
        output_dir=tmp_path,
        early_stopping_patience=None,
        monitor="val_accuracy",
        class_names=[str(i) for i in range(10)],
    )
    trainer.train(train, test)
    acc = trainer.evaluate(test)["accuracy"]
    assert acc >= 0.98, acc  # time is measured in benchmarks/, never asserted in a test

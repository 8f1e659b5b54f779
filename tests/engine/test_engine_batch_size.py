"""data.batch_size=auto: Lightning's batch-size finder, capped, weights restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from visionforge.config.loader import compose_config
from visionforge.engine import Trainer
from visionforge.engine.batch_size import find_batch_size
from visionforge.errors import ConfigError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 3))


def _ds(n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 3, (n,)))


def test_finder_doubles_up_to_the_cap_and_restores_the_weights(tmp_path):
    model = _net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, device="cpu", progress=False, output_dir=tmp_path)
    assert find_batch_size(trainer, _ds(64), init_val=4, max_val=16, steps_per_trial=1) == 16
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_finder_never_exceeds_the_dataset(tmp_path):
    trainer = Trainer(_net(), device="cpu", progress=False, output_dir=tmp_path)
    assert find_batch_size(trainer, _ds(10), init_val=4, steps_per_trial=1) <= 10


def test_config_accepts_auto_and_rejects_other_words():
    assert compose_config(["data.batch_size=auto"], env={}).cfg.data.batch_size == "auto"
    assert compose_config(["data.batch_size=12"], env={}).cfg.data.batch_size == 12
    with pytest.raises(ConfigError, match="data.batch_size"):
        compose_config(["data.batch_size=big"], env={})

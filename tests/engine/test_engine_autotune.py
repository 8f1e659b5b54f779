"""precision=auto / channels_last=auto: the speed probe and how the Trainer applies it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from visionforge.engine import Trainer
from visionforge.engine.autotune import _unsafe, candidate_precisions, probe_speed
from visionforge.engine.precision import cpu_native_bf16
from visionforge.errors import ConfigError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Dropout(0.3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def _data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 12, 12, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_cpu_candidates_follow_the_hardware():
    assert candidate_precisions("cpu")[0] == "32-true"
    assert ("bf16-mixed" in candidate_precisions("cpu")) == cpu_native_bf16()


def test_probe_times_every_layout_leaves_model_and_rng_alone():
    model, (x, y) = _net(), _data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    choice = probe_speed(model, x, lambda out: nn.functional.cross_entropy(out, y),
                         device="cpu", steps=1)
    # dropout masks are the same in every setting, so channels_last is not flagged unsafe
    assert set(choice.seconds) == {"fp32", "fp32+channels_last"} | (
        {"bf16", "bf16+channels_last"} - set(choice.rejected) if cpu_native_bf16() else set())
    assert choice.label in choice.seconds and choice.line().startswith("speed probe chose ")
    assert torch.equal(rng, torch.get_rng_state())
    for k, v in model.state_dict().items():  # BatchNorm statistics included
        assert torch.equal(v, before[k]), k
    assert next(model.parameters()).grad is None


def test_unsafe_flags_nonfinite_and_large_differences_only():
    ref = torch.tensor([[1.0, 2.0, 3.0]])
    assert _unsafe(1.0, ref * 1.001, 1.0, ref) is None
    assert "differs" in _unsafe(1.5, ref, 1.0, ref)
    assert "differs" in _unsafe(1.0, ref * 2, 1.0, ref)
    assert _unsafe(math.nan, ref, 1.0, ref) == "non-finite loss or logits"


def test_trainer_applies_what_the_probe_chose(tmp_path):
    x, y = _data(32)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = _net()
    trainer = Trainer(model, max_epochs=1, device="cpu", progress=False, output_dir=tmp_path,
                      precision="auto", channels_last="auto", save_model=False)
    trainer.train(loader)
    choice = trainer.speed_choice
    assert choice is not None and trainer.pl_trainer.precision == choice.precision
    weight = model[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == choice.channels_last
    assert trainer.module.channels_last == choice.channels_last


def test_channels_last_true_converts_the_model(tmp_path):
    x, y = _data(16)
    model = _net()
    Trainer(model, max_epochs=1, device="cpu", progress=False, output_dir=tmp_path,
            channels_last=True, save_model=False).train(DataLoader(TensorDataset(x, y),
                                                                   batch_size=8))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_rejects_other_values():
    with pytest.raises(ConfigError, match="channels_last"):
        Trainer(_net(), channels_last="yes")

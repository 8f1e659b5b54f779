"""Seeding, determinism switches, device and precision resolution."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from visionforge.engine.precision import (
    lightning_accelerator,
    resolve_device,
    resolve_precision,
)
from visionforge.engine.seed import enable_determinism, restore_determinism, seed_worker, set_seed
from visionforge.errors import ConfigError


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(3), torch.nn.Linear(3, 2).weight


def test_set_seed_reproducible(monkeypatch):
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    set_seed(123)
    a = _draw()
    set_seed(123)
    b = _draw()
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    assert os.environ["PYTHONHASHSEED"] == "123"
    set_seed(124)
    assert not torch.equal(_draw()[2], a[2])


def test_seed_worker_derives_from_torch_seed():
    torch.manual_seed(7)
    seed_worker(0)
    x = np.random.rand()
    torch.manual_seed(7)
    seed_worker(0)
    assert np.random.rand() == x


def test_enable_and_restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled()
    prev = enable_determinism(warn_only=True)
    try:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        restore_determinism(prev)
    assert torch.are_deterministic_algorithms_enabled() == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_resolve_device(monkeypatch):
    monkeypatch.delenv("VISIONFORGE_DEVICE", raising=False)
    auto = resolve_device("auto")
    assert auto == ("cuda" if torch.cuda.is_available() else auto)
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setenv("VISIONFORGE_DEVICE", "cpu")
    assert resolve_device() == "cpu" and resolve_device(None) == "cpu"
    monkeypatch.setenv("VISIONFORGE_DEVICE", "tpu")
    assert resolve_device("cpu") == "cpu"  # explicit argument wins over the environment
    with pytest.raises(ConfigError, match="VISIONFORGE_DEVICE"):
        resolve_device("auto")
    monkeypatch.delenv("VISIONFORGE_DEVICE")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("gpu")
    else:
        assert resolve_device("gpu:0") == "cuda:0"
        with pytest.raises(ConfigError, match="device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    assert lightning_accelerator("cuda:1") == ("gpu", [1])
    assert lightning_accelerator("cpu") == ("cpu", "auto")


def test_resolve_precision(monkeypatch):
    from visionforge.engine.precision import cpu_supports_bf16

    monkeypatch.delenv("VISIONFORGE_AMP", raising=False)
    cpu_mixed = "bf16-mixed" if cpu_supports_bf16() else "32-true"
    assert resolve_precision(False, "cpu") == "32-true"
    assert resolve_precision(None, "cpu") == "32-true"
    assert resolve_precision(True, "cpu") == cpu_mixed
    assert resolve_precision("fp16", "cpu") == cpu_mixed  # fp16 + GradScaler needs CUDA
    assert resolve_precision("bf16", "cpu") == "bf16-mixed"
    assert resolve_precision("32", "cpu") == "32-true"
    monkeypatch.setenv("VISIONFORGE_AMP", "1")
    assert resolve_precision(None, "cpu") == cpu_mixed
    assert resolve_precision(False, "cpu") == "32-true"  # explicit beats the environment
    with pytest.raises(ConfigError, match="unknown mixed_precision"):
        resolve_precision("fp8", "cpu")
    if torch.cuda.is_available():
        assert resolve_precision(True, "cuda") == "16-mixed"
    else:
        with pytest.raises(ConfigError):
            resolve_precision(True, "cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_precision_cuda_16_mixed_runs():
    from lightning.pytorch.plugins.precision import MixedPrecision

    plugin = MixedPrecision(resolve_precision(True, "cuda"), device="cuda")
    assert plugin.scaler is not None  # fp16 on CUDA comes with a GradScaler

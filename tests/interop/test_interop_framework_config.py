"""FrameworkConfig: priority argument > env > config > default, sources, errors."""

from __future__ import annotations

import pytest

from visionforge.config import FrameworkConfig, get_framework, set_framework
from visionforge.config.framework import resolve_device
from visionforge.errors import ConfigError


def test_interop_defaults_and_sources():
    cfg = FrameworkConfig(env={})
    assert cfg.framework == "pytorch" and cfg.device == "auto" and cfg.amp is False
    assert cfg.gradient_accumulation_steps == 1 and cfg.tile_generation_mode == "modern"
    assert set(cfg.sources().values()) == {"default"}


def test_interop_priority_argument_env_config_default():
    env = {
        "VISIONFORGE_FRAMEWORK": "tensorflow",
        "VISIONFORGE_AMP": "1",
        "VISIONFORGE_DEVICE": "cpu",
    }
    conf = {"framework": "pytorch", "amp": False, "compile": True, "validation_frequency": 3}
    cfg = FrameworkConfig(device="cuda:1", env=env, config=conf)
    assert (cfg.framework, cfg.source("framework")) == ("tensorflow", "env")
    assert (cfg.amp, cfg.source("amp")) == (True, "env")
    assert (cfg.device, cfg.source("device")) == ("cuda:1", "argument")
    assert (cfg.compile, cfg.source("compile")) == (True, "config")
    assert (cfg.validation_frequency, cfg.source("validation_frequency")) == (3, "config")
    assert cfg.source("tile_generation_mode") == "default"
    cfg.set_framework("torch")
    assert cfg.get_framework() == "pytorch" and cfg.source("framework") == "argument"
    assert [row[0] for row in cfg.describe()] == list(FrameworkConfig.KEYS)


@pytest.mark.parametrize(
    ("kwargs", "env", "needle"),
    [
        ({"framework": "jax"}, {}, "framework"),
        ({}, {"VISIONFORGE_FRAMEWORK": "mxnet"}, "VISIONFORGE_FRAMEWORK"),
        ({"device": "tpu"}, {}, "device"),
        ({}, {"VISIONFORGE_AMP": "maybe"}, "VISIONFORGE_AMP"),
        ({"gradient_accumulation_steps": 0}, {}, "gradient_accumulation_steps"),
        ({"tile_generation_mode": "fancy"}, {}, "modern"),
    ],
)
def test_interop_invalid_values_name_key_and_choices(kwargs, env, needle):
    with pytest.raises(ConfigError, match=needle):
        FrameworkConfig(env=env, **kwargs)


def test_interop_unknown_config_key():
    with pytest.raises(ConfigError, match="valid keys"):
        FrameworkConfig(config={"frame_work": "pytorch"}, env={})


def test_interop_get_set_framework(monkeypatch):
    monkeypatch.delenv("VISIONFORGE_FRAMEWORK", raising=False)
    try:
        assert get_framework() == "pytorch"
        monkeypatch.setenv("VISIONFORGE_FRAMEWORK", "tf")
        assert get_framework() == "tensorflow"
        set_framework("pytorch")  # explicit beats the environment
        assert get_framework() == "pytorch"
        assert get_framework("tensorflow") == "tensorflow"
        with pytest.raises(ConfigError, match="pytorch, tensorflow"):
            set_framework("caffe")
    finally:
        set_framework(None)


def test_interop_resolve_device_auto_is_a_real_device():
    import torch

    dev = resolve_device("auto")
    assert dev in ("cuda", "mps", "cpu")
    assert dev == ("cuda" if torch.cuda.is_available() else dev)
    assert resolve_device("cpu") == "cpu"

"""Offline ``pretrained=True`` fails within seconds with the one instructive message.

No test here sends traffic: every socket connection and name lookup raises (and is
recorded), the hub probe is replaced by a fake, and the time bounds are loose: the
failure may take at most 5 s more than building the same model without weights (the
machine running the tests may be busy; without the fix the hub libraries retried for
about a minute).
"""

from __future__ import annotations

import socket
import time

import pytest

from visionforge.errors import WeightsError
from visionforge.models import hub
from visionforge.models.factory import create_model

FAST_S = 5.0
HINT = "pretrained='/path/to/weights.safetensors'"


def _seconds(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt or name lookup fails at once and is recorded."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def undeclared_offline(monkeypatch, no_network):
    """A machine without a network whose user set no HF_HUB_OFFLINE: only the probe can tell."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_probe_results", {})
    probes: list[tuple[str, int]] = []

    def fake_probe(address, timeout=hub.PROBE_TIMEOUT_S):
        probes.append(address)
        return f"no answer within {timeout:g} s"

    monkeypatch.setattr(hub, "probe", fake_probe)
    return probes


@pytest.mark.parametrize(
    ("name", "kwargs", "named"),
    [
        ("custom_convnext", {"size": "small", "num_classes": 3}, "custom_convnext"),
        ("resnet18", {"num_classes": 3}, "resnet18"),
        ("DeepLabV3_plus", {"num_classes": 3}, "deeplabv3plus_codavision"),
    ],
)
def test_undeclared_offline_fails_fast_with_the_message(
    undeclared_offline, no_network, name, kwargs, named
):
    import huggingface_hub.constants as hf_constants

    build_s = _seconds(create_model, name, **kwargs)  # also warms the imports
    start = time.perf_counter()
    with pytest.raises(WeightsError) as info:
        create_model(name, pretrained=True, **kwargs)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < build_s + FAST_S, f"{name}: {elapsed:.1f} s (plain build {build_s:.1f} s)"
    assert message.startswith(f"Could not fetch pretrained weights for model {named!r}")
    assert f"create_model({named!r}, {HINT})" in message
    assert "no answer within" in message  # why it counts as offline
    assert undeclared_offline, "the connectivity probe was not consulted"
    assert no_network == [], "offline was known, yet a connection was attempted"
    assert hf_constants.HF_HUB_OFFLINE is False  # the hub's offline mode is restored


def test_encoder_failure_is_reported_for_the_model_asked_for(undeclared_offline):
    with pytest.raises(WeightsError) as info:
        create_model("DeepLabV3_plus", num_classes=2, pretrained=True)
    assert "weights of 'resnet50.tv_in1k'" in str(info.value)


def test_declared_offline_skips_the_probe(monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_probe(*args, **kwargs):
        raise AssertionError("HF_HUB_OFFLINE=1 must not probe the network")

    monkeypatch.setattr(hub, "probe", no_probe)
    for name, kwargs in [("resnet18", {}), ("CustomRegNet", {"size": "small"})]:
        build_s = _seconds(create_model, name, **kwargs)
        start = time.perf_counter()
        with pytest.raises(WeightsError, match="HF_HUB_OFFLINE=1 is set"):
            create_model(name, pretrained=True, **kwargs)
        assert time.perf_counter() - start < build_s + FAST_S
    assert no_network == []


def test_probe_is_run_once_per_process(undeclared_offline):
    for _ in range(2):
        with pytest.raises(WeightsError):
            create_model("resnet18", pretrained=True)
    assert undeclared_offline == [hub.hub_address()]


def test_probe_gives_up_on_a_hanging_connection(monkeypatch):
    def hang(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.perf_counter()
    reason = hub.probe(("hub.invalid", 443), timeout=0.3)
    assert time.perf_counter() - start < 2.0
    assert reason == "no answer within 0.3 s"


def test_probe_reports_a_refused_connection(monkeypatch, no_network):
    reason = hub.probe(("hub.invalid", 443), timeout=0.3)
    assert reason == "OSError: network disabled in tests"
    assert no_network == [(("hub.invalid", 443),)]


def test_probe_reports_reachable(monkeypatch):
    class FakeSocket:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: FakeSocket())
    assert hub.probe(("hub.invalid", 443), timeout=0.3) is None


def test_hub_address_follows_proxy_and_endpoint(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    assert hub.hub_address() == ("huggingface.co", 443)
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")
    assert hub.hub_address() == ("mirror.example", 8080)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    assert hub.hub_address() == ("proxy.example", 3128)


def test_offline_local_timm_file_still_loads(undeclared_offline, tmp_path):
    """Offline mode only stops downloads: a weights file handed to timm still loads."""
    import torch
    from safetensors.torch import save_file

    source = create_model("test_resnet")  # timm keeps a file's classifier only at its 1000 classes
    path = tmp_path / "test_resnet.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    model = create_model(
        "test_resnet", pretrained=True, pretrained_cfg_overlay={"file": str(path)}
    )
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

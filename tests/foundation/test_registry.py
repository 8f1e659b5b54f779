"""Registry: decorator registration, aliases, case-insensitive lookup, wildcards, suggestions."""

from __future__ import annotations

import importlib.metadata

import pytest

from visionforge import registry as registry_module
from visionforge.errors import UnknownNameError
from visionforge.registry import Registry, load_plugins


def _make() -> Registry:
    reg = Registry("widget")

    @reg.register("small_widget", aliases=("SmallWidget",), size="s")
    def small_widget(scale: int = 1):
        return ("small", scale)

    @reg.register
    def large_widget():
        return "large"

    return reg


def test_register_and_build_by_name_alias_and_case():
    reg = _make()
    assert reg.build("small_widget", scale=3) == ("small", 3)
    assert reg.get("SMALLWIDGET")() == ("small", 1)
    assert reg.canonical("smallwidget") == "small_widget"
    assert reg.get("Large_Widget")() == "large"
    assert reg.entry("SmallWidget").metadata == {"size": "s"}
    assert "SMALL_widget" in reg and "nothing" not in reg
    assert len(reg) == 2


def test_list_with_wildcards_and_aliases():
    reg = _make()
    assert reg.list() == ["large_widget", "small_widget"]
    assert reg.list("small*") == ["small_widget"]
    assert reg.list("*WIDGET") == ["large_widget", "small_widget"]
    assert reg.list("Small?idget") == []
    assert reg.list("Small?idget", include_aliases=True) == ["small_widget"]


def test_unknown_name_lists_closest_names():
    reg = _make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("smal_widget")
    msg = str(info.value)
    assert "Unknown widget 'smal_widget'" in msg
    assert "Did you mean: small_widget" in msg
    with pytest.raises(ValueError):  # UnknownNameError is a ValueError (a ConfigError)
        reg.get("zzzzzz")


def test_duplicate_registration_is_refused_unless_override():
    reg = _make()
    with pytest.raises(ValueError, match="already registered"):
        reg.add("small_widget", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("other", lambda: None, aliases=("smallwidget",))
    reg.add("small_widget", lambda: "new", override=True)
    assert reg.build("small_widget") == "new"
    assert "SmallWidget" not in reg  # the old aliases went with the old entry


def test_remove_drops_aliases():
    reg = _make()
    reg.remove("SmallWidget")
    assert "small_widget" not in reg and "smallwidget" not in reg


class _FakeEntryPoint:
    def __init__(self, name, obj):
        self.name = name
        self._obj = obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_plugins_register_models_through_entry_points(monkeypatch):
    from visionforge.models import create_model, list_models
    from visionforge.registry import MODELS

    def plugin():
        import torch

        @MODELS.register("plugin_linear_net", task="classification", family="plugin")
        def plugin_linear_net(num_classes: int = 2):
            return torch.nn.Linear(4, num_classes)

    def fake_entry_points(group=None):
        assert group == registry_module.PLUGIN_GROUP
        return [_FakeEntryPoint("good", plugin), _FakeEntryPoint("broken", ImportError("boom"))]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    try:
        loaded = load_plugins(force=True)
        assert loaded == ["good"]  # the broken plugin is skipped, not fatal
        assert "plugin_linear_net" in list_models("plugin_*")
        model = create_model("Plugin_Linear_Net", num_classes=5)
        assert model.out_features == 5
    finally:
        if "plugin_linear_net" in MODELS:
            MODELS.remove("plugin_linear_net")

"""Fixtures for inference tests: small model dirs built once per session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_tiny():
    name = "vf_tiny_models"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).parents[1] / "export" / "vf_tiny_models.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


tiny = _load_tiny()


@pytest.fixture(autouse=True)
def _fast_onnx_export(monkeypatch):
    # The legacy tracer is ~15x faster than the dynamo exporter; one test covers dynamo.
    monkeypatch.setenv("VISIONFORGE_ONNX_EXPORTER", "torchscript")


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory):
    return tiny.make_classifier_dir(tmp_path_factory.mktemp("inference_cls") / "model")


@pytest.fixture(scope="session")
def seg_dir(tmp_path_factory):
    return tiny.make_tiny_seg_dir(tmp_path_factory.mktemp("inference_seg") / "model")


@pytest.fixture(scope="session")
def signal_dir(tmp_path_factory):
    return tiny.make_signal_dir(tmp_path_factory.mktemp("inference_sig") / "model")


@pytest.fixture(scope="session")
def multitask_dir(tmp_path_factory):
    return tiny.make_multitask_dir(tmp_path_factory.mktemp("inference_multi") / "model")

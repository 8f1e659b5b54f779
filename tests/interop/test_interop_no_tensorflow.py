"""Without TensorFlow the package works and TF-only calls say how to install the extra."""

from __future__ import annotations

import builtins

import pytest


def test_interop_tf_calls_without_tensorflow_raise_install_hint(monkeypatch):
    import torch._dynamo  # noqa: F401  (require_tensorflow loads it first; import it unpatched)

    from visionforge.interop.tensorflow import TensorFlowMissingError, require_tensorflow

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    import importlib

    monkeypatch.setattr(importlib, "import_module", lambda name, package=None: fake_import(name))
    with pytest.raises(TensorFlowMissingError, match=r'pip install "visionforge\[tf\]"'):
        require_tensorflow("TFLite export")
    from visionforge.interop import model_call

    with pytest.raises(TensorFlowMissingError, match="visionforge\\[tf\\]"):
        model_call("UNet", 32, 2, framework="tensorflow")


def test_interop_package_imports_without_touching_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, visionforge.interop as i; from visionforge.interop import KerasAdapter, model_call; "
        "import visionforge.interop.nntraining2; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

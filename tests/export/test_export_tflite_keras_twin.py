"""TFLite export through the Keras twins (needs the [tf] extra), checked with the interpreter."""

from __future__ import annotations

import pytest
import torch

from visionforge.export import export_model
from visionforge.interop.tensorflow import tensorflow_available
from visionforge.models import create_model, save_model_dir

pytestmark = pytest.mark.skipif(
    not tensorflow_available(), reason='needs TensorFlow: pip install "visionforge[tf]"'
)


def _deepepicnn_dir(path):
    torch.manual_seed(0)
    model = create_model("deepepicnn", num_classes=2).eval()
    for m in model.modules():  # non-trivial BN statistics so they must be transferred
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return save_model_dir(model, path, task="signal", class_names=["normal", "seizure"],
                          input_size=[1, 750], preprocessing={"input_range": None})


@pytest.mark.slow
def test_tflite_of_codavision_deeplab_matches_pytorch(tmp_path, tiny_models):
    mdir = tiny_models.make_codavision_dir(tmp_path / "coda", size=64)
    result = export_model(mdir, formats="tflite", out_dir=tmp_path / "out")["tflite"]
    assert result.status == "ok", result.reason
    assert result.extra["route"] == "keras twin + TF converter"
    assert result.parity_error <= 1e-3 and (tmp_path / "out" / "model.tflite").stat().st_size > 0


def test_tflite_of_deepepicnn_matches_pytorch(tmp_path):
    result = export_model(_deepepicnn_dir(tmp_path / "sig"), formats="tflite",
                          out_dir=tmp_path / "out")["tflite"]
    assert result.status == "ok", result.reason
    assert result.parity_error <= 1e-3 and result.extra["input_layout"] == "NLC"


def test_tflite_without_a_twin_says_how(tmp_path, classifier_dir):
    result = export_model(classifier_dir, formats="tflite", out_dir=tmp_path / "out")["tflite"]
    assert result.status in ("ok", "skipped")
    if result.status == "skipped":  # litert-torch cannot share this environment
        assert "litert-torch" in result.reason and "Keras twins" in result.reason

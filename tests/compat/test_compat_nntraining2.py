"""nnTraining2's PyTorch/TensorFlow summary (seed 003) against ``visionforge.compat.nntraining2``.

The document's configs are used as written plus an ``osdbConfig`` naming generated OSDB
events, two epochs and a 250-sample window (CI time); TensorFlow parts run where it is
installed and are skipped (with the reason) elsewhere.
"""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from visionforge.compat.nntraining2 import (
    DeepEpiCnnModel,
    DeepEpiCnnModelPyTorch,
    NnModel,
    get_framework_from_config,
    main,
    trainModel,
)
from visionforge.interop.nntraining2 import translate_config

HAS_TF = importlib.util.find_spec("tensorflow") is not None
TF_CONFIG = {"modelConfig": {
    "framework": "tensorflow",
    "modelClass": "user_tools.nnTraining2.deepEpiCnnModel.DeepEpiCnnModel",
    "modelFname": "deepEpiCnnModel", "epochs": 100, "batchSize": 64, "lrStart": 1e-5}}
PT_CONFIG = {"modelConfig": {
    "framework": "pytorch",
    "modelClass": "user_tools.nnTraining2.deepEpiCnnModel_torch.DeepEpiCnnModelPyTorch",
    "modelFname": "deepEpiCnnModel_pytorch", "epochs": 100, "batchSize": 64, "lrStart": 1e-3}}
SAME_OUTPUTS = {"history.json", "training_curves.png", "testResults.json",
                "config_nntraining2.json", "config_translated.json"}


def _runnable(config, tmp_path, events):
    (tmp_path / "events.json").write_text(json.dumps(events))
    cfg = json.loads(json.dumps(config))
    cfg["modelConfig"].update({"epochs": 2, "batchSize": 16})
    cfg["osdbConfig"] = {"osdbFiles": [str(tmp_path / "events.json")]}
    cfg["dataProcessing"] = {"window": 250, "step": 125, "testProp": 0.3, "validationProp": 0.2}
    return cfg


def test_framework_detection_order():
    assert get_framework_from_config(TF_CONFIG) == "tensorflow"
    assert get_framework_from_config(PT_CONFIG) == "pytorch"
    legacy = {"modelConfig": {"modelClass": TF_CONFIG["modelConfig"]["modelClass"]}}
    assert get_framework_from_config(legacy) == "tensorflow"  # default: backward compatible
    assert get_framework_from_config({"modelConfig": {"modelType": "pytorch"}}) == "pytorch"
    torch_class = {"modelConfig": {"modelClass": PT_CONFIG["modelConfig"]["modelClass"]}}
    assert get_framework_from_config(torch_class) == "pytorch"
    settings, ignored = translate_config({"modelConfig": {"modelType": "pytorch", "epochs": 1}})
    assert settings["framework"] == "pytorch" and "modelConfig.modelType" not in ignored
    assert NnModel(TF_CONFIG).get_framework() == "tensorflow"


def test_pytorch_model_softmax_parameters_preprocessing():
    nn_model = DeepEpiCnnModelPyTorch(PT_CONFIG)
    model = nn_model.makeModel(input_shape=(750, 1), num_classes=2, nLayers=14).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 1, 750))
    assert out.shape == (3, 2)  # (batch, 2)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(3))  # softmax: probabilities
    assert sum(p.numel() for p in model.parameters()) == 97_362
    vec = nn_model.accData2vector(np.arange(125) * 3.0 + 1000, normalise=True)
    assert abs(vec.mean()) < 1e-5 and vec.std() == pytest.approx(1.0, rel=1e-4)
    assert np.array_equal(nn_model.dp2vector({"rawData": [1, 2, 3]}), [1, 2, 3])
    from scipy.stats.mstats import hdquantiles

    values = [0.1, 0.4, 0.35, 0.9, 0.2]
    assert NnModel.hdQuantile(values, 0.5) == pytest.approx(float(hdquantiles(values, [0.5])[0]))


@pytest.mark.slow
def test_pytorch_training_via_command_line(tmp_path, osdb_events):
    cfg = _runnable(PT_CONFIG, tmp_path, osdb_events(6, 6))
    (tmp_path / "nnConfig_deep_pytorch.json").write_text(json.dumps(cfg))
    out = tmp_path / "run"
    assert main(["--config", str(tmp_path / "nnConfig_deep_pytorch.json"), "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert SAME_OUTPUTS | {"deepEpiCnnModel_pytorch.pt"} <= names
    history = json.loads((out / "history.json").read_text())
    assert len(history["train_loss"]) == 2 and history["val_loss"]
    # the .pt holds weights only: torch.load(weights_only=True) reads it, the class rebuilds it
    state = torch.load(out / "deepEpiCnnModel_pytorch.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    model = DeepEpiCnnModelPyTorch().load_model(out / "deepEpiCnnModel_pytorch.pt")
    with torch.no_grad():
        assert model(torch.randn(2, 1, 250)).sum(dim=1).allclose(torch.ones(2))
    assert json.loads((out / "testResults.json").read_text())["framework"] == "pytorch"


def test_missing_framework_means_tensorflow(tmp_path, osdb_events):
    """A config without ``framework`` trains with TensorFlow, as nnTraining2 does."""
    cfg = _runnable(TF_CONFIG, tmp_path, osdb_events(4, 4))
    del cfg["modelConfig"]["framework"]
    if not HAS_TF:
        from visionforge.interop.tensorflow import TensorFlowMissingError

        with pytest.raises(TensorFlowMissingError, match='"framework": "pytorch"'):
            trainModel(cfg, tmp_path / "tf", verbose=False)
        return
    settings, _ = translate_config(cfg, base_dir=tmp_path)
    assert settings["framework"] == "tensorflow"


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TF, reason='TensorFlow not installed (pip install "visionforge[tf]")')
def test_tensorflow_run_writes_the_same_outputs(tmp_path, osdb_events):
    cfg = _runnable(TF_CONFIG, tmp_path, osdb_events(6, 6))
    result = trainModel(cfg, tmp_path / "tf", verbose=False)
    names = {p.name for p in (tmp_path / "tf").iterdir()}
    assert SAME_OUTPUTS | {"deepEpiCnnModel.keras"} <= names
    history = json.loads((tmp_path / "tf" / "history.json").read_text())
    assert len(history["train_loss"]) == 2 and "accuracy" in history["val_metrics"]
    assert result["framework"] == "tensorflow" and "tpr" in result["event"]
    keras_model = DeepEpiCnnModel(TF_CONFIG).makeModel(input_shape=(750, 1), num_classes=2)
    probs = np.asarray(keras_model(np.random.rand(3, 750, 1).astype("float32"), training=False))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    # Keras' count_params() also counts BatchNorm's moving mean/variance (torch keeps those
    # as buffers): the learnable weights are identical, the totals differ by 2 x 672 channels.
    trainable = sum(int(np.prod(w.shape)) for w in keras_model.trainable_weights)
    assert trainable == 97_362 and keras_model.count_params() - trainable == 2 * 672

"""Interop structure: no adapter<->bridge cycle, registries, one weights implementation,
the model's input contract, and nnTraining2 results from the evaluation metrics."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import visionforge.interop.engine_bridge as engine_bridge
from visionforge.errors import ConfigError
from visionforge.registry import Registry

_ADAPTER = "visionforge.interop.adapter"


def _imported_modules(path: Path) -> set[str]:
    """Every module an ``import``/``from ... import`` names anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_interop_engine_bridge_never_imports_the_adapter():
    mods = _imported_modules(Path(engine_bridge.__file__))
    assert mods, "the parser found no imports at all"
    assert not {m for m in mods if m == _ADAPTER or m.startswith(_ADAPTER + ".")}
    # the check itself can fail: the adapter does import the bridge
    from visionforge.interop import adapter

    assert "visionforge.interop.engine_bridge" in _imported_modules(Path(adapter.__file__))


def test_interop_name_tables_are_registries():
    from visionforge.interop.adapter import KERAS_OPTIMIZERS
    from visionforge.interop.keras_losses import LOSSES, MeanSquaredError, get_loss
    from visionforge.interop.keras_metrics import METRIC_NAMES, METRICS, get_metric
    from visionforge.interop.model_call import TF_NAMES
    from visionforge.interop.tensorflow.models import KERAS_MODELS

    for reg in (KERAS_OPTIMIZERS, LOSSES, METRICS, KERAS_MODELS):
        assert isinstance(reg, Registry)
    assert isinstance(get_loss("MSE"), MeanSquaredError)
    assert get_loss("categorical_crossentropy", from_logits=False).from_logits is False
    assert {"acc", "miou", "sparse_categorical_accuracy"} <= set(METRIC_NAMES)
    assert get_metric("BINARY_ACCURACY").kind == "binary"
    assert set(TF_NAMES) == {"DeepLabV3_plus", "UNet", "DeepEpiCnn"}
    assert KERAS_MODELS.entry("deeplabv3plus").metadata["torch_name"] == "deeplabv3plus_codavision"
    with pytest.raises(ConfigError, match="unknown metric"):
        get_metric("auc_of_doom")


def test_interop_layer_and_adapter_share_weight_accessors():
    from visionforge.interop import KerasAdapter, LayerView
    from visionforge.interop.module_weights import ModuleWeights

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    model = KerasAdapter(net)
    layer = model.get_layer(index=1)
    assert isinstance(layer, LayerView)
    for name in ("get_weights", "set_weights", "count_params", "trainable", "weights"):
        assert name not in vars(KerasAdapter) and name not in vars(LayerView), name
        assert name in vars(ModuleWeights)
    w = [np.full_like(a, 2.0) for a in layer.get_weights()]
    layer.set_weights(w)
    np.testing.assert_array_equal(net[1].weight.detach().numpy(), 2.0)
    layer.trainable = False
    assert (
        not layer.trainable
        and not model.trainable
        and model.count_params() == (3 * 4 + 4) + (4 + 4)
    )


def test_interop_adapter_reads_the_models_input_contract(tmp_path):
    from visionforge.interop import KerasAdapter, load_model
    from visionforge.models import create_model
    from visionforge.models.spec import model_contract

    signal = KerasAdapter(create_model("deepepicnn", num_classes=2))
    assert signal.input_contract == model_contract(signal.module)
    assert signal.input_contract.layout == "NCL"
    with pytest.raises(ConfigError, match="NCL"):
        signal.predict(np.zeros((2, 64, 3, 1), "float32"))
    assert signal.get_config()["input_contract"]["layout"] == "NCL"
    saved = signal.save(tmp_path / "m.keras")
    meta = json.loads((saved / "model.json").read_text())
    assert meta["preprocessing"] == signal.input_contract.to_dict()
    assert load_model(saved).input_contract == signal.input_contract
    # a foreign module declares nothing: any rank passes, preprocess is the identity
    free = KerasAdapter(torch.nn.Identity())
    assert free.input_contract is None
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32")
    np.testing.assert_array_equal(free.preprocess(x), x)


@pytest.mark.parametrize("name", ["cnn_backbone", "deeplabv3plus_codavision"])
def test_interop_adapter_preprocess_follows_the_declaration(name):
    from visionforge.interop import KerasAdapter
    from visionforge.models.contract import contract_for
    from visionforge.models.spec import set_model_spec

    module = torch.nn.Identity()
    set_model_spec(module, name, "visionforge", {})  # declared contract without building it
    model = KerasAdapter(module)
    contract = contract_for(name)
    assert model.input_contract == contract
    x = np.full((1, 4, 4, 3), 0.5, "float32")
    lo, hi = contract.input_range
    expected = np.full(3, 0.5 * (hi - lo) + lo)
    if contract.mean is not None:
        expected = (expected - np.array(contract.mean)) / np.array(contract.std)
    np.testing.assert_allclose(model.preprocess(x)[0, 0, 0], expected, rtol=1e-5)


def test_interop_nntraining2_rates_are_nan_without_positive_windows():
    from visionforge.evaluation.signal_metrics import binary_rates
    from visionforge.interop.nntraining2 import _results, binary_counts

    y = np.zeros(6, dtype=int)
    probs = np.array([0.1, 0.9, 0.2, 0.3, 0.6, 0.1])
    ids = np.array(["a", "a", "b", "b", "c", "c"])
    res = _results(probs, y, ids, 0.5)
    for level in ("datapoint", "event"):
        assert math.isnan(res[level]["tpr"]), level  # no seizures: sensitivity undefined
        assert res[level]["tp"] == res[level]["fn"] == 0
    assert res["datapoint"]["fpr"] == pytest.approx(2 / 6)
    assert res["event"]["fpr"] == pytest.approx(2 / 3) and res["n_events"] == 3
    np.testing.assert_equal(binary_counts([0, 1], [1, 1]), binary_rates([0, 1], [1, 1]))

"""create_model / list_models: registry names, timm names, weights, model dirs."""

from __future__ import annotations

import json

import pytest
import torch

from visionforge.errors import ConfigError, UnknownNameError, WeightsError
from visionforge.models import (
    create_model,
    list_models,
    load_model,
    read_model_meta,
    save_model_dir,
)
from visionforge.registry import MODELS


@pytest.fixture
def tiny_registered_model():
    from visionforge.models import register_model

    @register_model("_tiny_mlp_for_tests", aliases=("TinyMLP",), task="classification")
    def tiny_mlp(num_classes: int = 3, hidden: int = 8):
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, hidden),
                                    torch.nn.BatchNorm1d(hidden), torch.nn.Linear(hidden, num_classes))
        return model

    yield "_tiny_mlp_for_tests"
    MODELS.remove("_tiny_mlp_for_tests")


def test_create_by_alias_records_spec(tiny_registered_model):
    model = create_model("tinymlp", num_classes=4)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.randn(2, 3, 2, 2)).shape == (2, 4)
    assert model.visionforge_spec == {
        "name": "_tiny_mlp_for_tests", "source": "visionforge", "kwargs": {"num_classes": 4}
    }
    assert "_tiny_mlp_for_tests" in list_models("_tiny*")
    assert "_tiny_mlp_for_tests" in list_models("TinyM*")  # aliases match patterns too
    assert "_tiny_mlp_for_tests" in list_models(task="classification")


def test_any_timm_name_works():
    model = create_model("resnet18", num_classes=3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    assert model.visionforge_spec["source"] == "timm"


def test_unknown_model_suggests_close_names(tiny_registered_model):
    with pytest.raises(UnknownNameError) as info:
        create_model("_tiny_mpl_for_tests")
    assert "_tiny_mlp_for_tests" in str(info.value)
    assert "timm" in str(info.value)


def test_pretrained_true_offline_explains_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as info:
        create_model("resnet18", pretrained=True)
    assert "pretrained='/path/to/weights.safetensors'" in str(info.value)


def test_pretrained_true_without_published_weights(tiny_registered_model):
    with pytest.raises(WeightsError, match="no published pretrained weights"):
        create_model("tinymlp", pretrained=True)


def test_pretrained_local_path_with_partial_load(tiny_registered_model, tmp_path):
    from safetensors.torch import save_file

    source = create_model("tinymlp", num_classes=3)
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    save_file(sd, tmp_path / "full.safetensors")
    model = create_model("tinymlp", num_classes=3, pretrained=tmp_path / "full.safetensors")
    assert model.visionforge_load_report.complete
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k])
    # a checkpoint for 3 classes loaded into a 5-class model: classifier skipped and reported
    torch.save(sd, tmp_path / "three.pth")
    model5 = create_model("tinymlp", num_classes=5, pretrained=str(tmp_path / "three.pth"))
    report = model5.visionforge_load_report
    assert any(m.startswith("3.weight") for m in report.mismatched)
    assert "1.weight" in report.loaded
    assert torch.equal(model5.state_dict()["1.weight"], sd["1.weight"])


def test_model_dir_roundtrip_is_exact_and_pickle_free(tiny_registered_model, tmp_path):
    model = create_model("tinymlp", num_classes=2, hidden=6)
    model.train()
    model(torch.randn(8, 3, 2, 2))  # update BN running stats so buffers matter
    model.eval()
    out = save_model_dir(model, tmp_path / "model", class_names=["cat", "dog"], input_size=[3, 2, 2],
                         metrics={"val_accuracy": 0.9})
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["name"] == "_tiny_mlp_for_tests" and meta["kwargs"] == {"num_classes": 2, "hidden": 6}
    assert meta["class_names"] == ["cat", "dog"] and meta["task"] == "classification"
    assert "torch" in meta["versions"]
    loaded = load_model(out)
    assert not loaded.training
    x = torch.randn(4, 3, 2, 2)
    assert torch.equal(loaded(x), model(x))
    assert loaded.visionforge_meta["metrics"] == {"val_accuracy": 0.9}
    assert read_model_meta(out / "model.json")["num_classes"] == 2


def test_model_dir_errors(tmp_path):
    with pytest.raises(WeightsError, match="not a visionforge model dir"):
        load_model(tmp_path)
    with pytest.raises(ConfigError, match="create_model"):
        save_model_dir(torch.nn.Linear(2, 2), tmp_path / "m")


def test_is_registered_loads_the_builtins_in_a_fresh_process():
    import subprocess
    import sys

    code = ("from visionforge.models.factory import is_registered; "
            "print(is_registered('small_cnn'), is_registered('DeepEpiCnn'), is_registered('nope'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True", "False"]

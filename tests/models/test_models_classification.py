"""The 15 classification families: constructor arguments, backbone/head split, dynamic kernels."""

from __future__ import annotations

import pytest
import torch

from visionforge.errors import ConfigError, WeightsError
from visionforge.models.classification.dynamic_conv import effective_kernels
from visionforge.models.factory import create_model, list_models, model_entry
from visionforge.models.model_dir import load_model, save_model_dir

PIPELINE_ALIASES = [
    "CustomConvNeXt",
    "CustomEfficientNetV4",
    "CustomGhostNetV2",
    "CustomResNetMish",
    "CustomCSPDarkNet",
    "CustomInceptionV4",
    "CustomViTHybrid",
    "CustomSwinTransformer",
    "CustomCoAtNet",
    "CustomRegNet",
    "CustomDenseNetHybrid",
    "CustomDeiTStyle",
    "CustomMaxViT",
    "CustomMobileOne",
    "CustomDynamicConvNet",
]
CLASSIFIERS = list_models(task="classification")


def _tiny(name, **kwargs):
    return create_model(name, **{**model_entry(name).metadata["test_kwargs"], **kwargs})


def test_every_pipeline_family_is_registered():
    names = {model_entry(alias).name for alias in PIPELINE_ALIASES}
    assert len(names) == 15
    assert names <= set(CLASSIFIERS)
    assert len({model_entry(n).metadata["family"] for n in names}) == 15


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_num_classes_in_chans_img_size_honoured(name):
    model = _tiny(name, num_classes=5, in_chans=1, img_size=48).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 48, 48))
    assert out.shape == (2, 5)
    assert model.visionforge_spec["kwargs"]["in_chans"] == 1
    with pytest.raises(RuntimeError):  # the stem really expects one channel now
        model(torch.rand(2, 3, 48, 48))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_backbone_head_split(name):
    model = _tiny(name)
    all_params = {id(p) for p in model.parameters()}
    backbone = {id(p) for p in model.backbone.parameters()}
    head = {id(p) for p in model.head.parameters()}
    assert backbone and head and not backbone & head
    assert backbone | head == all_params
    # the head is only the classifier: its parameters are linear maps to num_classes
    assert all(p.shape[0] == 3 for p in model.head.parameters())

    model.backbone.requires_grad_(False)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == head
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_timm_interface(name):
    model = _tiny(name).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        pooled = model.forward_head(feats, pre_logits=True)
        assert pooled.shape == (2, model.num_features)
        assert torch.allclose(model.forward_head(feats), model(x), atol=1e-5)
        model.reset_classifier(7)
        assert model(x).shape == (2, 7)
    assert model.get_classifier() is model.head


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_model_dir_round_trip(name, tmp_path):
    model = _tiny(name).eval()
    x = torch.rand(1, 3, 32, 32)
    save_model_dir(model, tmp_path / "m", class_names=["a", "b", "c"], input_size=(3, 32, 32))
    loaded = load_model(tmp_path / "m")
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=1e-5)


def test_dynamic_conv_mixes_kernels_per_input():
    model = _tiny("CustomDynamicConvNet").eval()
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        ka, kb, ka2 = (
            effective_kernels(model, a),
            effective_kernels(model, b),
            effective_kernels(model, a),
        )
    assert len(ka) >= 3  # one per CondConv layer
    for k_a, k_b, k_a2 in zip(ka, kb, ka2, strict=True):
        assert k_a.shape[0] == 2
        assert torch.equal(k_a, k_a2)  # deterministic for the same input
        assert not torch.allclose(k_a, k_b)  # different inputs -> different kernels
        assert not torch.allclose(k_a[0], k_a[1])  # and per sample within a batch


# The seed pipeline's per-backbone LR table (002-disease-classification-pipeline.md,
# "Learning Rate Configuration"): its class name -> factor on the base learning rate.
SEED_LR = {
    "CustomConvNeXt": 1.2,
    "CustomEfficientNetV4": 1.1,
    "CustomGhostNetV2": 1.5,
    "CustomResNetMish": 1.2,
    "CustomCSPDarkNet": 1.2,
    "CustomInceptionV4": 1.0,
    "CustomViTHybrid": 1.2,
    "CustomSwinTransformer": 0.7,
    "CustomCoAtNet": 1.2,
    "CustomRegNet": 1.2,
    "CustomDenseNetHybrid": 1.1,
    "CustomDeiTStyle": 0.8,
    "CustomMaxViT": 1.2,
    "CustomMobileOne": 1.0,
    "CustomDynamicConvNet": 1.0,
}
# the seed's scheduler rule: LambdaLR warm-up + cosine when the class name names a
# transformer, OneCycleLR otherwise
SEED_TRANSFORMER_WORDS = ("vit", "swin", "deit", "coatnet", "maxvit")


@pytest.mark.parametrize("alias", PIPELINE_ALIASES)
def test_registered_lr_and_scheduler_follow_the_seed_pipeline(alias):
    meta = model_entry(alias).metadata
    assert meta["lr_multiplier"] == pytest.approx(SEED_LR[alias])
    transformer = any(w in alias.lower() for w in SEED_TRANSFORMER_WORDS)
    assert meta["scheduler"] == ("warmup_cosine" if transformer else "onecycle")
    assert meta["kind"] in ("cnn", "transformer", "hybrid")


def test_every_classifier_declares_lr_scheduler_and_kind():
    from visionforge.engine.schedulers import SCHEDULERS

    for name in CLASSIFIERS:
        meta = model_entry(name).metadata
        assert 0.5 <= meta["lr_multiplier"] <= 1.5
        assert meta["scheduler"] in SCHEDULERS
        assert meta["kind"] in ("cnn", "transformer", "hybrid")


def test_bad_size_and_pretrained_tiny_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown size 'huge'"):
        create_model("CustomConvNeXt", size="huge")
    with pytest.raises(WeightsError, match="without published weights"):
        create_model("CustomConvNeXt", size="tiny", pretrained=True)


def test_pretrained_true_fails_offline_with_instructions(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="local file"):
        create_model("CustomResNetMish", size="small", num_classes=3, pretrained=True)


def test_pretrained_local_file(tmp_path):
    from safetensors.torch import save_file

    source = _tiny("CustomRegNet")
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    torch.manual_seed(1)
    model = _tiny("CustomRegNet", pretrained=str(path))
    assert model.visionforge_load_report.complete
    for (k, v), w in zip(model.state_dict().items(), source.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    # another number of classes: the head is reported as mismatched, the backbone loads
    other = _tiny("CustomRegNet", num_classes=5, pretrained=str(path))
    assert len(other.visionforge_load_report.mismatched) == 2

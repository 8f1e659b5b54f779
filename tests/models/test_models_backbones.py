"""CNNBackbone / VisionTransformer / ViTSpatial / create_encoder, and pretrained= handling."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from visionforge.errors import ConfigError, UnknownNameError, WeightsError
from visionforge.models import create_model
from visionforge.models.backbones import (
    CNNBackbone,
    TimmFeatures,
    VisionTransformer,
    ViTSpatial,
    create_encoder,
)

TINY_VIT = dict(img_size=32, patch_size=8, num_layers=2, hidden_dim=32, num_heads=2, mlp_dim=64)


@pytest.fixture
def offline(monkeypatch):
    """Make sure the Hugging Face hub cannot reach the network."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)


def test_cnn_backbone_resnet18_pyramid():
    net = CNNBackbone(18)
    feats = net(torch.randn(2, 3, 64, 64))
    assert net.out_channels == [64, 128, 256, 512]
    assert net.strides == [4, 8, 16, 32]
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 16, 16),
        (2, 128, 8, 8),
        (2, 256, 4, 4),
        (2, 512, 2, 2),
    ]


def test_cnn_backbone_resnet50_channels_and_in_chans():
    net = CNNBackbone(50, in_chans=1)
    feats = net(torch.randn(1, 1, 64, 64))
    assert net.out_channels == [256, 512, 1024, 2048]
    assert [f.shape[1] for f in feats] == net.out_channels
    assert [64 // f.shape[-1] for f in feats] == net.strides


def test_cnn_backbone_rejects_unknown_depth():
    with pytest.raises(ConfigError, match="depth must be one of"):
        CNNBackbone(20)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_cnn_backbone_loads_a_timm_resnet_checkpoint(tmp_path, suffix):
    source = timm.create_model("resnet18")  # full classifier, as published checkpoints are
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    net = CNNBackbone(18, pretrained=path)
    report = net.visionforge_load_report
    assert sorted(report.unexpected) == ["fc.bias", "fc.weight"]
    assert report.missing == [] and report.mismatched == []
    assert torch.equal(net.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    # Through the registry the same file gives the same weights.
    again = create_model("cnn_backbone", depth=18, pretrained=str(path))
    assert torch.equal(again.conv1.weight, source.conv1.weight)


def test_partial_load_reports_missing_and_mismatched(tmp_path):
    reference = CNNBackbone(18)
    state = {
        "conv1.weight": reference.conv1.weight.detach().clone(),
        "layer1.0.conv1.weight": torch.zeros(3, 3, 3, 3),  # wrong shape
        "not_a_layer.weight": torch.zeros(2),
    }
    path = tmp_path / "partial.safetensors"
    save_file(state, str(path))
    net = CNNBackbone(18, pretrained=path)
    report = net.visionforge_load_report
    assert report.loaded == ["conv1.weight"]
    assert report.unexpected == ["not_a_layer.weight"]
    assert len(report.mismatched) == 1 and report.mismatched[0].startswith("layer1.0.conv1.weight")
    assert "layer4.1.bn2.weight" in report.missing
    assert not report.complete
    assert torch.equal(net.conv1.weight, reference.conv1.weight)


def test_pretrained_true_fails_offline_with_instructions(offline):
    with pytest.raises(WeightsError) as direct:
        CNNBackbone(18, pretrained=True)
    assert "pretrained='/path/to/weights.safetensors'" in str(direct.value)
    with pytest.raises(WeightsError) as via_registry:
        create_model("unet", backbone="resnet18", pretrained=True)
    assert "local file" in str(via_registry.value)


def test_vit_returns_one_map_tensor():
    vit = VisionTransformer(**TINY_VIT)
    out = vit(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 32, 4, 4)
    assert vit.out_channels == [32] and vit.strides == [8]
    # the map of the last block equals the last entry of the features_only pyramid
    pyramid = VisionTransformer(**TINY_VIT, out_indices=(0, -1), features_only=True)
    pyramid.load_state_dict(vit.state_dict())
    x = torch.randn(1, 3, 32, 32)
    assert torch.allclose(vit(x), pyramid(x)[-1])


def test_vit_features_only_returns_chosen_layers_as_maps():
    vit = VisionTransformer(**TINY_VIT, out_indices=(0, -1), features_only=True)
    feats = vit(torch.randn(2, 3, 32, 32))
    assert isinstance(feats, list)
    assert vit.out_indices == [0, 1]
    assert vit.out_channels == [32, 32] and vit.strides == [8, 8]
    assert [tuple(f.shape) for f in feats] == [(2, 32, 4, 4), (2, 32, 4, 4)]
    assert not torch.allclose(feats[0], feats[1])


def test_vit_accepts_other_input_sizes_by_interpolating_position_embeddings():
    vit = VisionTransformer(**TINY_VIT)
    assert tuple(vit.pos_embed.shape) == (1, 1 + 16, 32)
    out = vit(torch.randn(1, 3, 64, 40))
    assert tuple(out.shape) == (1, 32, 8, 5)


def test_vit_rejects_bad_geometry():
    with pytest.raises(ConfigError, match="out_indices"):
        VisionTransformer(**TINY_VIT, out_indices=(5,))
    with pytest.raises(ConfigError, match="features_only=True"):
        VisionTransformer(**TINY_VIT, out_indices=(0, 1))
    with pytest.raises(ConfigError, match="divisible"):
        VisionTransformer(32, 8, 2, 30, 4, 64)


def test_vit_parameter_names_match_timm_so_timm_checkpoints_load(tmp_path):
    from timm.models.vision_transformer import VisionTransformer as TimmViT

    source = TimmViT(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=0
    )
    path = tmp_path / "vit.safetensors"
    save_file(source.state_dict(), str(path))
    vit = VisionTransformer(**TINY_VIT, pretrained=path)
    assert vit.visionforge_load_report.complete
    assert torch.equal(vit.blocks[1].attn.qkv.weight, source.blocks[1].attn.qkv.weight)


def test_vit_pretrained_true_without_published_geometry_says_how_to_fix():
    with pytest.raises(WeightsError, match="pass a local file"):
        VisionTransformer(**TINY_VIT, pretrained=True)


def test_vit_spatial_is_vit_b16_geometry_at_224():
    net = ViTSpatial().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224))
    assert tuple(out.shape) == (1, 768, 14, 14)
    assert len(net.blocks) == 12 and net.out_channels == [768] and net.strides == [16]


def test_tiny_vit_spatial_from_registry_other_size():
    net = create_model("ViTSpatial", **TINY_VIT)
    assert tuple(net(torch.randn(1, 3, 48, 48)).shape) == (1, 32, 6, 6)


def test_create_encoder_names():
    assert isinstance(create_encoder("resnet34"), CNNBackbone)
    assert isinstance(create_encoder("vit", **TINY_VIT), VisionTransformer)
    enc = create_encoder("mobilenetv3_small_050", in_chans=2)
    assert isinstance(enc, TimmFeatures)
    feats = enc(torch.randn(1, 2, 64, 64))
    assert [f.shape[1] for f in feats] == enc.out_channels
    assert [64 // f.shape[-1] for f in feats] == enc.strides
    with pytest.raises(UnknownNameError, match="timm architecture"):
        create_encoder("resnet_does_not_exist")

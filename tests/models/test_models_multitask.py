"""MultitaskModel: heads, attention, backbones, registry factory."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from visionforge.errors import ConfigError, UnknownNameError
from visionforge.models import create_model
from visionforge.models.backbones import CNNBackbone, ViTSpatial
from visionforge.models.layers import CBAM
from visionforge.models.multitask import MultitaskModel


def test_both_heads_return_a_dict_and_train_together():
    backbone = CNNBackbone(18)
    model = MultitaskModel(
        backbone,
        attention=CBAM(512),
        num_classes_classification=3,
        num_classes_segmentation=2,
    )
    x = torch.rand(2, 3, 32, 32)
    out = model(x)
    assert set(out) == {"classification", "segmentation"}
    assert out["classification"].shape == (2, 3)
    assert out["segmentation"].shape == (2, 2, 32, 32)
    loss = nn.functional.cross_entropy(out["classification"], torch.tensor([0, 2]))
    loss = loss + nn.functional.cross_entropy(out["segmentation"], torch.randint(0, 2, (2, 32, 32)))
    loss.backward()
    assert model.attention.spatial.conv.weight.grad is not None
    assert model.head["classification"][-1].weight.grad is not None
    assert model.backbone is backbone


def test_single_heads_return_tensors():
    cls_only = MultitaskModel(CNNBackbone(18), num_classes_classification=4)
    assert cls_only(torch.rand(2, 3, 32, 32)).shape == (2, 4)
    assert cls_only.decoder is None
    seg_only = MultitaskModel(CNNBackbone(18), num_classes_segmentation=3)
    assert seg_only(torch.rand(2, 3, 32, 48)).shape == (2, 3, 32, 48)
    assert seg_only.classifier is None


def test_vit_spatial_backbone_single_map():
    vit = ViTSpatial(
        img_size=32, patch_size=8, num_layers=2, hidden_dim=32, num_heads=2, mlp_dim=64
    )
    model = MultitaskModel(
        vit,
        attention=CBAM(32, reduction=4),
        num_classes_classification=2,
        num_classes_segmentation=2,
    )
    out = model(torch.rand(2, 3, 32, 32))
    assert out["classification"].shape == (2, 2) and out["segmentation"].shape == (2, 2, 32, 32)


def test_errors():
    with pytest.raises(ConfigError, match="num_classes"):
        MultitaskModel(CNNBackbone(18))
    with pytest.raises(ConfigError, match="out_channels"):
        MultitaskModel(nn.Identity(), num_classes_classification=2)
    with pytest.raises(UnknownNameError, match="cbam"):
        create_model("multitask", num_classes_classification=2, attention="se")


def test_registry_factory_is_json_serialisable_and_head_freezable():
    model = create_model(
        "multitask",
        backbone="resnet18",
        num_classes_classification=3,
        num_classes_segmentation=2,
        attention="cbam",
    )
    json.dumps(model.visionforge_spec)
    assert isinstance(model.attention, CBAM)
    keys = list(model.state_dict())
    assert len(keys) == len(set(keys)) and not any(k.startswith("classifier.") for k in keys)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    out = model(torch.rand(2, 3, 32, 32))
    (out["classification"].sum() + out["segmentation"].sum()).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())

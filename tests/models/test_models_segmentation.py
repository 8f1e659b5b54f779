"""DeepLabV3+ (CODAvision and generic), UNet and UNetDecoder."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from visionforge.models import create_model, load_model, model_entry, save_model_dir
from visionforge.models.backbones import CNNBackbone, VisionTransformer
from visionforge.models.decoders import UNetDecoder
from visionforge.models.segmentation import IMAGENET_MEAN_BGR, DeepLabV3Plus, UNet

TINY_VIT = dict(img_size=32, patch_size=8, num_layers=2, hidden_dim=32, num_heads=2, mlp_dim=64)


@pytest.fixture(scope="module")
def codavision():
    torch.manual_seed(0)
    return create_model("DeepLabV3_plus", num_classes=5)


def test_codavision_deeplab_parameter_count(codavision):
    assert isinstance(codavision, DeepLabV3Plus)
    assert sum(p.numel() for p in codavision.parameters()) == 40_360_357
    assert model_entry("DeepLabV3Plus").name == "deeplabv3plus_codavision"


def test_codavision_deeplab_architecture(codavision):
    head = codavision.head
    assert isinstance(codavision.backbone, CNNBackbone) and codavision.backbone.depth == 50
    assert head.low_level_index == 1  # layer2
    assert head.low_level[0].in_channels == 512 and head.low_level[0].out_channels == 48
    assert head.aspp.branches[0][0].in_channels == 2048
    assert [b[0].dilation[0] for b in head.aspp.branches[1:]] == [6, 12, 18]
    assert head.aspp.pooling[1].out_channels == 256
    assert head.aspp.project[0][0].in_channels == 5 * 256
    assert head.aspp.project[1].p == 0.5
    assert head.refine[0][0].in_channels == 304
    assert [m.p for m in head.refine if isinstance(m, nn.Dropout)] == [0.5, 0.1]
    assert head.classifier.out_channels == 5


def test_codavision_deeplab_forward_backward(codavision):
    codavision.train()
    x = torch.rand(2, 3, 64, 64) * 255
    logits = codavision(x)
    assert logits.shape == (2, 5, 64, 64)
    nn.functional.cross_entropy(logits, torch.randint(0, 5, (2, 64, 64))).backward()
    grads = [p.grad for p in codavision.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    codavision.zero_grad(set_to_none=True)


def test_codavision_preprocessing_inside_the_model(codavision):
    assert "mean_bgr" in codavision.state_dict()
    assert "mean_bgr" not in dict(codavision.named_parameters())
    x = torch.empty(1, 3, 2, 2)
    x[:, 0], x[:, 1], x[:, 2] = 10.0, 20.0, 30.0  # R, G, B
    pre = codavision.preprocess(x)
    expected = torch.tensor(
        [30 - IMAGENET_MEAN_BGR[0], 20 - IMAGENET_MEAN_BGR[1], 10 - IMAGENET_MEAN_BGR[2]]
    )
    assert torch.allclose(pre[0, :, 0, 0], expected)
    # forward feeds exactly the preprocessed tensor to the encoder
    seen = {}
    hook = codavision.backbone.conv1.register_forward_pre_hook(
        lambda m, a: seen.setdefault("x", a[0])
    )
    codavision.eval()
    image = torch.rand(1, 3, 32, 32) * 255
    with torch.no_grad():
        codavision(image)
    hook.remove()
    assert torch.equal(seen["x"], codavision.preprocess(image))
    assert torch.allclose(seen["x"][:, 0], image[:, 2] - IMAGENET_MEAN_BGR[0])
    # the buffer follows dtype/device moves with the module
    assert codavision.double().mean_bgr.dtype == torch.float64
    codavision.float()


def test_codavision_encoder_weights_from_local_resnet50(tmp_path):
    resnet = CNNBackbone(50)
    path = tmp_path / "resnet50.pth"
    torch.save(resnet.state_dict(), path)
    model = DeepLabV3Plus(num_classes=2, pretrained=str(path))
    assert model.backbone.visionforge_load_report.complete
    assert torch.equal(model.backbone.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight)


def test_generic_deeplab_with_resnet_and_vit():
    net = create_model("deeplabv3plus_generic", backbone="resnet18", num_classes=3)
    assert net(torch.rand(2, 3, 64, 48)).shape == (2, 3, 64, 48)
    vit_net = create_model(
        "DeepLabV3PlusNet", backbone="vit", num_classes=2, encoder_kwargs=TINY_VIT
    )
    assert vit_net(torch.rand(2, 3, 32, 32)).shape == (2, 2, 32, 32)


def test_unet_decoder_with_cnn_pyramid():
    enc = CNNBackbone(18)
    dec = UNetDecoder(enc.out_channels, 4, decoder_channels=[32, 16, 16, 8])
    x = torch.randn(1, 3, 64, 96)
    assert dec(enc(x), x.shape[-2:]).shape == (1, 4, 64, 96)
    assert len(dec.blocks) == 3 and len(dec.upsample) == 0
    # with the encoder's strides, two x2 stages bring the classifier to full resolution
    full = UNetDecoder(enc.out_channels, 4, decoder_channels=[32, 16, 16, 8], strides=enc.strides)
    assert len(full.upsample) == 2
    seen = {}
    full.classifier.register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    assert full(enc(x), x.shape[-2:]).shape == (1, 4, 64, 96)
    assert seen["x"].shape[-2:] == (64, 96)


def test_unet_decoder_with_vit_maps():
    vit = VisionTransformer(**TINY_VIT, out_indices=(0, 1), features_only=True)
    x = torch.randn(2, 3, 40, 32)
    multi = UNetDecoder(vit.out_channels, 3)
    assert multi(vit(x), x.shape[-2:]).shape == (2, 3, 40, 32)
    single = UNetDecoder([32], 3)
    assert single(vit(x)[-1], x.shape[-2:]).shape == (2, 3, 40, 32)
    with pytest.raises(ValueError, match="expects 1 feature maps"):
        single(vit(x), x.shape[-2:])


def test_unet_with_any_encoder_and_in_chans():
    net = create_model("unet", backbone="resnet18", num_classes=2, in_chans=1)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 2, 32, 32)
    vit_unet = UNet("vit", num_classes=3, encoder_kwargs={**TINY_VIT, "out_indices": [0, 1]})
    assert vit_unet(torch.rand(1, 3, 48, 32)).shape == (1, 3, 48, 32)
    timm_unet = UNet("mobilenetv3_small_050", num_classes=2)
    assert timm_unet(torch.rand(2, 3, 64, 64)).shape == (2, 2, 64, 64)


def test_unet_encoder_weights_from_local_file(tmp_path):
    enc = CNNBackbone(18)
    path = tmp_path / "enc.safetensors"
    save_file(enc.state_dict(), str(path))
    net = UNet("resnet18", num_classes=2, pretrained=str(path))
    assert torch.equal(net.backbone.layer2[0].conv2.weight, enc.layer2[0].conv2.weight)


def test_unet_model_dir_round_trip(tmp_path):
    net = create_model("unet", backbone="resnet18", num_classes=3, decoder_channels=[32, 16, 16, 8])
    net.eval()
    save_model_dir(
        net, tmp_path / "m", task="segmentation", class_names=["a", "b", "c"], input_size=[32, 32]
    )
    loaded = load_model(tmp_path / "m")
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), loaded(x), atol=1e-6)

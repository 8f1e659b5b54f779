"""DeepEpiCnn (nnTraining2) and ResNet1D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionforge.errors import DataError
from visionforge.models import create_model
from visionforge.models.signal import DeepEpiCnn, ResNet1D


def test_deepepicnn_trainable_parameter_count():
    model = create_model("DeepEpiCnn", num_classes=2)
    assert isinstance(model, DeepEpiCnn)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 97_362


def test_deepepicnn_architecture():
    model = DeepEpiCnn()
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == 14
    assert [c.out_channels for c in convs] == [16] + [32] * 11 + [64, 64]
    assert all(c.kernel_size == (5,) and c.padding == (0,) and c.bias is not None for c in convs)
    assert [i + 1 for i, c in enumerate(convs) if c.stride == (2,)] == [5, 10, 14]
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64, 64),
        (64, 64),
        (64, 32),
        (32, 16),
        (16, 2),
    ]
    assert [m.p for m in model.head.modules() if isinstance(m, nn.Dropout)] == [0.025]


def test_deepepicnn_accepts_three_layouts():
    model = DeepEpiCnn().eval()
    x = torch.randn(3, 750)
    with torch.no_grad():
        a, b, c = model(x), model(x[:, None, :]), model(x[:, :, None])
    assert a.shape == (3, 2)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_deepepicnn_rejects_short_or_misshaped_input():
    model = DeepEpiCnn()
    with pytest.raises(DataError, match="at least 125 samples"):
        model(torch.randn(2, 100))
    with pytest.raises(DataError, match="expected"):
        model(torch.randn(2, 3, 750))


def test_deepepicnn_trains():
    torch.manual_seed(0)
    model = DeepEpiCnn(conv_drop_rate=0.1)
    x, y = torch.randn(8, 1, 750), torch.tensor([0, 1] * 4)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("length", [100, 37])
def test_resnet1d_any_channels_and_length(length):
    model = create_model("resnet1d", in_chans=6, num_classes=4, filters=[8, 16, 16])
    assert isinstance(model, ResNet1D)
    x = torch.randn(2, 6, length)
    out = model(x)
    assert out.shape == (2, 4)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.transpose(1, 2)))
    assert isinstance(model.backbone, nn.Module) and isinstance(model.head, nn.Module)


def test_resnet1d_single_channel_2d_input():
    model = ResNet1D(in_chans=1, num_classes=3, filters=(4,))
    assert model(torch.randn(2, 50)).shape == (2, 3)
    with pytest.raises(DataError):
        ResNet1D(in_chans=2)(torch.randn(2, 50))

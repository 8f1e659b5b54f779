"""CBAM and ASPP."""

from __future__ import annotations

import torch

from visionforge.models.layers import ASPP, CBAM


def test_cbam_preserves_shape_and_gates_values():
    block = CBAM(32, reduction=16)
    x = torch.randn(2, 32, 9, 7)
    y = block(x)
    assert y.shape == x.shape
    # Both gates are sigmoids in (0, 1): outputs shrink towards zero but keep their sign.
    assert torch.all(y.abs() <= x.abs() + 1e-6)
    assert torch.all(torch.sign(y[y != 0]) == torch.sign(x[y != 0]))
    assert not torch.allclose(y, x)
    y.sum().backward()
    assert block.channel.mlp[0].weight.grad is not None
    assert block.spatial.conv.weight.grad.abs().sum() > 0


def test_cbam_with_few_channels():
    block = CBAM(4, reduction=16)  # hidden width is clamped to 1
    assert block.channel.mlp[0].out_channels == 1
    assert block(torch.randn(1, 4, 5, 5)).shape == (1, 4, 5, 5)


def test_aspp_shape_branches_and_batch_of_one():
    aspp = ASPP(64, 16, rates=(1, 2, 3), drop_rate=0.1)
    assert len(aspp.branches) == 4  # 1x1 + three atrous branches (+ pooling)
    assert [b[0].dilation[0] for b in aspp.branches[1:]] == [1, 2, 3]
    out = aspp(torch.randn(2, 64, 6, 6))
    assert out.shape == (2, 16, 6, 6)
    aspp.train()
    assert aspp(torch.randn(1, 64, 5, 5)).shape == (1, 16, 5, 5)  # pooling BN with batch 1

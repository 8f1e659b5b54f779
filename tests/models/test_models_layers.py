"""CBAM and ASPP."""

from __future__ import annotations

import pytest
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


def _timm_cbam_like_ours(ours: CBAM, reduction: int, kernel_size: int):
    """timm's CbamModule under the mapping that makes it equal to ours (weights copied)."""
    from timm.layers.cbam import CbamModule

    c = ours.in_channels
    ref = CbamModule(c, rd_channels=max(1, c // reduction), spatial_kernel_size=kernel_size)
    ref.channel.fc1.weight.data.copy_(ours.channel.mlp[0].weight)
    ref.channel.fc2.weight.data.copy_(ours.channel.mlp[2].weight)
    ref.spatial.conv.conv.weight.data.copy_(ours.spatial.conv.weight)
    return ref


@pytest.mark.parametrize("channels,reduction,kernel_size", [(32, 16, 7), (24, 16, 3), (4, 16, 7)])
def test_cbam_matches_timm_cbam_module(channels, reduction, kernel_size):
    torch.manual_seed(0)
    ours = CBAM(channels, reduction=reduction, kernel_size=kernel_size)
    ref = _timm_cbam_like_ours(ours, reduction, kernel_size)
    # timm's spatial branch ends in BatchNorm; with fresh statistics (mean 0, var 1),
    # eval mode and eps=0 it is the identity, and the blocks must then agree exactly.
    ref.eval()
    ref.spatial.conv.bn.eps = 0.0
    x = torch.randn(2, channels, 9, 7)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)
    # The differences the module docstring names, so that this test notices if timm changes:
    # in train mode timm's BatchNorm normalises the spatial logits with batch statistics...
    ref.train()
    ref.spatial.conv.bn.eps = 1e-5
    assert not torch.allclose(ours(x), ref(x), atol=1e-4)
    # ...and timm rounds the hidden width (round(24 / 16) = 2) where ours floors (1).
    from timm.layers.cbam import CbamModule

    if channels == 24:
        assert CbamModule(24, rd_ratio=1 / 16).channel.fc1.out_channels == 2
        assert ours.channel.mlp[0].out_channels == 1


def test_cbam_trains_on_one_1x1_map_unlike_timm():
    """Why we keep ours: the deepest map of a small input can be 1x1 with a batch of one."""
    from timm.layers.cbam import CbamModule

    x = torch.randn(1, 64, 1, 1)
    ours = CBAM(64).train()
    assert ours(x).shape == x.shape
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        CbamModule(64).train()(x)

"""Grad-CAM/attention on timm ViT and Swin, the Explainer, hook hygiene, overlays."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from visionforge.errors import UnknownNameError
from visionforge.explain import (
    AttentionMaps,
    Explainer,
    GradCAM,
    NotApplicableError,
    heatmaps,
    overlay_heatmap,
    save_overlay,
)
from visionforge.registry import EXPLAINERS


def _tensor_count():
    with warnings.catch_warnings():  # isinstance() on deprecated torch module attributes warns
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def _hook_count(model):
    return sum(
        len(m._forward_hooks)
        + len(m._forward_pre_hooks)
        + len(m._backward_hooks)
        + len(getattr(m, "_full_backward_hooks", None) or ())
        for m in model.modules()
    )


def test_gradcam_vit_and_swin_default_layers(models):
    vit = models.vit()
    cam = GradCAM(vit)
    heat = cam.explain(torch.rand(2, 3, 32, 32), target_class=1)
    assert heat.shape == (2, 32, 32) and 0 <= heat.min() and heat.max() <= 1
    assert cam.target_layer is vit.blocks[-1].norm1
    assert heat.flatten(1).std(1).min() > 0  # not a constant map
    swin = models.swin()
    cam_s = GradCAM(swin)
    heat_s = cam_s.explain(torch.rand(2, 3, 32, 32))
    assert heat_s.shape == (2, 32, 32)
    assert cam_s.target_layer is swin.layers[-1].blocks[-1].norm1


def test_attention_maps_match_unfused_softmax(models):
    vit = models.vit().eval()
    x = torch.rand(2, 3, 32, 32)
    maps = AttentionMaps(vit).explain(x)
    n = 1 + 16  # class token + 4x4 patches
    assert maps["layers"].shape == (2, 2, n, n)
    torch.testing.assert_close(maps["layers"].sum(-1), torch.ones(2, 2, n))
    assert maps["cls_attention"].shape == (2, 2, 4, 4)
    assert maps["rollout"].shape == (2, 32, 32) and float(maps["rollout"].max()) == pytest.approx(
        1.0
    )
    # reference: timm's own softmax on the unfused path, read from attn_drop's input
    ref = []
    handles = []
    for blk in vit.blocks:
        blk.attn.fused_attn = False
        handles.append(
            blk.attn.attn_drop.register_forward_hook(
                lambda m, args, out: ref.append(args[0].mean(dim=1))
            )
        )
    with torch.no_grad():
        vit(x)
    for h in handles:
        h.remove()
    torch.testing.assert_close(maps["layers"], torch.stack(ref, dim=1), rtol=1e-4, atol=1e-5)


def test_attention_not_applicable_to_cnn_and_swin(models, square_model):
    with pytest.raises(NotApplicableError, match="ViT"):
        AttentionMaps(square_model)
    assert "window" in AttentionMaps.check(models.swin())


def test_explainer_runs_methods_and_reports_skips(square_model, models):
    x, _, _ = models.square_images(2, torch.Generator().manual_seed(1))
    ex = Explainer(
        square_model, options={"smoothgrad": {"num_samples": 4}, "ig": {"num_steps": 16}}
    )
    out = ex.explain(x, target_class=1)
    assert out["grad_cam"].shape == (2, 32, 32)
    for m in ("saliency", "smoothgrad", "integrated_gradients"):
        assert out[m].shape == x.shape
    assert "attention" not in out and "ViT" in out["skipped"]["attention"]
    assert out["target_class"].tolist() == [1, 1]
    maps = heatmaps(out)
    assert set(maps) == {"grad_cam", "saliency", "smoothgrad", "integrated_gradients"}
    assert all(v.shape == (2, 32, 32) and float(v.max()) <= 1 for v in maps.values())
    # ViT: attention runs; a 1-D signal model: Grad-CAM is skipped, gradients still work
    vit_out = Explainer(models.vit(), ["attention", "grad_cam"]).explain(torch.rand(1, 3, 32, 32))
    assert "rollout" in vit_out["attention"] and not vit_out["skipped"]
    sig = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    sig(torch.rand(1, 2, 20))
    sig_out = Explainer(sig, ["grad_cam", "saliency"]).explain(torch.rand(3, 2, 20))
    assert sig_out["saliency"].shape == (3, 2, 20)
    assert "grad_cam" in sig_out["skipped"]
    with pytest.raises(UnknownNameError, match="grad_cam"):
        Explainer(square_model, ["gradcamm"])
    assert EXPLAINERS.canonical("IG") == "integrated_gradients"


def test_repeated_calls_leave_no_hooks_or_tensors(square_model, models):
    vit = models.vit()
    x = torch.rand(1, 3, 32, 32)
    ex = Explainer(vit, ["grad_cam", "attention", "saliency"])
    assert _hook_count(vit) == 0
    for _ in range(2):  # warm-up: lazy layer selection, allocator caches
        ex.explain(x)
    gc.collect()
    before = _tensor_count()
    for _ in range(5):
        ex.explain(x)
    gc.collect()
    after = _tensor_count()
    assert _hook_count(vit) == 0
    assert after - before <= 2, (before, after)
    assert all(p.grad is None for p in vit.parameters())  # no parameter gradients accumulated
    assert vit.training  # mode restored


def test_overlay_png(tmp_path):
    img = torch.rand(3, 20, 24)
    heat = torch.zeros(20, 24)
    heat[5:10, 5:10] = 1
    arr = overlay_heatmap(img, heat, alpha=0.6)
    assert arr.shape == (20, 24, 3) and arr.dtype == np.uint8
    assert not np.array_equal(arr[7, 7], arr[15, 20])
    path = save_overlay(tmp_path / "o.png", img, heat)
    with Image.open(path) as im:
        assert im.size == (24, 20)
    with pytest.raises(ValueError, match="heatmap shape"):
        overlay_heatmap(img, torch.zeros(5, 5))

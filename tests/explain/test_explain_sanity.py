"""Explanation sanity checks that can fail: localisation, completeness, model randomisation."""

from __future__ import annotations

import copy

import torch
from scipy.stats import spearmanr

from visionforge.explain import (
    GradCAM,
    GradCAMPlusPlus,
    IntegratedGradients,
    SmoothGrad,
    VanillaSaliency,
)
from visionforge.registry import EXPLAINERS


def _positives(models, n=12, seed=7):
    g = torch.Generator().manual_seed(seed)
    x, y, masks = models.square_images(3 * n, g)
    keep = y == 1
    return x[keep][:n], masks[keep][:n]


def _assert_cam_localises(cam, masks):
    assert cam.shape == (masks.shape[0], 32, 32)
    assert cam.min() >= 0 and cam.max() <= 1
    flat = cam.reshape(len(masks), -1).argmax(1)
    inside = masks.reshape(len(masks), -1)[torch.arange(len(masks)), flat]
    assert inside.float().mean() >= 0.9, inside
    # the map's mass concentrates on the square (square covers 64/1024 = 6% of the image)
    mass = (cam * masks).sum((1, 2)) / cam.sum((1, 2))
    assert mass.mean() > 0.3


def test_gradcam_peak_inside_bright_square(square_model, models):
    x, masks = _positives(models)
    _assert_cam_localises(GradCAM(square_model).explain(x, target_class=1), masks)


def test_gradcam_plus_plus_peak_inside_bright_square(square_model, models):
    x, masks = _positives(models)
    assert EXPLAINERS.get("gradcam++") is GradCAMPlusPlus
    assert EXPLAINERS.canonical("gradcam_plus_plus") == "gradcam++"
    cam = EXPLAINERS.build("gradcam++", square_model).attribute(x, target=1)
    _assert_cam_localises(cam, masks)
    # only the channel weights differ from Grad-CAM, and they do make a difference
    plain = GradCAM(square_model).attribute(x, target=1)
    assert (cam - plain).abs().max() > 1e-3


def test_saliency_and_smoothgrad_focus_on_square(square_model, models):
    x, masks = _positives(models, n=6)
    for method in (
        VanillaSaliency(square_model),
        SmoothGrad(square_model, num_samples=8, noise=0.1),
    ):
        attr = method.explain(x, target_class=1)
        assert attr.shape == x.shape
        heat = attr.abs().sum(1)
        mass = (heat * masks).sum((1, 2)) / heat.sum((1, 2))
        assert mass.mean() > 0.15, (method.name, mass)  # > 2.5x the square's area share


def test_integrated_gradients_completeness(square_model, models):
    x, _ = _positives(models, n=4)
    ig = IntegratedGradients(square_model, num_steps=128, internal_batch_size=128)
    attr = ig.explain(x, target_class=1)
    with torch.no_grad():
        diff = square_model(x)[:, 1] - square_model(torch.zeros_like(x))[:, 1]
    total = attr.sum(dim=(1, 2, 3))
    assert torch.allclose(total, diff, rtol=0.05, atol=0.05), (total, diff)
    assert ig.last_delta.abs().max() < 0.05 * diff.abs().max() + 0.05
    # a constant non-zero baseline also satisfies completeness
    ig_half = IntegratedGradients(square_model, num_steps=128, baseline=0.2)
    with torch.no_grad():
        diff2 = square_model(x)[:, 1] - square_model(torch.full_like(x, 0.2))[:, 1]
    assert torch.allclose(
        ig_half.explain(x, target_class=1).sum((1, 2, 3)), diff2, rtol=0.05, atol=0.05
    )


def test_model_randomisation_changes_saliency(square_model, models):
    x, _ = _positives(models, n=4)
    trained = VanillaSaliency(square_model).explain(x, target_class=1).abs().sum(1)
    rand_model = copy.deepcopy(square_model)
    torch.manual_seed(123)
    for m in rand_model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    randomised = VanillaSaliency(rand_model).explain(x, target_class=1).abs().sum(1)
    corr = [spearmanr(a.reshape(-1), b.reshape(-1)).statistic for a, b in zip(trained, randomised)]
    assert max(corr) < 0.5, corr
    cam_r = GradCAM(rand_model).explain(x, target_class=1)
    cam_t = GradCAM(square_model).explain(x, target_class=1)
    assert (cam_r - cam_t).abs().mean() > 0.1


def test_gradcam_segmentation_region_targets(models):
    x = torch.rand(2, 3, 16, 16)
    region = torch.zeros(16, 16)
    region[:4, :4] = 1
    # 1x1 logits head right after the target layer: the region only rescales the weights,
    # so the raw map scales by |region| / (H * W) -- an exact property of Grad-CAM.
    model = models.TinySeg(head_kernel=1)
    cam = GradCAM(model)
    whole = cam.explain(x, target_class=1, normalize=False)
    assert cam.target_layer is not model.classifier  # the logits conv is not the default layer
    assert whole.shape == (2, 16, 16)
    corner = cam.explain(x, target_class=1, region=region, normalize=False)
    torch.testing.assert_close(corner, whole * 16 / 256, rtol=1e-4, atol=1e-6)
    # 3x3 head: the region changes which activations matter
    cam3 = GradCAM(models.TinySeg(head_kernel=3))
    a = cam3.explain(x, target_class=1)
    b = cam3.explain(x, target_class=1, region=region)
    assert not torch.allclose(a, b, atol=1e-3)
    assert 0 <= float(b.min()) and float(b.max()) <= 1
    per_sample = cam3.explain(x, target_class=[0, 2], region=region.expand(2, 16, 16))
    assert per_sample.shape == (2, 16, 16)

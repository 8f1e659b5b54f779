"""Losses against independent reference formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from visionforge.engine.losses import LOSSES, MultitaskLoss, build_loss
from visionforge.errors import ConfigError, UnknownNameError


def codavision_reference(logits, target, weights):
    """Straightforward loops over classes and pixels (float64)."""
    n, c = logits.shape[:2]
    w = [float(x) for x in weights]
    s = sum(w)
    w = [x / s for x in w]
    probs = torch.softmax(logits.double(), dim=1).clamp(1e-7, 1 - 1e-7)
    per_class = []
    for k in range(c):
        values = []
        for b in range(n):
            for i in range(target.shape[1]):
                for j in range(target.shape[2]):
                    if int(target[b, i, j]) == k:
                        values.append(-w[k] * math.log(float(probs[b, k, i, j])))
        per_class.append(sum(values) / len(values) if values else 0.0)
    return sum(per_class) / c


@pytest.mark.parametrize("absent", [False, True])
def test_codavision_matches_reference(absent):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 6, 5, generator=g) * 3
    target = torch.randint(0, 4, (2, 6, 5), generator=g)
    if absent:
        target[target == 2] = 0  # class 2 absent from the batch
        assert not (target == 2).any()
    weights = [0.5, 2.0, 3.0, 1.5]
    loss = build_loss("codavision", "segmentation", class_weights=weights)
    got = float(loss(logits, target))
    ref = codavision_reference(logits, target, weights)
    assert abs(got - ref) <= 1e-6
    # Absent classes contribute 0 but still count in the mean over classes.
    if absent:
        summed = build_loss("codavision", "segmentation", class_weights=weights, reduction="sum")
        assert abs(float(summed(logits, target)) - ref * 4) <= 1e-6


def test_codavision_clamps_and_uniform_weights():
    logits = torch.tensor([[[[100.0]], [[-100.0]]]])  # p(class 1) underflows to 0
    target = torch.tensor([[[1]]])
    loss = build_loss("codavision", "segmentation")
    # uniform weights 1/2; only class 1 present -> mean over 2 classes of (0.5 * -log 1e-7)
    expected = 0.5 * (-math.log(1e-7)) / 2
    assert float(loss(logits, target)) == pytest.approx(expected, rel=1e-5)


def test_codavision_ignore_index_and_bad_labels():
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4))
    ignored = target.clone()
    ignored[0, 0] = 255
    loss = build_loss("codavision", "segmentation", ignore_index=255)
    ref = codavision_reference(logits[:, :, 1:], target[:, 1:], [1, 1, 1])
    assert abs(float(loss(logits, ignored)) - ref) <= 1e-6
    with pytest.raises(ConfigError, match="mask values"):
        build_loss("codavision", "segmentation")(logits, torch.full((1, 4, 4), 7))


@pytest.mark.parametrize("task,shape", [("classification", (8, 5)), ("segmentation", (2, 5, 4, 4))])
def test_cross_entropy_weights_and_smoothing(task, shape):
    logits = torch.randn(*shape)
    target = torch.randint(0, 5, (shape[0], *shape[2:]))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0])
    loss = build_loss(None, task, class_weights=w.tolist(), label_smoothing=0.1)
    ref = F.cross_entropy(logits, target, weight=w, label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, target), ref)
    with pytest.raises(ConfigError, match="class_weights has 3"):
        build_loss("ce", task, class_weights=[1, 2, 3])(logits, target)


def test_dice_perfect_and_no_overlap():
    target = torch.randint(0, 3, (2, 8, 8))
    perfect = F.one_hot(target, 3).movedim(-1, 1).float() * 200 - 100
    dice = build_loss("dice", "segmentation", smooth=1e-6)
    assert float(dice(perfect, target)) == pytest.approx(0.0, abs=1e-5)
    wrong = F.one_hot((target + 1) % 3, 3).movedim(-1, 1).float() * 200 - 100
    assert float(dice(wrong, target)) == pytest.approx(1.0, abs=1e-5)
    # binary (one channel, sigmoid)
    bin_t = (target > 0).long()
    assert float(dice(bin_t[:, None].float() * 200 - 100, bin_t)) == pytest.approx(0.0, abs=1e-5)


def test_dice_class_weights():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :2] = 1  # class 0 and 1 present, class 2 absent
    logits = F.one_hot(target, 3).movedim(-1, 1).float() * 200 - 100
    logits[0, :, 0, 0] = torch.tensor([-100.0, 100.0, -100.0])  # one class-0 pixel wrong
    per_class = []
    probs = logits.softmax(1)
    onehot = F.one_hot(target, 3).movedim(-1, 1).float()
    for c in range(3):
        inter = (probs[:, c] * onehot[:, c]).sum()
        per_class.append(float((2 * inter + 1) / (probs[:, c].sum() + onehot[:, c].sum() + 1)))
    w = [1.0, 2.0, 1.0]
    expected = 1 - sum(a * b for a, b in zip(w, per_class, strict=True)) / sum(w)
    got = build_loss("dice", "segmentation", class_weights=w)(logits, target)
    assert float(got) == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ConfigError, match="dice loss"):
        build_loss("dice", "segmentation", class_weights=[1, 2])(logits, target)


def test_ce_dice_is_sum():
    logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    ce_dice = build_loss("ce_dice", "segmentation")
    expected = F.cross_entropy(logits, target) + build_loss("dice", "segmentation")(logits, target)
    torch.testing.assert_close(ce_dice(logits, target), expected)


def test_focal_gamma0_is_ce_and_down_weights_easy():
    logits, target = torch.randn(16, 4), torch.randint(0, 4, (16,))
    focal0 = build_loss("focal", "classification", gamma=0.0)
    torch.testing.assert_close(focal0(logits, target), F.cross_entropy(logits, target))
    focal2 = build_loss("focal", "classification", gamma=2.0)
    logp = F.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    torch.testing.assert_close(focal2(logits, target), (-((1 - logp.exp()) ** 2) * logp).mean())
    assert float(focal2(logits, target)) < float(focal0(logits, target))


def test_bce_and_pos_weight():
    logits, target = torch.randn(6, 1), torch.randint(0, 2, (6,))
    torch.testing.assert_close(
        build_loss("bce", "classification")(logits, target),
        F.binary_cross_entropy_with_logits(logits.squeeze(1), target.float()),
    )
    weighted = build_loss("bce", "classification", class_weights=[1.0, 3.0])(logits, target)
    ref = F.binary_cross_entropy_with_logits(
        logits.squeeze(1), target.float(), pos_weight=torch.tensor(3.0)
    )
    torch.testing.assert_close(weighted, ref)
    with pytest.raises(ConfigError, match="one output channel"):
        build_loss("bce", "classification")(torch.randn(4, 3), torch.zeros(4))


def test_multitask_loss_picks_active_heads():
    out = {"classification": torch.randn(2, 3), "segmentation": torch.randn(2, 4, 5, 5)}
    label, mask = torch.tensor([0, 2]), torch.randint(0, 4, (2, 5, 5))
    loss = build_loss(None, "multitask", task_weights={"segmentation": 0.5})
    assert isinstance(loss, MultitaskLoss)
    both = loss(out, {"image": None, "label": label, "mask": mask})
    cls = F.cross_entropy(out["classification"], label)
    seg = F.cross_entropy(out["segmentation"], mask)
    torch.testing.assert_close(both, cls + 0.5 * seg)
    assert set(loss.last_parts) == {"classification", "segmentation"}
    torch.testing.assert_close(loss(out, {"label": label}), cls)
    torch.testing.assert_close(loss(out, {"mask": mask}), 0.5 * seg)
    with pytest.raises(ConfigError, match="none of the targets"):
        loss(out, {"image": torch.zeros(1)})
    coda = build_loss(None, "multitask", segmentation_loss="codavision")
    assert type(coda.losses["segmentation"]).__name__ == "CODAvisionLoss"


def test_registry_and_errors():
    assert {"cross_entropy", "codavision", "dice", "ce_dice", "focal", "bce"} <= set(LOSSES)
    with pytest.raises(UnknownNameError, match="Did you mean"):
        build_loss("dicee", "segmentation")
    with pytest.raises(ConfigError, match="unknown task"):
        build_loss(None, "detection")
    with pytest.raises(ConfigError, match="label_smoothing"):
        build_loss("dice", "segmentation", label_smoothing=0.1)
    custom = torch.nn.L1Loss()
    assert build_loss(custom, "classification") is custom


def test_loss_weights_follow_device():
    loss = build_loss("codavision", "segmentation", class_weights=[1, 2])
    assert "weight" in dict(loss.named_buffers())
    assert float(loss.weight.sum()) == pytest.approx(1.0)

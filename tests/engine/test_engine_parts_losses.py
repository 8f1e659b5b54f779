"""Losses against independent reference formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from visionforge.engine.losses import LOSSES, MultitaskLoss, build_loss
from visionforge.errors import ConfigError, UnknownNameError


def codavision_reference(logits, target, weights):
    """Straightforward loops over classes and pixels (float64): CODAvision's value, the sum
    over classes of each class's mean weighted loss (weights normalised to sum 1)."""
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
    return sum(per_class)


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
        mean = build_loss("codavision", "segmentation", class_weights=weights, reduction="mean")
        assert abs(float(mean(logits, target)) - ref / 4) <= 1e-6


def test_codavision_clamps_and_uniform_weights():
    logits = torch.tensor([[[[100.0]], [[-100.0]]]])  # p(class 1) underflows to 0
    target = torch.tensor([[[1]]])
    loss = build_loss("codavision", "segmentation")
    # uniform weights 1/2; only class 1 present -> sum over 2 classes: 0.5 * -log 1e-7 + 0
    expected = 0.5 * (-math.log(1e-7))
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


# -- against MONAI (dev extra) and torchvision -------------------------------------------
# Our losses stay hand-written (ignore_index everywhere, our weight semantics, no runtime
# dependency on MONAI); these tests pin them to the library numbers under the argument
# mapping that makes them equal, including class weights and ignored pixels.
IGNORE = 255


def _monai_losses():
    return pytest.importorskip(
        "monai.losses", reason="monai is not installed (pip install -e '.[dev]')"
    )


def _seg_batch(seed: int, classes: int = 4, ignore: bool = False):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, classes, 6, 5, generator=g) * 2
    target = torch.randint(0, classes, (2, 6, 5), generator=g)
    if ignore:
        target[torch.rand(target.shape, generator=g) < 0.3] = IGNORE
    return logits, target


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0, 3.0]])
def test_dice_matches_monai(ignore, weights):
    ml = _monai_losses()
    logits, target = _seg_batch(3, ignore=ignore)
    ii = IGNORE if ignore else None
    ours = build_loss("dice", "segmentation", class_weights=weights, ignore_index=ii)(
        logits, target
    )
    monai = ml.DiceLoss(
        softmax=True, to_onehot_y=True, batch=True, smooth_nr=1.0, smooth_dr=1.0,
        ignore_index=ii, weight=weights,
    )(logits, target[:, None])
    # MONAI averages w_c * loss_c over the C classes; ours divides by sum(w) instead.
    scale = 1.0 if weights is None else 4 / sum(weights)
    torch.testing.assert_close(ours, monai * scale)
    if ignore:  # independently: MONAI on the valid pixels only, laid out as [1, C, N]
        valid = target != IGNORE
        flat = logits.movedim(1, -1)[valid].T[None]
        monai_valid = ml.DiceLoss(
            softmax=True, to_onehot_y=True, batch=True, smooth_nr=1.0, smooth_dr=1.0,
            weight=weights,
        )(flat, target[valid][None, None])
        torch.testing.assert_close(ours, monai_valid * scale)


def test_binary_dice_matches_monai_two_channel_softmax():
    ml = _monai_losses()
    z = torch.randn(2, 1, 5, 5)
    target = (torch.rand(2, 5, 5) > 0.6).long()
    ours = build_loss("dice", "segmentation")(z, target)
    # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)]: ours averages background and foreground
    two = torch.cat([torch.zeros_like(z), z], dim=1)
    monai = ml.DiceLoss(
        softmax=True, to_onehot_y=True, batch=True, smooth_nr=1.0, smooth_dr=1.0
    )(two, target[:, None])
    torch.testing.assert_close(ours, monai)


@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("weights", [None, [0.5, 2.0, 1.0, 3.0]])
def test_ce_dice_matches_monai(ignore, weights):
    ml = _monai_losses()
    logits, target = _seg_batch(4, ignore=ignore)
    ii = IGNORE if ignore else None
    ours = build_loss(
        "ce_dice", "segmentation", class_weights=weights, ignore_index=ii,
        ce_weight=0.7, dice_weight=1.3,
    )(logits, target)
    if not ignore and weights is None:
        monai = ml.DiceCELoss(
            softmax=True, to_onehot_y=True, batch=True, smooth_nr=1.0, smooth_dr=1.0,
            lambda_ce=0.7, lambda_dice=1.3,
        )(logits, target[:, None])
        torch.testing.assert_close(ours, monai)
    # MONAI's DiceCELoss has no ignore_index and also weights the Dice term: build ours
    # from MONAI's DiceLoss (unweighted, ignore_index) and torch's weighted cross-entropy.
    dice = ml.DiceLoss(
        softmax=True, to_onehot_y=True, batch=True, smooth_nr=1.0, smooth_dr=1.0,
        ignore_index=ii,
    )(logits, target[:, None])
    w = None if weights is None else torch.tensor(weights)
    ce = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE if ignore else -100)
    torch.testing.assert_close(ours, 0.7 * ce + 1.3 * dice)


def test_binary_ce_dice_uses_bce_like_monai():
    ml = _monai_losses()
    z = torch.randn(2, 1, 5, 5)
    target = (torch.rand(2, 5, 5) > 0.6).long()
    ignored = target.clone()
    ignored[0, 0] = IGNORE
    loss = build_loss("ce_dice", "segmentation", class_weights=[1.0, 3.0], ignore_index=IGNORE)
    dice = build_loss("dice", "segmentation", ignore_index=IGNORE)(z, ignored)
    valid = ignored != IGNORE
    # MONAI's DiceCELoss with one channel uses BCEWithLogitsLoss(pos_weight=weight).
    bce = ml.DiceCELoss(sigmoid=True, lambda_dice=0.0, weight=torch.tensor([3.0]))(
        z[:, 0][valid][None, None], target[valid][None, None].float()
    )
    torch.testing.assert_close(loss(z, ignored), bce + dice)
    with pytest.raises(ConfigError, match="2 entries"):
        build_loss("ce_dice", "segmentation", class_weights=[1.0, 2.0, 3.0])(z, target)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
@pytest.mark.parametrize("alpha", [None, [0.25, 1.0, 2.0, 0.5]])
@pytest.mark.parametrize("ignore", [False, True])
def test_focal_matches_monai(gamma, alpha, ignore):
    ml = _monai_losses()
    logits, target = _seg_batch(5, ignore=ignore)
    ii = IGNORE if ignore else None
    ours = build_loss("focal", "segmentation", gamma=gamma, class_weights=alpha, ignore_index=ii)(
        logits, target
    )
    per_elem = ml.FocalLoss(
        to_onehot_y=True, use_softmax=True, gamma=gamma, weight=alpha, reduction="none",
        ignore_index=ii,
    )(logits, target[:, None])
    valid = target != IGNORE
    # MONAI's "mean" divides by B*C*H*W; ours averages per valid pixel (sum over channels).
    torch.testing.assert_close(ours, per_elem.sum(1)[valid].mean())
    if ignore:  # with ignore_index MONAI's own "mean" is already per valid pixel
        monai_mean = ml.FocalLoss(
            to_onehot_y=True, use_softmax=True, gamma=gamma, weight=alpha, ignore_index=ii
        )(logits, target[:, None])
        torch.testing.assert_close(ours, monai_mean)


@pytest.mark.parametrize("gamma,a", [(2.0, 0.25), (1.5, 0.7), (0.0, 0.5)])
def test_two_class_focal_matches_torchvision_sigmoid_focal(gamma, a):
    from torchvision.ops import sigmoid_focal_loss

    z = torch.randn(64) * 2
    y = torch.randint(0, 2, (64,))
    two = torch.stack([torch.zeros_like(z), z], dim=1)  # softmax([0, z])[1] = sigmoid(z)
    ours = build_loss("focal", "classification", gamma=gamma, class_weights=[1 - a, a])(two, y)
    ref = sigmoid_focal_loss(z, y.float(), alpha=a, gamma=gamma, reduction="mean")
    torch.testing.assert_close(ours, ref)


def test_bce_class_weights_match_monai_and_torchvision():
    ml = _monai_losses()
    from torchvision.ops import sigmoid_focal_loss

    z, y, a = torch.randn(8, 1, 4, 4), torch.randint(0, 2, (8, 1, 4, 4)), 0.8
    ours = build_loss("bce", "segmentation", class_weights=[1 - a, a])(z, y)
    # [w0, w1] -> pos_weight w1/w0, i.e. the alpha-weighted BCE divided by w0.
    monai = ml.FocalLoss(gamma=0.0, alpha=a, use_softmax=False)(z, y.float())
    tv = sigmoid_focal_loss(z, y.float(), alpha=a, gamma=0.0, reduction="mean")
    torch.testing.assert_close(ours * (1 - a), monai)
    torch.testing.assert_close(ours * (1 - a), tv)


@pytest.mark.parametrize(
    "name,channels",
    [(n, 3) for n in ("cross_entropy", "ce_dice", "dice", "focal", "codavision")]
    + [("ce_dice", 1), ("dice", 1)],  # binary heads
)
def test_all_ignored_batch_is_zero_with_finite_grads(name, channels):
    logits = torch.randn(2, channels, 4, 4, requires_grad=True)
    target = torch.full((2, 4, 4), IGNORE)
    value = build_loss(name, "segmentation", class_weights=None, ignore_index=IGNORE)(
        logits, target
    )
    assert float(value.detach()) == 0.0  # torch's cross-entropy alone gives NaN here
    value.backward()
    assert torch.isfinite(logits.grad).all()


def test_all_ignored_batch_matches_monai():
    ml = _monai_losses()
    logits, target = torch.randn(2, 3, 4, 4), torch.full((2, 4, 4), IGNORE)
    kw = {"to_onehot_y": True, "ignore_index": IGNORE}
    dice = ml.DiceLoss(softmax=True, batch=True, smooth_nr=1.0, smooth_dr=1.0, **kw)
    focal = ml.FocalLoss(use_softmax=True, **kw)
    for name, ref in (("dice", dice), ("focal", focal)):
        ours = build_loss(name, "segmentation", ignore_index=IGNORE)(logits, target)
        assert float(ours) == pytest.approx(float(ref(logits, target[:, None])), abs=1e-7)


@pytest.mark.parametrize("ignore", [False, True])
def test_codavision_is_sum_of_per_class_torch_cross_entropy(ignore):
    """No library ships the CODAvision loss; pin it to torch's cross-entropy per class."""
    logits, target = _seg_batch(6, ignore=ignore)
    target[target == 2] = 0  # an absent class counts 0 in the mean over classes
    w = torch.tensor([0.5, 2.0, 3.0, 1.5])
    ours = build_loss(
        "codavision", "segmentation", class_weights=w.tolist(),
        ignore_index=IGNORE if ignore else None,
    )(logits, target)
    flat, labels = logits.movedim(1, -1).reshape(-1, 4), target.reshape(-1)
    per_class = [
        (w[c] / w.sum()) * F.cross_entropy(flat[labels == c], labels[labels == c])
        if (labels == c).any() else torch.tensor(0.0)
        for c in range(4)
    ]
    torch.testing.assert_close(ours, torch.stack(per_class).sum())

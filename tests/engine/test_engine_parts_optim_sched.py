"""Optimizer groups and multipliers; LR curves of every schedule."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from visionforge.engine.optim import (
    build_optimizer,
    effective_lrs,
    preferred_scheduler,
    registered_lr_multiplier,
)
from visionforge.engine.schedulers import build_scheduler
from visionforge.errors import ConfigError, UnknownNameError


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 4))
        self.head = nn.Linear(4, 2)


def _groups(opt):
    return {g["name"]: g for g in opt.param_groups}


def test_no_decay_groups_and_multipliers():
    net = Net()
    opt = build_optimizer(
        "adamw", net, lr=1e-3, weight_decay=0.05, lr_multipliers={"backbone": 0.1}
    )
    assert isinstance(opt, torch.optim.AdamW)
    g = _groups(opt)
    assert set(g) == {"backbone/decay", "backbone/no_decay", "default/decay", "default/no_decay"}
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    bb = net.backbone
    assert ids(g["backbone/decay"]) == {id(bb[0].weight), id(bb[2].weight)}
    assert ids(g["backbone/no_decay"]) == {
        id(bb[0].bias),
        id(bb[1].weight),
        id(bb[1].bias),
        id(bb[2].bias),
    }
    assert ids(g["default/decay"]) == {id(net.head.weight)}
    assert g["backbone/decay"]["lr"] == pytest.approx(1e-4)
    assert g["default/decay"]["lr"] == pytest.approx(1e-3)
    assert g["backbone/no_decay"]["weight_decay"] == 0.0
    assert g["default/decay"]["weight_decay"] == 0.05
    n_params = sum(len(x["params"]) for x in opt.param_groups)
    assert n_params == len(list(net.parameters()))


def test_longest_prefix_family_and_frozen():
    net = Net()
    for p in net.backbone[2].parameters():
        p.requires_grad_(False)
    opt = build_optimizer(
        "sgd",
        net,
        lr=0.1,
        nesterov=True,
        lr_multiplier=0.7,
        lr_multipliers={"backbone": 0.5, "backbone.1": 0.2},
    )
    assert isinstance(opt, torch.optim.SGD)
    g = _groups(opt)
    assert g["backbone/no_decay"]["lr"] == pytest.approx(0.1 * 0.7 * 0.5)
    assert g["backbone.1/no_decay"]["lr"] == pytest.approx(0.1 * 0.7 * 0.2)
    assert g["default/no_decay"]["lr"] == pytest.approx(0.07)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True
    assert sum(len(x["params"]) for x in opt.param_groups) == 4 + 2  # frozen Linear left out
    with pytest.raises(ConfigError, match="matches no parameter"):
        build_optimizer("sgd", net, lr=0.1, lr_multipliers={"encoder": 0.1})


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def _tiny(name):
    from visionforge.models import create_model, model_entry

    return create_model(name, **model_entry(name).metadata["test_kwargs"])


def test_registered_family_lr_applied_by_default():
    swin, convnext = _tiny("CustomSwinTransformer"), _tiny("CustomConvNeXt")
    assert registered_lr_multiplier(swin) == 0.7 and registered_lr_multiplier(convnext) == 1.2
    for model, factor in ((swin, 0.7), (convnext, 1.2)):
        opt = build_optimizer("adamw", model, lr=1e-3, weight_decay=0.05)
        assert _lrs(opt) == pytest.approx([1e-3 * factor] * len(opt.param_groups))
    # the prefix multipliers still apply on top of the family's
    opt = build_optimizer("adamw", swin, lr=1e-3, lr_multipliers={"backbone": 0.1})
    g = _groups(opt)
    assert g["backbone/no_decay"]["lr"] == pytest.approx(1e-3 * 0.7 * 0.1)
    assert g["default/no_decay"]["lr"] == pytest.approx(1e-3 * 0.7)
    assert preferred_scheduler(swin) == "warmup_cosine"
    assert preferred_scheduler(convnext) == "onecycle"


def test_explicit_lr_multiplier_overrides_the_family():
    swin = _tiny("CustomSwinTransformer")
    opt = build_optimizer("adam", swin, lr=1e-3, lr_multiplier=1.0)
    assert _lrs(opt) == pytest.approx([1e-3] * len(opt.param_groups))
    opt = build_optimizer("adam", swin, lr=1e-3, lr_multiplier=2.0)
    assert _lrs(opt) == pytest.approx([2e-3] * len(opt.param_groups))
    with pytest.raises(ConfigError, match="lr_multiplier"):
        build_optimizer("adam", swin, lr=1e-3, lr_multiplier=0.0)


def test_unregistered_models_get_factor_one_and_no_preference():
    import timm

    net = timm.create_model("resnet18", num_classes=2)
    assert registered_lr_multiplier(net) == 1.0 and preferred_scheduler(net) is None
    assert registered_lr_multiplier(Net()) == 1.0 and preferred_scheduler(Net()) is None
    opt = build_optimizer("sgd", Net(), lr=0.1)
    assert [lr for _, lr in effective_lrs(opt)] == pytest.approx([0.1] * len(opt.param_groups))


def test_task_module_applies_and_logs_the_family_lr(caplog):
    import logging

    from visionforge.engine.module import TaskModule

    model = _tiny("CustomSwinTransformer")
    module = TaskModule(model, task="classification", lr=1e-3, optimizer="adamw", num_classes=3)
    with caplog.at_level(logging.INFO, logger="visionforge.engine.module"):
        opt = module.configure_optimizers()
    assert _lrs(opt) == pytest.approx([7e-4] * len(opt.param_groups))
    assert [name for name, _ in module.effective_lrs] == [g["name"] for g in opt.param_groups]
    assert all(lr == pytest.approx(7e-4) for _, lr in module.effective_lrs)
    lines = [r.getMessage() for r in caplog.records if "effective learning rate" in r.getMessage()]
    assert len(lines) == len(opt.param_groups) and "0.0007" in lines[0]
    override = TaskModule(model, task="classification", lr=1e-3, lr_multiplier=1.0, metrics=False)
    opt = override.configure_optimizers()
    assert _lrs(opt) == pytest.approx([1e-3] * len(opt.param_groups))


def test_other_optimizer_inputs():
    net = Net()
    opt = build_optimizer("adam", net.parameters(), lr=0.01, betas=(0.8, 0.99))
    assert opt.param_groups[0]["betas"] == (0.8, 0.99)
    inst = torch.optim.SGD(net.parameters(), lr=0.1)
    assert build_optimizer(inst, net, lr=1.0) is inst
    opt = build_optimizer(
        torch.optim.RMSprop,
        [{"params": net.head.parameters(), "lr": 0.5}],
        lr=0.1,
        lr_multiplier=0.8,
    )
    assert opt.param_groups[0]["lr"] == pytest.approx(0.4)
    with pytest.raises(UnknownNameError):
        build_optimizer("adamx", net, lr=0.1)
    with pytest.raises(ConfigError, match="learning rate"):
        build_optimizer("adam", net, lr=0.0)


def _curve(name, steps, opt=None, **kw):
    opt = opt or torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    s, interval, monitor = build_scheduler(name, opt, **kw)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation noise from torch schedulers
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
    return lrs, interval, monitor


def test_onecycle_peaks_at_30_percent():
    lrs, interval, monitor = _curve("onecycle", 100, epochs=10, steps_per_epoch=10)
    assert interval == "step" and monitor is None
    assert max(range(100), key=lrs.__getitem__) in (29, 30)
    assert max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[0] == pytest.approx(1.0 / 25) and lrs[-1] < 1e-3


def test_onecycle_keeps_group_ratio():
    net = Net()
    opt = build_optimizer("adamw", net, lr=1.0, lr_multipliers={"backbone": 0.1})
    s, _, _ = build_scheduler("onecycle", opt, epochs=1, steps_per_epoch=10)
    for _ in range(3):
        opt.step()
        s.step()
    g = _groups(opt)
    assert g["backbone/no_decay"]["lr"] == pytest.approx(0.1 * g["default/no_decay"]["lr"])


def test_warmup_cosine_shape():
    lrs, interval, _ = _curve("warmup_cosine", 50, epochs=10, steps_per_epoch=5, min_lr=0.0)
    assert interval == "step"
    warm = lrs[:10]  # 2 warm-up epochs x 5 steps
    assert all(b > a for a, b in zip(warm, warm[1:], strict=False))
    assert lrs[0] == pytest.approx(1e-3) and lrs[10] == pytest.approx(1.0)
    decay = lrs[10:]
    assert all(b < a for a, b in zip(decay, decay[1:], strict=False))
    # cosine: halfway through the decay phase the LR is half the peak
    assert lrs[10 + 20] == pytest.approx(0.5, abs=1e-6)


def test_three_phase_nntraining2_keys():
    kw = dict(lrPeak=1.0, lrMainEnd=0.1, warmupSteps=4, mainSteps=10, cooldownSteps=5)
    lrs, interval, _ = _curve("three_phase", 22, epochs=1, steps_per_epoch=1, **kw)
    assert interval == "step"
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] == pytest.approx(1.0)
    assert lrs[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert lrs[14:19] == pytest.approx([0.08, 0.06, 0.04, 0.02, 0.0], abs=1e-12)
    assert lrs[21] == 0.0


def test_three_phase_defaults_from_total():
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.01)
    lrs, _, _ = _curve("three_phase", 100, opt=opt, epochs=10, steps_per_epoch=10)
    assert max(lrs) == pytest.approx(0.01)
    assert lrs.index(max(lrs)) == 4  # 5 % warm-up
    # main phase ends at 1 % of the peak, then a 10 % linear cool-down to 0
    assert lrs[89] == pytest.approx(1e-4 + (0.01 - 1e-4) * 0.5 * (1 + math.cos(math.pi * 84 / 85)))
    assert lrs[90] == pytest.approx(1e-4 * 0.9)
    assert lrs[99] == pytest.approx(0.0, abs=1e-15)


def test_plateau_reduces_after_patience():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s, interval, monitor = build_scheduler(
        "plateau", opt, epochs=10, steps_per_epoch=1, factor=0.5, patience=2, min_lr=0.3
    )
    assert interval == "epoch" and monitor == "val_loss"
    lrs = []
    for loss in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]:
        s.step(loss)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == [1.0, 1.0, 1.0]
    assert lrs[3] == 0.5  # 3rd epoch without improvement beyond patience=2
    assert min(lrs) == pytest.approx(0.3)  # floor
    _, _, mon = build_scheduler("plateau", opt, epochs=1, steps_per_epoch=1, monitor="val_accuracy")
    assert mon == "val_accuracy"


def test_none_and_passthrough_and_errors():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    assert build_scheduler("none", opt, epochs=1, steps_per_epoch=1)[0] is None
    assert build_scheduler(None, opt, epochs=1, steps_per_epoch=1)[0] is None
    own = torch.optim.lr_scheduler.StepLR(opt, 2)
    assert build_scheduler(own, opt, epochs=1, steps_per_epoch=1, interval="step") == (
        own,
        "step",
        None,
    )
    with pytest.raises(UnknownNameError):
        build_scheduler("cosin", opt, epochs=1, steps_per_epoch=1)
    with pytest.raises(ConfigError, match="unknown option"):
        build_scheduler("warmup_cosine", opt, epochs=2, steps_per_epoch=2, warmpu=3)

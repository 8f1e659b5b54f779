"""Each of verify's checks fails on a model that breaks it (so a PASS means something)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from visionforge.models.verify import VerifyResult, verify


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def _failed(result: VerifyResult) -> set[str]:
    return {c.name for c in result.failed}


def test_good_model_passes_and_serialises():
    result = verify(Tiny(), (3, 16, 16), num_classes=3)
    assert result.passed, result.summary()
    d = result.to_dict()
    assert d["params_total"] == sum(p.numel() for p in Tiny().parameters())
    assert d["layer_inventory"] == {"Conv2d": 1, "Linear": 1}
    assert d["output_shape"] == [2, 3]
    assert result.check("backward").passed


def test_wrong_num_classes_fails_output_shape():
    assert _failed(verify(Tiny(4), (3, 16, 16), num_classes=3)) == {"output_shape"}


def test_unused_parameter_fails_backward():
    model = Tiny()
    model.unused = nn.Linear(2, 2)
    result = verify(model, (3, 16, 16), num_classes=3)
    assert _failed(result) == {"backward"}
    assert "unused.weight" in result.check("backward").detail


def test_nan_output_fails_forward_and_backward():
    class Nan(Tiny):
        def forward(self, x):
            return super().forward(x) * float("nan")

    assert {"forward", "backward"} <= _failed(verify(Nan(), (3, 16, 16), num_classes=3))


def test_frozen_model_fails_trainable_params():
    model = Tiny().requires_grad_(False)
    assert "trainable_params" in _failed(verify(model, (3, 16, 16), num_classes=3))


def test_random_eval_output_fails_mode_switch():
    class Noisy(Tiny):
        def forward(self, x):
            return super().forward(x) + torch.rand(x.shape[0], 3)

    assert _failed(verify(Noisy(), (3, 16, 16), num_classes=3)) == {"train_eval_switch"}


def test_mode_flags_that_do_not_flip_fail():
    class Stuck(Tiny):
        def train(self, mode=True):
            return super().train(True)

    assert "train_eval_switch" in _failed(verify(Stuck(), (3, 16, 16), num_classes=3))


def test_segmentation_output_must_match_input_size():
    class Seg(nn.Module):
        def __init__(self, full_res: bool) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1, stride=1 if full_res else 2)

        def forward(self, x):
            return self.conv(x)

    assert verify(Seg(True), (3, 16, 16), num_classes=2, task="segmentation").passed
    bad = verify(Seg(False), (3, 16, 16), num_classes=2, task="segmentation")
    assert _failed(bad) == {"output_shape"}


def test_multitask_dict_and_backbone_list():
    class Multi(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            f = self.conv(x)
            return {"classification": self.fc(f.mean((2, 3))), "segmentation": f}

    expected = {"classification": 3, "segmentation": 2}
    result = verify(Multi(), (3, 8, 8), num_classes=expected)
    assert result.passed and result.task == "multitask", result.summary()
    assert not verify(Multi(), (3, 8, 8), num_classes={"classification": 4}).passed

    class Pyramid(nn.Module):
        out_channels = [4, 8]
        strides = [2, 4]

        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, 2, 1)
            self.b = nn.Conv2d(4, 8, 3, 2, 1)

        def forward(self, x):
            a = self.a(x)
            return [a, self.b(a)]

    result = verify(Pyramid(), (3, 16, 16))
    assert result.passed and result.task == "backbone", result.summary()
    Pyramid.out_channels = [4, 9]
    assert _failed(verify(Pyramid(), (3, 16, 16))) == {"output_shape"}


def test_unavailable_device_fails_first_check():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here; the failure path needs a machine without it")
    result = verify(Tiny(), (3, 16, 16), device="cuda")
    assert not result.passed and [c.name for c in result.checks] == ["device_transfer"]


def test_training_mode_restored():
    model = Tiny().eval()
    verify(model, (3, 16, 16))
    assert not model.training
    assert all(p.grad is None for p in model.parameters())

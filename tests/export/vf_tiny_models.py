"""Tiny test-only models (registered under unique names) and model-dir builders.

Loaded by the conftests of tests/export, tests/inference and tests/serve by file path
(pytest runs with --import-mode=importlib, so test folders are not packages).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from visionforge.models import create_model, register_model, save_model_dir
from visionforge.registry import MODELS


class TinySeg(nn.Module):
    """Conv encoder-decoder: logits [B, num_classes, H, W] at input resolution."""

    def __init__(self, num_classes: int = 3, in_chans: int = 3) -> None:
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(16, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.enc(x))
        return nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class TinyMulti(nn.Module):
    """Shared conv trunk with a classification and a segmentation head (dict output)."""

    def __init__(self, num_classes: int = 3, num_seg: int = 2) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.cls = nn.Linear(8, num_classes)
        self.seg = nn.Conv2d(8, num_seg, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.trunk(x)
        return {"classification": self.cls(f.mean((2, 3))), "segmentation": self.seg(f)}


class InputProbe(nn.Module):
    """Logits = per-channel input means (so outputs depend on every input value and its order)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))[:, : self.scale.numel()] * self.scale


if "_test_tiny_seg" not in MODELS:
    register_model("_test_tiny_seg", task="segmentation", test_input=(3, 32, 32))(TinySeg)
if "_test_tiny_multi" not in MODELS:
    register_model("_test_tiny_multi", task="multitask", test_input=(3, 32, 32))(TinyMulti)
if "_test_input_probe" not in MODELS:
    register_model("_test_input_probe", task="classification", test_input=(3, 8, 8))(InputProbe)


def make_probe_dir(path: Path, preprocessing, size: int = 8) -> Path:
    """A model dir of :class:`InputProbe` whose ``model.json`` records ``preprocessing``."""
    model = create_model("_test_input_probe", num_classes=3)
    labels = {"task": "classification", "class_names": ["r", "g", "b"]}
    return save_model_dir(
        model, path, input_size=[3, size, size], preprocessing=preprocessing, **labels
    )


def record_inputs(model: nn.Module) -> list[torch.Tensor]:
    """Inputs ``model`` receives from now on (a forward pre-hook appends each batch)."""
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().float().clone()))
    return seen


def _randomise_bn(model: nn.Module) -> nn.Module:
    # Non-trivial running stats so that exported graphs must carry them correctly.
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2, generator=g)
            m.running_var.uniform_(0.5, 1.5, generator=g)
    return model.eval()


def make_classifier_dir(path: Path, size: int = 32) -> Path:
    torch.manual_seed(0)
    model = _randomise_bn(create_model("resnet18", num_classes=3))
    return save_model_dir(
        model,
        path,
        task="classification",
        class_names=["cat", "dog", "bird"],
        input_size=[3, size, size],
        preprocessing={
            "input_range": [0, 1],
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
        },
    )


def make_tiny_seg_dir(path: Path, size: int = 32) -> Path:
    torch.manual_seed(0)
    model = _randomise_bn(create_model("_test_tiny_seg", num_classes=3))
    return save_model_dir(
        model,
        path,
        task="segmentation",
        class_names=["background", "tissue", "fat"],
        input_size=[3, size, size],
        preprocessing={"input_range": [0, 1], "mean": None, "std": None},
    )


def make_signal_dir(path: Path) -> Path:
    torch.manual_seed(0)
    model = _randomise_bn(create_model("resnet1d", in_chans=6, num_classes=4, filters=[8, 16, 16]))
    return save_model_dir(
        model,
        path,
        task="signal",
        class_names=["walk", "run", "rest", "fall"],
        input_size=[6, 100],
    )


def make_multitask_dir(path: Path) -> Path:
    torch.manual_seed(0)
    model = create_model("_test_tiny_multi", num_classes=3, num_seg=2)
    return save_model_dir(
        model,
        path,
        task="multitask",
        class_names=["a", "b", "c"],
        input_size=[3, 32, 32],
        extra={
            "classification_class_names": ["a", "b", "c"],
            "segmentation_class_names": ["bg", "fg"],
        },
    )


def make_codavision_dir(path: Path, size: int = 64) -> Path:
    torch.manual_seed(0)
    model = _randomise_bn(create_model("deeplabv3plus_codavision", num_classes=5))
    return save_model_dir(
        model,
        path,
        task="segmentation",
        class_names=["background", "tumour", "stroma", "fat", "necrosis"],
        input_size=[3, size, size],
        preprocessing={"input_range": [0, 255], "mean": None, "std": None},
    )

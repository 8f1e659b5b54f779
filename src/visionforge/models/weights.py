"""Load weights from a local file into a model, reporting partial loads."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from visionforge.io import load_state_dict_file

__all__ = ["LoadReport", "load_weights"]

_log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What a (possibly partial) weight load did."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        return (
            f"{self.path}: loaded {len(self.loaded)} tensors; missing {len(self.missing)}, "
            f"unexpected {len(self.unexpected)}, shape-mismatched {len(self.mismatched)}"
        )


def load_weights(
    model: nn.Module, path: str | os.PathLike[str], *, strict: bool = False
) -> LoadReport:
    """Load ``path`` (``.safetensors`` or a ``.pth`` state dict, never unpickled) into ``model``.

    Tensors whose shapes differ (e.g. a classifier for another number of
    classes) are skipped and reported. With ``strict=True`` any missing,
    unexpected or mismatched key raises ``RuntimeError``. The report is also
    stored on ``model.visionforge_load_report``.
    """
    state = load_state_dict_file(path)
    own = model.state_dict()
    report = LoadReport(path=os.fspath(path))
    usable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif tuple(own[key].shape) != tuple(value.shape):
            report.mismatched.append(
                f"{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}"
            )
        else:
            usable[key] = value
    report.missing = [k for k in own if k not in state]
    report.loaded = sorted(usable)
    if strict and not report.complete:
        raise RuntimeError(
            f"strict weight load failed: {report.summary()}; first problems: "
            f"{(report.missing + report.unexpected + report.mismatched)[:5]}"
        )
    model.load_state_dict(usable, strict=False)
    if not report.complete:
        _log.warning("partial weight load: %s", report.summary())
    model.visionforge_load_report = report
    return report

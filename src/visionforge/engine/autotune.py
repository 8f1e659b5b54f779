"""``precision=auto`` / ``channels_last=auto``: a short probe picks the fastest safe setting.

For one real training batch the probe times a few forward+backward passes of a copy of the
model in every candidate setting (fp32, bf16/fp16 autocast where the hardware has them,
NCHW or channels_last memory layout) and keeps the fastest one whose loss and logits stay
close to fp32's at the same weights. Nothing in Lightning or torch picks a precision by
measuring, hence this module; the settings it picks are then applied by Lightning's own
precision plugins and ``torch.channels_last``.

The probe works on a deep copy of the model under a forked RNG, so the run that follows
starts from the same weights, BatchNorm statistics and random state as without it.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from visionforge.engine.precision import cpu_native_bf16

__all__ = ["SpeedChoice", "candidate_precisions", "probe_speed", "MIN_GAIN", "TOLERANCE"]

_log = logging.getLogger(__name__)

#: a setting must beat fp32/NCHW by this factor to be chosen (below it, timing noise decides)
MIN_GAIN = 1.05
#: largest relative difference of loss and logits to fp32 that counts as numerically safe
TOLERANCE = 0.05


@dataclass
class SpeedChoice:
    """What the probe chose and why: ``precision`` is a Lightning precision string."""

    precision: str
    channels_last: bool
    seconds: dict[str, float] = field(default_factory=dict)  # label -> median s per step
    base: str = "fp32"  # the label the gain is measured against
    rejected: dict[str, str] = field(default_factory=dict)  # label -> why it is unsafe

    @property
    def label(self) -> str:
        return _label(self.precision, self.channels_last)

    def line(self) -> str:
        """One line: ``speed probe: bf16-mixed+channels_last (1.42x fp32; tried ...)``."""
        base = self.seconds.get(self.base)
        mine = self.seconds.get(self.label)
        gain = f"{base / mine:.2f}x {self.base}" if base and mine else "baseline"
        tried = ", ".join(
            f"{k} {1000 * v:.0f}ms" for k, v in sorted(self.seconds.items(), key=lambda kv: kv[1])
        )
        unsafe = "; unsafe: " + ", ".join(self.rejected) if self.rejected else ""
        return f"speed probe chose {self.label} ({gain}; per step: {tried}{unsafe})"


def _label(precision: str, channels_last: bool) -> str:
    name = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}.get(precision, precision)
    return name + ("+channels_last" if channels_last else "")


def candidate_precisions(device: str) -> list[str]:
    """Precisions worth probing on ``device``: fp32 always; bf16 where the hardware computes
    it natively (CUDA with bf16 support, CPUs with AVX512-BF16/AMX); fp16 on CUDA and MPS."""
    kind = device.split(":")[0]
    out = ["32-true"]
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            out.append("bf16-mixed")
        out.append("16-mixed")
    elif kind == "mps":
        out.append("16-mixed")
    elif kind == "cpu" and cpu_native_bf16():
        out.append("bf16-mixed")
    return out


def _autocast(precision: str, device: str) -> Any:
    kind = device.split(":")[0]
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    if dtype is None:
        return torch.autocast(kind, enabled=False)
    return torch.autocast(kind, dtype=dtype)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        return next(v for v in out.values() if isinstance(v, torch.Tensor))
    return out[0]


def _run(model: nn.Module, x: torch.Tensor, loss_fn: Callable[[Any], torch.Tensor],
         precision: str, device: str, steps: int) -> tuple[float, float, torch.Tensor]:
    """Median seconds per training forward+backward, and the eval-mode loss and logits.

    The numerical comparison is made in eval mode: in train mode dropout masks follow the
    memory layout, so NCHW and channels_last would differ by design, not by precision.
    """
    model.eval()
    with torch.no_grad(), _autocast(precision, device):
        out = model(x)
        ref_loss = float(loss_fn(out).float())
    ref_out = _first_tensor(out).detach().float()
    model.train()
    times: list[float] = []
    for i in range(steps + 1):  # the first pass warms up (allocator, oneDNN/cuDNN kernels)
        model.zero_grad(set_to_none=True)
        _sync(device)
        start = time.perf_counter()
        with _autocast(precision, device):
            loss = loss_fn(model(x))
        loss.backward()
        _sync(device)
        if i:
            times.append(time.perf_counter() - start)
    if not bool(torch.isfinite(loss.detach())):  # training itself must stay finite too
        ref_loss = float("nan")
    return statistics.median(times), ref_loss, ref_out


def _unsafe(loss: float, out: torch.Tensor, ref_loss: float, ref_out: torch.Tensor) -> str | None:
    """Why a setting's results differ too much from fp32's (None when they agree)."""
    if not torch.isfinite(torch.tensor(loss)) or not bool(torch.isfinite(out).all()):
        return "non-finite loss or logits"
    loss_err = abs(loss - ref_loss) / max(abs(ref_loss), 1e-6)
    out_err = float((out - ref_out).norm() / ref_out.norm().clamp_min(1e-6))
    if loss_err > TOLERANCE or out_err > TOLERANCE:
        return f"loss differs {loss_err:.1%}, logits {out_err:.1%} from fp32"
    return None


def probe_speed(
    model: nn.Module,
    x: torch.Tensor,
    loss_fn: Callable[[Any], torch.Tensor],
    *,
    device: str,
    precisions: Sequence[str] | None = None,
    layouts: Sequence[bool] = (False, True),
    steps: int = 3,
) -> SpeedChoice:
    """Time every (precision, layout) pair on ``x`` and return the fastest numerically safe one.

    Args:
        model: the model to train (left untouched: the probe works on a copy).
        x: one training batch of inputs; ``loss_fn(model(x))`` gives a scalar loss.
        precisions: Lightning precision strings to try (default :func:`candidate_precisions`).
        layouts: whether to try channels_last (``True``) and/or NCHW (``False``); channels_last
            is only tried for 4-D inputs.
        steps: timed passes per setting (after one warm-up pass).
    """
    precisions = list(precisions or candidate_precisions(device))
    layouts = sorted({cl for cl in layouts if not cl or x.ndim == 4} or {False})
    # fp32/NCHW runs first: the reference of the safety check, timed only when a candidate
    runs = [("32-true", False)] + [(p, cl) for cl in layouts for p in precisions
                                   if (p, cl) != ("32-true", False)]
    base_label = _label(precisions[0], layouts[0])
    rng_devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
    choice = SpeedChoice(precisions[0], layouts[0])
    ref: tuple[float, torch.Tensor] | None = None
    with torch.random.fork_rng(devices=rng_devices):
        probe_model = copy.deepcopy(model).to(device).train()
        start_state = copy.deepcopy(probe_model.state_dict())
        x = x.to(device)
        for precision, channels_last in runs:
            # every setting starts from the same weights and BatchNorm statistics (the
            # training passes of the previous setting updated the statistics)
            probe_model.load_state_dict(start_state)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            probe_model = probe_model.to(memory_format=fmt)
            label = _label(precision, channels_last)
            try:
                sec, loss, out = _run(probe_model, x.contiguous(memory_format=fmt), loss_fn,
                                      precision, device, steps)
            except (RuntimeError, NotImplementedError) as exc:  # an op without a kernel
                choice.rejected[label] = f"failed: {str(exc).splitlines()[0][:80]}"
                continue
            if ref is None:
                ref = (loss, out)
            why = _unsafe(loss, out, *ref)
            if why:
                choice.rejected[label] = why
            elif precision in precisions and channels_last in layouts:
                choice.seconds[label] = sec
        del probe_model
    base = choice.seconds.get(base_label)
    best = min(choice.seconds.items(), key=lambda kv: kv[1], default=None)
    if best is not None and base is not None and base / best[1] >= MIN_GAIN:
        choice.precision, choice.channels_last = next(
            (p, cl) for p, cl in runs if _label(p, cl) == best[0])
    choice.base = base_label
    _log.info(choice.line())
    return choice

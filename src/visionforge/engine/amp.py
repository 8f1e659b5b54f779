"""``MixedPrecisionManager``: autocast + gradient scaling for hand-written training loops.

The :class:`~visionforge.Trainer` does mixed precision through Lightning's precision plugins;
this class serves loops written by hand (the modular library's ``amp.autocast()`` /
``amp.backward(loss)`` pattern). It only picks the dtype and holds torch's own
``torch.autocast`` and ``torch.amp.GradScaler``.

Example:
    >>> amp = MixedPrecisionManager(enabled=True, device="cpu")
    >>> amp.active  # CPU falls back to fp32
    False
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from visionforge.errors import ConfigError

__all__ = ["MixedPrecisionManager"]


class MixedPrecisionManager:
    """Mixed precision on CUDA, fp32 elsewhere.

    Args:
        enabled: ``False`` makes every method a plain fp32 pass-through.
        device: ``"auto"`` (CUDA > MPS > CPU, honouring ``VISIONFORGE_DEVICE``), ``"cuda"``...
        dtype: ``None`` = bfloat16 where the GPU supports it (no gradient scaling needed, so a
            plain ``optimizer.step()`` after :meth:`backward` is correct), else float16 with a
            ``GradScaler`` -- then call :meth:`step` (or ``backward(loss, optimizer)``) instead
            of ``optimizer.step()``, because the gradients are scaled.

    On CPU and MPS it falls back to fp32 (``active`` is False).
    """

    def __init__(self, enabled: bool = True, device: str | None = "auto",
                 dtype: torch.dtype | None = None) -> None:
        from visionforge.engine.precision import resolve_device

        self.device_type = resolve_device(device or "auto").split(":")[0]
        self.active = bool(enabled) and self.device_type == "cuda"
        if dtype not in (None, torch.float16, torch.bfloat16):
            raise ConfigError(f"dtype must be None, torch.float16 or torch.bfloat16, got {dtype}")
        if self.active and dtype is None:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.dtype = dtype if self.active else torch.float32
        self.scaler = (torch.amp.GradScaler("cuda") if self.active and self.dtype == torch.float16
                       else None)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Run the forward pass (and loss) under autocast (a no-op when not active)."""
        if not self.active:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Backpropagate ``loss`` (scaled under float16); with ``optimizer`` also step it."""
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
        if optimizer is not None:
            self.step(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()`` -- through the scaler (unscale, skip on inf/NaN) under float16."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state (empty without one), for checkpoints."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    def __repr__(self) -> str:
        return f"MixedPrecisionManager(device={self.device_type!r}, dtype={self.dtype}, active={self.active})"

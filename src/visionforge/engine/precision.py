"""Device and precision resolution (explicit argument > environment > automatic).

``resolve_device("auto")`` honours ``VISIONFORGE_DEVICE`` then picks CUDA, MPS or
CPU; ``resolve_precision(mixed_precision, device)`` maps a flag or name to a
Lightning precision string: ``"16-mixed"`` (fp16 autocast + GradScaler) on CUDA,
``"bf16-mixed"`` on CPU when bfloat16 autocast works there, ``"32-true"`` otherwise.
``mixed_precision=None`` reads ``VISIONFORGE_AMP`` (1/true/0/false or a name).
"""

from __future__ import annotations

import functools
import logging

import torch

from visionforge.config.framework import best_available_device, env_setting, mps_available
from visionforge.errors import ConfigError

__all__ = [
    "resolve_device",
    "resolve_precision",
    "lightning_accelerator",
    "cpu_supports_bf16",
    "cpu_native_bf16",
    "PRECISION_ALIASES",
]

_log = logging.getLogger(__name__)

PRECISION_ALIASES = {
    "16": "16-mixed",
    "fp16": "16-mixed",
    "float16": "16-mixed",
    "half": "16-mixed",
    "16-mixed": "16-mixed",
    "bf16": "bf16-mixed",
    "bfloat16": "bf16-mixed",
    "bf16-mixed": "bf16-mixed",
    "16-true": "16-true",
    "bf16-true": "bf16-true",
    "32": "32-true",
    "fp32": "32-true",
    "float32": "32-true",
    "32-true": "32-true",
    "64": "64-true",
    "64-true": "64-true",
}
_TRUE = {"1", "true", "yes", "on", "auto", "mixed"}
_FALSE = {"0", "false", "no", "off", "none", ""}


def resolve_device(device: str | torch.device | None = "auto") -> str:
    """Return a torch device string (``"cuda"``, ``"cuda:1"``, ``"mps"``, ``"cpu"``).

    ``"auto"``/``None`` reads ``VISIONFORGE_DEVICE`` (or ``CODAVISION_PYTORCH_DEVICE``) first, then picks CUDA > MPS >
    CPU. ``"gpu"`` means CUDA. Asking for an unavailable device raises ConfigError.
    """
    if isinstance(device, torch.device):
        device = str(device)
    value = (device or "auto").strip().lower()
    source = "device argument"
    if value == "auto":
        found = env_setting("device")  # VISIONFORGE_DEVICE, then CODAvision's name
        env = found[1].strip().lower() if found else ""
        if env and env != "auto":
            value, source = env, found[0]
    if value == "auto":
        return best_available_device()
    if value == "gpu" or value.startswith("gpu:"):
        value = "cuda" + value[3:]
    kind, _, index = value.partition(":")
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{source} asks for {value!r} but CUDA is not available here; "
                "use device=auto or device=cpu"
            )
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ConfigError(
                f"{source} asks for {value!r} but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
        return value
    if kind == "mps":
        if not mps_available():
            raise ConfigError(f"{source} asks for 'mps' but MPS is not available here; use cpu")
        return "mps"
    raise ConfigError(f"{source}: unknown device {value!r}; use auto, cpu, cuda, cuda:N or mps")


def lightning_accelerator(device: str) -> tuple[str, list[int] | str]:
    """Map a resolved device string to Lightning's ``(accelerator, devices)``."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        return "gpu", [int(index)] if index else "auto"
    return kind, "auto"


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """Whether bfloat16 autocast on this CPU runs (and computes a finite matmul)."""
    try:
        a = torch.ones(4, 4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = a @ a
        return out.dtype == torch.bfloat16 and bool(torch.isfinite(out.float()).all())
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), read from the
    kernel's CPU flags; elsewhere bf16 autocast runs but is emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh
                          if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap way to tell, so do not assume it
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def resolve_precision(
    mixed_precision: bool | str | None, device: str | torch.device | None = "auto"
) -> str:
    """Lightning precision string for ``mixed_precision`` on ``device``.

    ``False`` -> ``"32-true"``; ``True``/``"auto"`` -> ``"16-mixed"`` on CUDA,
    ``"bf16-mixed"`` on CPU/MPS when supported, else ``"32-true"``. A name
    (``"fp16"``, ``"bf16"``, ``"16-mixed"``, ...) is normalised; fp16 autocast on a
    CPU becomes bf16 (or fp32 when bf16 is unsupported) with a warning, since
    GradScaler-backed fp16 needs CUDA.
    """
    if mixed_precision is None:
        found = env_setting("amp")  # VISIONFORGE_AMP, then CODAVISION_PYTORCH_AMP
        env = found[1].strip().lower() if found else ""
        mixed_precision = env if env else False
    dev = resolve_device(device)
    kind = dev.split(":")[0]
    if isinstance(mixed_precision, bool):
        requested = "auto" if mixed_precision else "32-true"
    else:
        key = str(mixed_precision).strip().lower()
        if key in _TRUE:
            requested = "auto"
        elif key in _FALSE:
            requested = "32-true"
        elif key in PRECISION_ALIASES:
            requested = PRECISION_ALIASES[key]
        else:
            raise ConfigError(
                f"unknown mixed_precision {mixed_precision!r}; use true/false or one of "
                f"{sorted(set(PRECISION_ALIASES.values()))}"
            )
    if requested == "auto":
        if kind == "cuda":
            return "16-mixed"
        if kind == "cpu" and cpu_supports_bf16():
            return "bf16-mixed"
        if kind == "mps":
            return "16-mixed"
        return "32-true"
    if requested == "16-mixed" and kind == "cpu":
        fallback = "bf16-mixed" if cpu_supports_bf16() else "32-true"
        _log.warning("fp16 mixed precision needs CUDA; using %s on the CPU", fallback)
        return fallback
    return requested

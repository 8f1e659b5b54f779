"""The input/output contract of a model dir, shared by every exported artifact.

``model.json`` records what the network expects; this module turns it into
numbers: the per-sample input shape, the value range and the normalisation,
and the names of the outputs. Exported artifacts take exactly the tensor the
PyTorch model takes (float32, NCHW or NCL, *after* preprocessing) and return
the same outputs, so any runtime can use them with this contract alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from visionforge.errors import ConfigError

__all__ = [
    "input_shape",
    "input_range",
    "mean_std",
    "normalize",
    "output_names",
    "flatten_outputs",
    "real_sample_inputs",
]


def input_shape(meta: dict[str, Any], override: Sequence[int] | None = None) -> tuple[int, ...]:
    """Per-sample input shape without batch, e.g. ``(3, 224, 224)`` or ``(1, 750)``."""
    shape = override if override is not None else meta.get("input_size")
    if not shape:
        raise ConfigError(
            f"model.json of {meta.get('name')!r} has no 'input_size'; save the model dir with "
            "save_model_dir(..., input_size=[C, H, W]) (or [C, L] for signals) or pass "
            "input_size= explicitly"
        )
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ConfigError(f"input_size must be [C, H, W] or [C, L], got {list(shape)}")
    return shape


def input_range(meta: dict[str, Any]) -> tuple[float, float]:
    """The value range the model's (un-normalised) input lives in: ``(0, 1)`` or ``(0, 255)``."""
    pre = meta.get("preprocessing") or {}
    lo, hi = pre.get("input_range") or (0, 1)
    return float(lo), float(hi)


def mean_std(meta: dict[str, Any], channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel mean and std as float32 arrays of shape ``[C]``, or None if not normalised."""
    pre = meta.get("preprocessing") or {}
    mean, std = pre.get("mean"), pre.get("std")
    if mean is None and std is None:
        return None
    mean = np.broadcast_to(np.asarray(0.0 if mean is None else mean, np.float32), (channels,))
    std = np.broadcast_to(np.asarray(1.0 if std is None else std, np.float32), (channels,))
    if np.any(std == 0):
        raise ConfigError("model.json preprocessing.std contains 0")
    return mean.copy(), std.copy()


def normalize(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Apply ``(x - mean) / std`` along axis 1 of a batch ``[N, C, ...]`` (float32)."""
    ms = mean_std(meta, x.shape[1])
    x = x.astype(np.float32, copy=False)
    if ms is None:
        return x
    mean, std = ms
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / std.reshape(shape)


def flatten_outputs(out: Any) -> list[tuple[str, Any]]:
    """Named output tensors of a model call: a tensor -> ``logits``; a dict -> its keys."""
    if isinstance(out, dict):
        return [(str(k), v) for k, v in out.items()]
    if isinstance(out, list | tuple):
        return [(f"output_{i}", v) for i, v in enumerate(out)]
    return [("logits", out)]


def output_names(meta: dict[str, Any]) -> list[str]:
    """Output names exported artifacts use for this task."""
    if meta.get("task") == "multitask":
        return ["classification", "segmentation"]
    return ["logits"]


def _sample_images() -> list[np.ndarray]:
    # Real photographs/micrographs bundled with scikit-image (offline), for parity on real inputs.
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - scikit-image is a core dependency
        return []
    out = []
    for name in (
        "astronaut",
        "coffee",
        "chelsea",
        "immunohistochemistry",
        "rocket",
        "hubble_deep_field",
    ):
        try:
            out.append(np.asarray(getattr(data, name)()))
        except Exception:  # a sample may need pooch (download); skip it
            continue
    return out


def real_sample_inputs(
    meta: dict[str, Any], n: int, shape: Sequence[int] | None = None
) -> np.ndarray:
    """``n`` preprocessed model inputs ``[n, *input_shape]`` (float32) built from real data.

    Images: scikit-image's bundled photographs resized to the input size (grayscale or
    channel-repeated as needed). Signals: smooth multi-frequency waveforms with noise.
    """
    shp = input_shape(meta, shape)
    rng = np.random.default_rng(0)
    lo, hi = input_range(meta)
    if len(shp) == 2:
        c, length = shp
        t = np.linspace(0, 1, length, dtype=np.float32)
        x = np.stack(
            [
                np.stack(
                    [
                        np.sin(2 * np.pi * (3 + i + 2 * ch) * t + rng.uniform(0, 6))
                        for ch in range(c)
                    ]
                )
                for i in range(n)
            ]
        ).astype(np.float32)
        x += 0.1 * rng.standard_normal(x.shape).astype(np.float32)
        return normalize(x, meta)
    c, h, w = shp
    import torch
    import torch.nn.functional as F

    imgs = _sample_images()
    batch = []
    for i in range(n):
        if imgs:
            img = imgs[i % len(imgs)].astype(np.float32) / 255.0
            if img.ndim == 2:
                img = img[..., None]
            img = img[..., :3]
            t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
            if i >= len(imgs):  # more samples than images: vary them by flipping
                t = t.flip(-1)
            t = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)[
                0
            ]
            if c == 1:
                t = t.mean(0, keepdim=True)
            elif t.shape[0] != c:
                t = t.repeat((c + t.shape[0] - 1) // t.shape[0], 1, 1)[:c]
            arr = t.clamp(0, 1).numpy()
        else:
            arr = rng.uniform(0, 1, (c, h, w)).astype(np.float32)
        batch.append(arr * (hi - lo) + lo)
    return normalize(np.stack(batch).astype(np.float32), meta)

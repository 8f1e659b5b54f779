"""The input/output contract of a model dir, shared by every exported artifact.

``model.json`` records what the network expects; this module turns it into
numbers: the per-sample input shape, the value range and the normalisation,
and the names of the outputs. Exported artifacts take exactly the tensor the
PyTorch model takes (float32, NCHW or NCL, *after* preprocessing) and return
the same outputs, so any runtime can use them with this contract alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from visionforge.errors import ConfigError
from visionforge.models.contract import contract_from_meta

__all__ = [
    "input_shape",
    "input_range",
    "mean_std",
    "normalize",
    "output_names",
    "flatten_outputs",
    "real_sample_inputs",
    "resize_image",
]


def input_shape(meta: Mapping[str, Any], override: Sequence[int] | None = None) -> tuple[int, ...]:
    """Per-sample input shape without batch, e.g. ``(3, 224, 224)`` or ``(1, 750)``."""
    shape = override if override is not None else meta.get("input_size")
    if not shape:
        shape = contract_from_meta(meta).input_size
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


def input_range(meta: Mapping[str, Any]) -> tuple[float, float]:
    """The value range the model's (un-normalised) input lives in: ``(0, 1)`` or ``(0, 255)``.

    Inputs with no fixed range (raw signals) count as ``(0, 1)``: integer data is scaled there.
    """
    rng = contract_from_meta(meta).input_range
    return (0.0, 1.0) if rng is None else (float(rng[0]), float(rng[1]))


def mean_std(meta: Mapping[str, Any], channels: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel mean and std as float32 arrays of shape ``[C]``, or None if not normalised."""
    contract = contract_from_meta(meta)
    if not contract.normalized:
        return None
    try:
        mean = np.broadcast_to(np.asarray(contract.mean, np.float32), (channels,)).copy()
        std = np.broadcast_to(np.asarray(contract.std, np.float32), (channels,)).copy()
    except ValueError:
        raise ConfigError(
            f"model.json preprocessing has mean {list(contract.mean or [])} and std "
            f"{list(contract.std or [])}, which do not fit a {channels}-channel input; give one "
            "value or one per channel"
        ) from None
    return mean, std


def normalize(x: np.ndarray, meta: Mapping[str, Any]) -> np.ndarray:
    """Finish a batch ``[N, C, ...]`` already in the model's ``input_range``: the rest of its contract.

    That is the channel order (``BGR`` reverses the RGB channels) and then ``(x - mean) / std``;
    the range scaling of :meth:`InputContract.apply` has happened when the values were read.
    """
    x = np.asarray(x, dtype=np.float32)
    mean_std(meta, x.shape[1])  # a clear error when mean/std do not fit the channels
    finish = replace(contract_from_meta(meta), input_range=None)
    return np.asarray(finish.apply(x, channel_dim=1 - x.ndim), dtype=np.float32)


def resize_image(x: np.ndarray, size: Sequence[int], interpolation: str = "bilinear") -> np.ndarray:
    """Resize a ``[C, H, W]`` float image to ``size`` (``(h, w)``) with the contract's interpolation.

    ``bilinear``/``bicubic`` are antialiased (as PIL and torchvision's ``antialias=True``);
    ``nearest`` keeps values (masks, label-like inputs).
    """
    if tuple(x.shape[1:]) == tuple(size):
        return x
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
    if interpolation == "nearest":
        out = F.interpolate(t, size=tuple(size), mode="nearest")
    else:
        out = F.interpolate(
            t, size=tuple(size), mode=interpolation, antialias=True, align_corners=False
        )
    return out[0].numpy()


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


def _sample_signals(rng: np.random.Generator, n: int, c: int, length: int) -> np.ndarray:
    """``n`` smooth multi-frequency ``[c, length]`` waveforms with noise."""
    t = np.linspace(0, 1, length, dtype=np.float32)
    x = np.stack(
        [
            np.stack(
                [np.sin(2 * np.pi * (3 + i + 2 * ch) * t + rng.uniform(0, 6)) for ch in range(c)]
            )
            for i in range(n)
        ]
    ).astype(np.float32)
    return x + 0.1 * rng.standard_normal(x.shape).astype(np.float32)


def _sample_images01(
    rng: np.random.Generator, n: int, shape: Sequence[int], interpolation: str
) -> np.ndarray:
    """``n`` RGB images in ``[0, 1]`` of ``shape`` ``(c, h, w)`` (grey or repeated channels)."""
    c, h, w = shape
    imgs = _sample_images()
    batch = []
    for i in range(n):
        if not imgs:
            batch.append(rng.uniform(0, 1, (c, h, w)).astype(np.float32))
            continue
        img = imgs[i % len(imgs)].astype(np.float32) / 255.0
        img = (img[..., None] if img.ndim == 2 else img)[..., :3].transpose(2, 0, 1)
        if i >= len(imgs):  # more samples than images: vary them by flipping
            img = img[..., ::-1]
        arr = resize_image(img, (h, w), interpolation)
        if c == 1:
            arr = arr.mean(0, keepdims=True)
        elif arr.shape[0] != c:
            arr = np.tile(arr, ((c + arr.shape[0] - 1) // arr.shape[0], 1, 1))[:c]
        batch.append(np.clip(arr, 0, 1))
    return np.stack(batch).astype(np.float32)


def real_sample_inputs(
    meta: Mapping[str, Any], n: int, shape: Sequence[int] | None = None
) -> np.ndarray:
    """``n`` model inputs ``[n, *input_shape]`` (float32) built from real data, contract applied.

    Images: scikit-image's bundled photographs resized to the input size (grayscale or
    channel-repeated as needed), then put through the model's whole input contract (range,
    channel order, mean/std). Signals: smooth multi-frequency waveforms with noise.
    """
    shp = input_shape(meta, shape)
    rng = np.random.default_rng(0)
    contract = contract_from_meta(meta)
    if len(shp) == 2:
        return normalize(_sample_signals(rng, n, *shp), meta)
    x01 = _sample_images01(rng, n, shp, contract.interpolation)
    return np.asarray(contract.apply(x01, channel_dim=-3), dtype=np.float32)

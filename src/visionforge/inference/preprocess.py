"""Turn user inputs (paths, PIL images, arrays, tensors) into model input batches.

Layout rule for arrays and tensors (``layout="auto"``): an axis equal to the model's
channel count decides. If only the last axis matches -> channels-last (HWC / NHWC);
if only the third-from-last matches -> channels-first (CHW / NCHW). If both or neither
match, NumPy arrays are taken as channels-last (the convention of image libraries
and Keras) and torch tensors as channels-first (PyTorch's convention). Pass
``layout="NHWC"`` or ``"NCHW"`` to decide explicitly. 2-D arrays are single-channel
images. Signal models take ``[C, L]`` or ``[N, C, L]`` (``[L, C]`` is transposed when
only its last axis equals C).

Value rule: inputs are RGB. ``uint8`` is scaled from 0..255 and ``uint16`` from 0..65535 to
the model's ``input_range``; float inputs are taken to be in ``input_range`` already. Images
are resized to ``input_size`` with the contract's ``interpolation``; then the rest of the
model dir's input contract is applied: a ``BGR`` model gets its channels reversed, and
mean/std (in the units of ``input_range``) are subtracted/divided. The contract is read from
``model.json`` by :func:`visionforge.models.contract.contract_from_meta` (older files without
it get the defaults: RGB in ``[0, 1]``, no normalisation, bilinear).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.export.contract import input_range, input_shape, normalize, resize_image
from visionforge.models.contract import contract_from_meta

__all__ = ["load_image", "to_samples", "prepare_batch", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file into an ``HxW`` or ``HxWxC`` array (dtype kept)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: image file not found")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("P", "PA", "LA", "CMYK", "YCbCr", "1", "I;16B"):
                im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
            return np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if p.suffix.lower() in (".tif", ".tiff"):  # multi-channel/float TIFFs PIL cannot read
            try:
                import tifffile

                return np.asarray(tifffile.imread(p))
            except Exception:
                pass
        raise DataError(f"{p}: cannot read image ({exc})") from None


def _as_array(item: Any) -> tuple[np.ndarray, bool]:
    """(array, is_tensor) for one input item."""
    try:
        import torch

        if isinstance(item, torch.Tensor):
            return item.detach().cpu().numpy(), True
    except ImportError:  # pragma: no cover
        pass
    if isinstance(item, str | os.PathLike):
        return load_image(item), False
    if hasattr(item, "mode") and hasattr(item, "size") and hasattr(item, "getbands"):  # PIL image
        im = item
        if im.mode not in ("L", "RGB", "RGBA", "I;16", "I", "F"):
            im = im.convert("RGB")
        return np.asarray(im), False
    if isinstance(item, np.ndarray):
        return item, False
    raise DataError(
        f"cannot predict on a {type(item).__name__}; give paths, PIL images, NumPy arrays or tensors"
    )


def _channels_first(a: np.ndarray, c: int, is_tensor: bool, layout: str) -> np.ndarray:
    """Move a single image ``[H, W]``, ``[H, W, C]`` or ``[C, H, W]`` to ``[C, H, W]``."""
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise DataError(f"expected an image with 2 or 3 dimensions, got shape {list(a.shape)}")
    layout = layout.upper()
    if layout in ("NHWC", "HWC"):
        last = True
    elif layout in ("NCHW", "CHW"):
        last = False
    else:
        first_ok, last_ok = a.shape[0] == c, a.shape[-1] == c
        if last_ok != first_ok:
            last = last_ok
        elif not first_ok and (a.shape[-1] <= 4) != (a.shape[0] <= 4):
            last = a.shape[-1] <= 4  # e.g. RGBA for a 3-channel model
        else:
            last = not is_tensor
    return np.moveaxis(a, -1, 0) if last else a


def _fit_channels(a: np.ndarray, c: int) -> np.ndarray:
    have = a.shape[0]
    if have == c:
        return a
    if have == 4 and c == 3:  # RGBA -> RGB
        return a[:3]
    if have == 1:
        return np.repeat(a, c, axis=0)
    if have in (3, 4) and c == 1:  # luma
        w = np.array([0.299, 0.587, 0.114], np.float32).reshape(3, 1, 1)
        return (a[:3].astype(np.float32) * w).sum(0, keepdims=True)
    raise DataError(f"image has {have} channels, the model expects {c}")


def _scale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0 * (hi - lo) + lo
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0 * (hi - lo) + lo
    if a.dtype == bool:
        return a.astype(np.float32) * (hi - lo) + lo
    return a.astype(np.float32, copy=False)


def _iter_items(images: Any) -> Iterable[Any]:
    if isinstance(images, str | os.PathLike):
        return [images]
    if isinstance(images, list | tuple):
        return images
    return [images]


def to_samples(images: Any, meta: dict[str, Any], *, layout: str = "auto") -> list[np.ndarray]:
    """Split ``images`` into float32 channels-first samples in the model's input range."""
    shape = input_shape(meta)
    c = shape[0]
    lo, hi = input_range(meta)
    signal = len(shape) == 2
    samples: list[np.ndarray] = []
    for item in _iter_items(images):
        a, is_tensor = _as_array(item)
        if signal:
            if a.ndim == 1:
                a = a[None]
            batch = a if a.ndim == 3 else a[None]
            if batch.ndim != 3:
                raise DataError(f"signal input must be [C, L] or [N, C, L], got {list(a.shape)}")
            if batch.shape[1] != c and batch.shape[2] == c:
                batch = np.swapaxes(batch, 1, 2)
            if batch.shape[1] != c:
                raise DataError(f"signal has {batch.shape[1]} channels, the model expects {c}")
            samples.extend(_scale(s, lo, hi) for s in batch)
            continue
        if a.ndim == 4:
            samples.extend(
                _scale(_fit_channels(_channels_first(s, c, is_tensor, layout), c), lo, hi)
                for s in a
            )
        else:
            samples.append(
                _scale(_fit_channels(_channels_first(a, c, is_tensor, layout), c), lo, hi)
            )
    if not samples:
        raise DataError("no inputs to predict on")
    return samples


def prepare_batch(
    samples: Sequence[np.ndarray], meta: dict[str, Any], *, resize: bool = True
) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Stack samples into a model-ready ``[N, C, ...]`` batch; returns it and the original sizes.

    Images are resized to the model's input size with the contract's interpolation (``bilinear``
    and ``bicubic`` antialiased) when ``resize``; then channel order and mean/std are applied.
    """
    shape = input_shape(meta)
    sizes = [tuple(s.shape[1:]) for s in samples]
    if len(shape) == 3 and resize:
        interpolation = contract_from_meta(meta).interpolation
        samples = [resize_image(s, shape[1:], interpolation) for s in samples]
    first = samples[0].shape
    if any(s.shape != first for s in samples):
        raise DataError(
            f"inputs differ in size ({sorted({tuple(s.shape) for s in samples})}); resize them "
            "or predict one at a time"
        )
    return normalize(np.stack(samples).astype(np.float32, copy=False), meta), sizes

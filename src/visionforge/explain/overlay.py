"""Heatmap-over-image overlays as arrays and PNG files."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.io import atomic_write_bytes

__all__ = ["overlay_heatmap", "save_overlay"]


def _as_array(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _image_hwc(image: Any) -> np.ndarray:
    img = _as_array(image).astype(np.float64)
    if img.ndim == 3 and img.shape[0] in (1, 3, 4) and img.shape[-1] not in (1, 3, 4):
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]
    lo, hi = img.min(), img.max()
    if lo < 0 or hi > 1:  # normalised or 0..255: rescale for display
        img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img


def overlay_heatmap(image: Any, heatmap: Any, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a ``[H, W]`` heatmap (values in [0, 1]) over an image (``[C, H, W]``, ``[H, W, C]``
    or ``[H, W]``, tensor or array) -> ``uint8 [H, W, 3]``."""
    from matplotlib import colormaps

    img = _image_hwc(image)
    heat = np.clip(_as_array(heatmap).astype(np.float64), 0, 1)
    if heat.shape != img.shape[:2]:
        raise ValueError(f"heatmap shape {heat.shape} does not match image {img.shape[:2]}")
    colored = colormaps[cmap](heat)[..., :3]
    out = (1 - alpha) * img + alpha * colored
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def save_overlay(
    path: str | os.PathLike[str],
    image: Any,
    heatmap: Any,
    alpha: float = 0.5,
    cmap: str = "jet",
    boxes: Sequence[Sequence[float]] = (),
) -> Path:
    """Write the overlay of ``heatmap`` on ``image`` as a PNG (atomically); returns the path.
    ``boxes`` (``[x1, y1, x2, y2]`` in pixels, e.g. an explained detection) are outlined
    in white."""
    from PIL import Image, ImageDraw

    pil = Image.fromarray(overlay_heatmap(image, heatmap, alpha, cmap))
    draw = ImageDraw.Draw(pil)
    for x1, y1, x2, y2 in boxes:
        draw.rectangle([x1, y1, max(x2 - 1, x1), max(y2 - 1, y1)], outline=(255, 255, 255))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())

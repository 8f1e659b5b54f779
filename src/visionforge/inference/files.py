"""Find image files (files, folders, globs) and load them as model-sized arrays."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import DataError
from visionforge.export.contract import input_shape, resize_image
from visionforge.inference.preprocess import IMAGE_SUFFIXES, load_image, to_samples
from visionforge.models.contract import contract_from_meta

__all__ = ["expand_inputs", "load_model_inputs", "labelled_folder"]


def expand_inputs(
    specs: Iterable[str | os.PathLike[str]], suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> list[Path]:
    """Files named by paths, folders (searched recursively) or glob patterns, sorted, unique."""
    out: list[Path] = []
    for spec in specs:
        s = os.fspath(spec)
        p = Path(s)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
        elif p.is_file():
            found = [p]
        elif any(ch in s for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(s, recursive=True) if Path(f).is_file())
        else:
            raise DataError(f"{s}: no such file, folder or glob match")
        out.extend(f for f in found if f not in out)
    if not out:
        raise DataError(f"no image files found in {[os.fspath(s) for s in specs]}")
    return out


def load_model_inputs(
    paths: Iterable[Path], meta: dict[str, Any], limit: int | None = None
) -> np.ndarray:
    """Images resized to the model's input size, in its input range (not normalised).

    Resizing uses the interpolation of the model's input contract; channel order and mean/std
    are left to :func:`visionforge.export.contract.normalize` (as calibration data expects).
    """
    _, h, w = input_shape(meta)
    interpolation = contract_from_meta(meta).interpolation
    arrs = []
    for i, p in enumerate(paths):
        if limit is not None and i >= limit:
            break
        (s,) = to_samples([load_image(p)], meta, layout="NHWC")
        arrs.append(resize_image(s, (h, w), interpolation))
    return np.stack(arrs).astype(np.float32)


def labelled_folder(
    root: str | os.PathLike[str], meta: dict[str, Any], limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, targets)`` from ``root/<class>/*`` (classification) or ``root/images`` +
    ``root/masks`` with matching stems (segmentation), sized to the model's input."""
    import torch
    import torch.nn.functional as F

    root = Path(root)
    if (root / "images").is_dir() and (root / "masks").is_dir():
        imgs = expand_inputs([root / "images"])[:limit]
        masks = {m.stem: m for m in expand_inputs([root / "masks"])}
        missing = [p.name for p in imgs if p.stem not in masks]
        if missing:
            raise DataError(f"{root / 'masks'}: no mask for {missing[:3]}")
        x = load_model_inputs(imgs, meta)
        _, h, w = input_shape(meta)
        ys = []
        for p in imgs:
            m = torch.from_numpy(np.asarray(load_image(masks[p.stem])).astype(np.int64))
            m = m[..., 0] if m.ndim == 3 else m
            ys.append(
                F.interpolate(m[None, None].float(), size=(h, w), mode="nearest")[0, 0]
                .long()
                .numpy()
            )
        return x, np.stack(ys)
    names = meta.get("class_names") or []
    files, labels = [], []
    for k, name in enumerate(names):
        folder = root / name
        if folder.is_dir():
            found = expand_inputs([folder])
            files.extend(found)
            labels.extend([k] * len(found))
    if not files:
        raise DataError(
            f"{root}: expected class sub-folders named like the model's classes {names} "
            "or images/ + masks/ folders"
        )
    if limit is not None:
        files, labels = files[:limit], labels[:limit]
    return load_model_inputs(files, meta), np.asarray(labels, np.int64)

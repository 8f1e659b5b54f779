"""Per-class logit offsets that make a model's class frequencies match the annotations.

A tissue model can be accurate pixel by pixel and still under-predict a class on the whole
slide (borderline pixels of a thin class tip to its neighbour), which biases the slide's
composition. :func:`calibrate_model` runs the model over the annotated training tiles that
``visionforge slides tiles`` wrote (``train``/``val``; the held-out rectangle never reaches a
tile), and fits one offset per class, added to the logits before the argmax, so that the
predicted class frequencies on those tiles match the annotated ones. The fit
(:func:`fit_class_bias`) is a 1-D search per class, solved exactly from the sorted logit margins,
swept over the classes until every class frequency is within ``tol`` (the background offset
stays 0); the best offsets seen are kept. It is deterministic: the pixels
are every tile's annotated pixels (255 = ignored left out), thinned by a fixed stride when
there are more than ``max_pixels``.

The offsets go to ``MODEL_DIR/calibration.json`` (atomic write) with the tiles folder and the
class counts before and after; ``visionforge slides segment ... class_bias=auto`` (the default)
applies them (:func:`resolve_class_bias`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visionforge.errors import ConfigError, DataError

__all__ = ["CALIBRATION_FILE", "ClassBias", "calibrate_model", "fit_class_bias",
           "resolve_class_bias"]

CALIBRATION_FILE = "calibration.json"
PathLike = str | os.PathLike[str]
_EPS = 1e-6


@dataclass(frozen=True)
class ClassBias:
    """Offsets added to the logits before the argmax (``values`` None: no offsets) and where
    they come from (``none``, ``given`` or the calibration file)."""

    values: tuple[float, ...] | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"values": list(self.values) if self.values is not None else None,
                "source": self.source}


def fit_class_bias(logits: np.ndarray, target: np.ndarray, *, iterations: int = 20,
                   tol: float = 1e-3, background: int = 0) -> tuple[np.ndarray, int]:
    """Offsets ``[S]`` so that ``argmax(logits + b)`` has the class frequencies ``target``.

    Coordinate-wise: with the other offsets fixed, pixel ``p`` goes to class ``c`` exactly when
    ``b_c > margin_p = max_{k != c}(logits_pk + b_k) - logits_pc``, so the ``b_c`` that gives
    class ``c`` its wanted count ``n_c`` is read off the sorted margins (midway between the
    ``n_c``-th and the next: a 1-D search solved exactly, whatever the scale of the logits).
    Each sweep sets every class but ``background`` (whose offset stays 0: offsets are
    relative) in turn; sweeps repeat until every frequency is within ``tol``.

    Args:
        logits: pixel logits ``[P, S]``.
        target: wanted class counts or frequencies ``[S]``.
        iterations: at most this many sweeps.
        tol: stop when every class frequency is within ``tol`` of ``target``.
        background: the class whose offset stays 0.

    Returns:
        ``(bias, sweeps used)``; the bias with the smallest largest frequency error seen.
    """
    logits = np.asarray(logits, np.float32)
    p, s = logits.shape
    want = np.asarray(target, np.float64)
    want = want / max(want.sum(), _EPS)
    bias = np.zeros(s, np.float32)
    best, best_err, used = bias.copy(), np.inf, 0
    for used in range(iterations + 1):
        err = float(np.abs(_frequencies(logits, bias) - want).max())
        if err < best_err:
            best, best_err = bias.copy(), err
        if err <= tol or used == iterations:
            break
        for c in range(s):
            if c == background:
                continue
            others = np.delete(logits + bias, c, axis=1).max(1)
            margin = others - logits[:, c]
            n = int(round(want[c] * p))
            if n == 0:
                bias[c] = margin.min() - 1.0
            elif n >= p:
                bias[c] = margin.max() + 1.0
            else:
                lo, hi = np.partition(margin, (n - 1, n))[[n - 1, n]]
                bias[c] = 0.5 * (lo + hi)
    return best, used


def _frequencies(logits: np.ndarray, bias: np.ndarray) -> np.ndarray:
    labels = (logits + bias.astype(np.float32)).argmax(1)
    counts = np.bincount(labels, minlength=logits.shape[1]).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


# -- the tiles --------------------------------------------------------------------------------
def _tile_pairs(tiles_dir: Path, splits: Sequence[str]) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of the manifest's tiles in ``splits``."""
    manifest = tiles_dir / "manifest.csv"
    if not manifest.is_file():
        raise ConfigError(f"{manifest} not found: TILES_DIR must be an out= folder of "
                          "`visionforge slides tiles`")
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("split") in splits]
    pairs = []
    for r in rows:
        image = tiles_dir / r["tile"]
        masks = image.parent.parent / "masks"
        mask = next((masks / f"{image.stem}{s}" for s in (".png", ".tif", ".tiff")
                     if (masks / f"{image.stem}{s}").is_file()), None)
        if not image.is_file() or mask is None:
            raise DataError(f"{manifest}: tile {r['tile']} or its mask in {masks} is missing; "
                            "rerun `visionforge slides tiles`")
        pairs.append((image, mask))
    if not pairs:
        raise DataError(f"{manifest}: no tiles in split(s) {', '.join(splits)}")
    return pairs


def _pixel_logits(pred: Any, pairs: list[tuple[Path, Path]], num_classes: int, ignore: int,
                  max_pixels: int, tile_batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits ``[P, S]`` and annotated labels ``[P]`` of the tiles' annotated pixels."""
    from visionforge.data.images import image_shape, read_array
    from visionforge.engine.class_weights import read_mask
    from visionforge.inference.sliding_window import sliding_window_inference

    tile = tuple(pred.input_shape[1:])
    total = sum(int(np.prod(image_shape(m))) for _, m in pairs)  # headers only
    stride = max(1, -(-total // max_pixels))  # fixed thinning: deterministic
    out_logits, out_labels = [], []
    for image_path, mask_path in pairs:
        rgb = read_array(image_path)
        mask = read_mask(mask_path)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        if rgb.shape[:2] != mask.shape:
            raise DataError(f"{image_path}: image {rgb.shape[:2]} and mask {mask_path} "
                            f"{mask.shape} differ in size")
        bad = (mask != ignore) & ((mask < 0) | (mask >= num_classes))
        if bad.any():
            raise DataError(f"{mask_path}: label {int(mask[bad][0])} is not a class of the model "
                            f"({num_classes} classes) nor the ignore value {ignore}")
        x = pred.preprocess_rgb(np.ascontiguousarray(rgb[..., :3]))
        # tiles of the model's input size are one forward pass; others are tiled like a slide
        logits = sliding_window_inference(x, pred.dense_logits, tile, overlap=0.25,
                                          tile_batch=tile_batch)
        flat_lg = logits.reshape(num_classes, -1).T[::stride]
        flat_lb = mask.reshape(-1)[::stride]
        use = flat_lb != ignore
        out_logits.append(flat_lg[use])
        out_labels.append(flat_lb[use])
    labels = np.concatenate(out_labels)
    if not len(labels):
        raise DataError("the tiles hold no annotated pixels (all ignored)")
    return np.concatenate(out_logits), labels


def calibrate_model(model_dir: PathLike, tiles_dir: PathLike, *,
                    splits: Sequence[str] = ("train", "val"), iterations: int = 20,
                    tol: float = 1e-3, max_pixels: int = 4_000_000, tile_batch: int = 8,
                    backend: str = "auto") -> dict[str, Any]:
    """Fit the class offsets of ``model_dir`` on the tiles in ``tiles_dir``; write
    ``model_dir/calibration.json`` and return its content.

    Args:
        splits: which tile splits to use (``train``, ``val``); the held-out region of the
            slides is never in a tile.
        iterations, tol: see :func:`fit_class_bias`.
        max_pixels: at most this many pixels (every k-th pixel beyond it).
        tile_batch, backend: Predictor settings.
    """
    from visionforge.inference import Predictor
    from visionforge.io import atomic_write_json, read_json
    from visionforge.models.model_dir import read_model_meta
    from visionforge.slides.segment import _background_index

    model_dir, tiles_dir = Path(model_dir), Path(tiles_dir)
    splits = _splits(splits)
    meta = read_model_meta(model_dir)
    names = list(meta.get("class_names") or [])
    if meta.get("task") != "segmentation" or not names:
        raise ConfigError(f"{model_dir}: calibration needs a segmentation model with class_names "
                          f"in model.json (task is {meta.get('task')!r})")
    tiles_json = tiles_dir / "tiles.json"
    tmeta = read_json(tiles_json) if tiles_json.is_file() else {}
    if tmeta.get("class_names") and list(tmeta["class_names"]) != names:
        raise ConfigError(f"{tiles_json} classes {tmeta['class_names']} differ from "
                          f"{model_dir / 'model.json'} classes {names}")
    ignore = int(tmeta.get("ignore_index", 255))
    pairs = _tile_pairs(tiles_dir, splits)
    pred = Predictor(model_dir, backend=backend, batch_size=tile_batch)
    logits, labels = _pixel_logits(pred, pairs, len(names), ignore, int(max_pixels),
                                   int(tile_batch))
    bg = _background_index(names)
    target = np.bincount(labels, minlength=len(names))
    bias, used = fit_class_bias(logits, target, iterations=int(iterations), tol=float(tol),
                                background=bg)

    def counts(b: np.ndarray) -> dict[str, int]:
        pred_labels = (logits + b).argmax(1)
        return dict(zip(names, np.bincount(pred_labels, minlength=len(names)).tolist(), strict=True))

    record = {
        "class_bias": [round(float(v), 6) for v in bias], "class_names": names,
        "method": "per-class logit offsets, coordinate-wise exact 1-D fit of the class "
                  "frequencies (visionforge.slides.calibrate.fit_class_bias)",
        "iterations": used, "tol": tol, "tiles_dir": str(tiles_dir.resolve()),
        "splits": list(splits), "tiles": len(pairs), "pixels": int(len(labels)),
        "counts": {"annotated": dict(zip(names, target.tolist(), strict=True)),
                   "before": counts(np.zeros(len(names), np.float32)),
                   "after": counts(bias.astype(np.float32))},
    }
    atomic_write_json(model_dir / CALIBRATION_FILE, record)
    return record


def _splits(splits: Sequence[str] | str) -> tuple[str, ...]:
    items = [s.strip() for s in (splits.split(",") if isinstance(splits, str) else splits)]
    bad = [s for s in items if s not in ("train", "val")]
    if bad or not items:
        raise ConfigError(f"splits={','.join(items)!r}: use train, val or train,val")
    return tuple(dict.fromkeys(items))


# -- using the offsets --------------------------------------------------------------------------
def resolve_class_bias(value: Any, model_dir: PathLike,
                       class_names: Sequence[str]) -> ClassBias:
    """The offsets asked for by ``class_bias=``: ``auto`` (the model dir's calibration.json
    when there is one, else none), ``none``, numbers (``"0,0.4,-0.1"`` or a sequence, one per
    class) or a :class:`ClassBias` (returned as is)."""
    if isinstance(value, ClassBias):
        return value
    n = len(class_names)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "off", "")):
        return ClassBias(None, "none")
    if isinstance(value, str) and value.strip().lower() == "auto":
        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return ClassBias(None, "none")
        return ClassBias(_from_file(path, class_names), str(path))
    items = value.split(",") if isinstance(value, str) else value
    try:
        values = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        values = ()
    if len(values) != n or not all(np.isfinite(values)):
        raise ConfigError(f"class_bias={value!r}: use auto, none or {n} comma-separated numbers "
                          f"(one per class: {', '.join(class_names)}), e.g. class_bias="
                          + ",".join(["0"] * n))
    return ClassBias(values, "given")


def _from_file(path: Path, class_names: Sequence[str]) -> tuple[float, ...]:
    from visionforge.io import read_json

    try:
        data = read_json(path)
        values = tuple(float(v) for v in data["class_bias"])
        names = list(data.get("class_names") or class_names)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a calibration file ({exc}); rerun "
                          "`visionforge slides calibrate` or pass class_bias=none") from None
    if names != list(class_names) or len(values) != len(class_names):
        raise ConfigError(f"{path}: offsets for classes {names}, the model has "
                          f"{list(class_names)}; rerun `visionforge slides calibrate`")
    return values
